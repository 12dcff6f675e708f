/**
 * Userinfo for a person-facing app's API token (issue 11, item 12).
 *
 * An app that names one API with `resource` and asks `openid` gets, from its code exchange, an access
 * token for that API (see docs/protocol.md, "Which API a person's token is for"). oidc-provider's
 * userinfo refuses every token with an audience, so such an app (mod_auth_openidc's default setup
 * calls userinfo with the token it got) could not read the person's claims there.
 *
 * This edge sits in front of the provider, for the userinfo endpoint only. When the request carries,
 * as `Authorization: Bearer`, an opaque access token of this server that is valid, has an audience
 * (an API token), is not sender-constrained, belongs to an account, and comes from a grant of the same
 * client and account whose OpenID scopes include `openid`, it mints with the provider's own model a
 * userinfo token (no audience) for the same account, client and grant, with only the grant's OpenID
 * scopes that carry claims (`offline_access` left out), living 60 seconds; saves it (stored like every
 * token, under its digest); and hands the request to the provider with that token in the
 * Authorization header. The provider then answers with all its own rules: the claims of those scopes,
 * the account (disabled, deleted or signed out everywhere: refused), the grant (revoked: refused).
 * The minted token is never shown to the caller and is destroyed once the provider has answered; the
 * 60 seconds only bound it if that delete fails. Revoking the grant kills the API token and any minted
 * token alike.
 *
 * Why it is sound: the API token already proves that the person granted this client the OpenID scopes
 * (the grant is looked up, not taken from the token), and userinfo gives the holder nothing the client
 * did not already get in the ID token of that grant. Tokens of another client's grant, tokens whose
 * grant lacks `openid`, client-credentials tokens (no account, no grant) and anything else go to the
 * provider unchanged, which refuses them as before.
 *
 * JWT API tokens: verified with the current verifier (signature, issuer, expiry) and checked against
 * JWT revocation. A JWT names its grant only by the SHA-256 digest of the grant id (`gid`), never the
 * id; the token store finds the grant's record by that digest (`grantOfDigest`) but not its id, so
 * the minted token cannot belong to that grant. It belongs instead to a stand-in grant with the same
 * client, account, OpenID scopes, claims and refusals, which lives (and is deleted) with the minted
 * token. The original grant's existence, client, account and `openid` are checked on every request,
 * so a revoked grant refuses the JWT here too.
 *
 * Not handled (left to the provider, which refuses them as before): tokens sent in the body or the
 * query, and sender-constrained (DPoP) tokens.
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { OPENID_SCOPES } from '../clients/client.js';
import type { TokenStore } from '../tokens/token-store.js';
import { GRANT_DIGEST_CLAIM } from './introspection.js';
import type { JwtAccessTokenVerifier } from './jwt-access-token.js';
import { PROTOCOL_ROUTES } from './protocol-routes.js';

/** How long a minted userinfo token may live if it is not destroyed after the request. */
const MINTED_TOKEN_SECONDS = 60;

/** The OpenID scopes that carry claims at userinfo: `offline_access` is not one. */
const USERINFO_SCOPES: ReadonlySet<string> = new Set(OPENID_SCOPES.filter((scope) => scope !== 'offline_access'));

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

type AccessToken = InstanceType<Provider['AccessToken']>;
type Grant = InstanceType<Provider['Grant']>;

/** What the edge reads. */
export interface UserinfoForApiTokensDependencies {
  readonly currentProvider: () => Provider;
  readonly currentJwtVerifier: () => JwtAccessTokenVerifier;
  readonly tokenStore: TokenStore;
}

/** What a request's token was swapped for: deleted once the provider has answered. */
interface Minted {
  readonly value: string;
  readonly token: AccessToken;
  /** The stand-in grant of a JWT API token. */
  readonly grant?: Grant;
}

/**
 * The userinfo token for a JWT API token, with a stand-in grant: the token names its grant only by
 * digest, which finds the grant's record (its rights) but not its id, so the minted token cannot be
 * of that grant. The stand-in copies the grant's OpenID scopes, claims and refusals, for the same
 * client and account, and lives as briefly as the token.
 */
async function mintForJwt(deps: UserinfoForApiTokensDependencies, value: string): Promise<Minted | undefined> {
  const claims = await deps.currentJwtVerifier().verify(value);
  const grantDigest = claims?.[GRANT_DIGEST_CLAIM];
  if (!claims || typeof claims.sub !== 'string' || typeof grantDigest !== 'string' || claims.cnf !== undefined) return undefined;
  if (await deps.tokenStore.isJwtRevoked(claims.jti)) return undefined;
  const original = await deps.tokenStore.grantOfDigest(grantDigest);
  if (!original || original.clientId !== claims.client_id || original.accountId !== claims.sub) return undefined;
  const openid = original.openid as { scope?: string; claims?: string[] } | undefined;
  const scopes = (openid?.scope ?? '').split(' ').filter((scope) => USERINFO_SCOPES.has(scope));
  if (!scopes.includes('openid')) return undefined;
  const provider = deps.currentProvider();
  const client = await provider.Client.find(claims.client_id);
  if (!client) return undefined;
  const grant = new provider.Grant({
    accountId: claims.sub,
    clientId: claims.client_id,
    // Every token model's constructor takes `expiresIn` (its BaseToken); the types leave it out for Grant.
    ...({ expiresIn: MINTED_TOKEN_SECONDS } as object),
  });
  grant.addOIDCScope(scopes.join(' '));
  if (openid?.claims?.length) grant.addOIDCClaims(openid.claims);
  const rejected = original.rejected as { openid?: { scope?: string; claims?: string[] } } | undefined;
  if (rejected?.openid?.scope) grant.rejectOIDCScope(rejected.openid.scope);
  if (rejected?.openid?.claims?.length) grant.rejectOIDCClaims(rejected.openid.claims);
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId: claims.sub,
    client,
    grantId,
    gty: 'authorization_code',
    scope: scopes.join(' '),
    expiresIn: MINTED_TOKEN_SECONDS,
  });
  return { token, grant, value: await token.save() };
}

/**
 * The userinfo token to use in place of `value`, saved; `undefined` when `value` is not an API token
 * of a grant with `openid` (the provider then sees the request unchanged).
 */
async function mintFor(provider: Provider, value: string): Promise<Minted | undefined> {
  const token = await provider.AccessToken.find(value);
  if (!token || token.isExpired || token.aud === undefined || token.isSenderConstrained()) return undefined;
  const { accountId, grantId, clientId } = token;
  if (!accountId || !grantId || !clientId) return undefined;
  const grant = await provider.Grant.find(grantId);
  if (!grant || grant.clientId !== clientId || grant.accountId !== accountId) return undefined;
  const scopes = (grant.getOIDCScope() ?? '').split(' ').filter((scope) => USERINFO_SCOPES.has(scope));
  if (!scopes.includes('openid')) return undefined;
  const client = await provider.Client.find(clientId);
  if (!client) return undefined;
  const minted = new provider.AccessToken({
    accountId,
    client,
    grantId,
    gty: token.gty,
    scope: scopes.join(' '),
    claims: token.claims,
    sessionUid: token.sessionUid,
    expiresWithSession: token.expiresWithSession,
    sid: token.sid,
    expiresIn: MINTED_TOKEN_SECONDS,
  });
  return { token: minted, value: await minted.save() };
}

/** Koa middleware, just before the provider: userinfo accepts an app's API token (see the file comment). */
export const userinfoForApiTokens = (deps: UserinfoForApiTokensDependencies) =>
  async function userinfoForApiTokens(ctx: Context, next: Next): Promise<void> {
    const value =
      ctx.path === PROTOCOL_ROUTES.userinfo && (ctx.method === 'GET' || ctx.method === 'POST')
        ? BEARER.exec(ctx.req.headers.authorization ?? '')?.[1]
        : undefined;
    // A JWT has dots; an opaque token has none.
    const minted = !value ? undefined : value.includes('.') ? await mintForJwt(deps, value) : await mintFor(deps.currentProvider(), value);
    if (!minted) {
      await next();
      return;
    }
    // The provider reads this very request (app.ts hands it `ctx.req`).
    ctx.req.headers.authorization = `Bearer ${minted.value}`;
    try {
      await next();
    } finally {
      await minted.token.destroy();
      await minted.grant?.destroy();
    }
  };
