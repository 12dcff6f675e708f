/**
 * Introspection (RFC 7662) around oidc-provider's endpoint. The provider authenticates the caller and
 * answers for opaque tokens; it refuses JWT access tokens (`unsupported_token_type`), which this server
 * answers too, so a step after it finishes those requests. Who may learn that a token is active (audience
 * isolation) is decided here for both formats.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AccountRegistry } from '../accounts/account-registry.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { EntitlementRegistry } from '../groups/entitlement-registry.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { sha256Base64Url } from '../shared/secrets.js';
import type { TokenStore } from '../tokens/token-store.js';
import { addEntitlementClaims, stillEntitled } from './entitlements.js';
import { looksLikeJwt, type JwtAccessTokenVerifier, type VerifiedJwtAccessToken } from './jwt-access-token.js';
import { EXCHANGE_INTERNAL_CLAIMS, exchangeChainAlive, exchangeFactsOf, type ExchangeFacts } from './token-exchange-claims.js';

/** What introspection (and revocation) consult. */
export interface TokenEndpointDependencies {
  readonly issuer: string;
  readonly clients: ClientRegistry;
  readonly accounts: AccountRegistry;
  readonly resourceServers: ResourceServerRegistry;
  readonly entitlements: EntitlementRegistry;
  readonly tokenStore: TokenStore;
  readonly verifier: JwtAccessTokenVerifier;
}

/** The facts about a token that decide whether a caller may see it active. */
export interface IntrospectedToken {
  readonly clientId: string;
  readonly audiences: readonly string[];
  readonly issuedAt: number;
  /** The person the token acts for; absent for a client's own (client credentials) token. */
  readonly accountId?: string | undefined;
  /** For a token issued by token exchange: its chain, which must be alive too (token-exchange-claims.ts). */
  readonly exchange?: ExchangeFacts | undefined;
  /** Its scopes, space-separated: a person's token ends when they hold one no longer entitled (entitlements.ts). */
  readonly scope?: string | undefined;
}

/**
 * Whether `callerClientId` may learn that the token is active: the caller is the token's own client
 * or the resource server the token is for, and the token's client (and account, for a person's
 * token) still allows it, and the person is still entitled to its scopes.
 *
 * A client's own token (no account, no exchange chain) with the registries warm and no reload in
 * progress, the common case on the introspection hot path, is answered without a promise: each
 * promise there is an allocation, and under load their garbage is what the collector spends its time on.
 */
export function introspectionAllowed(
  deps: Pick<TokenEndpointDependencies, 'clients' | 'accounts' | 'resourceServers' | 'tokenStore' | 'entitlements'>,
  callerClientId: string,
  token: IntrospectedToken,
): boolean | Promise<boolean> {
  if (token.accountId !== undefined || token.exchange !== undefined || deps.resourceServers.settled() !== undefined) {
    return introspectionAllowedAfterReloads(deps, callerClientId, token);
  }
  // No account: nothing to check about a person, nor their entitlements (stillEntitled).
  return callerMayKnow(deps, callerClientId, token) && deps.clients.allowsTokenIssuedAtNow(token.clientId, token.issuedAt);
}

async function introspectionAllowedAfterReloads(
  deps: Pick<TokenEndpointDependencies, 'clients' | 'accounts' | 'resourceServers' | 'tokenStore' | 'entitlements'>,
  callerClientId: string,
  token: IntrospectedToken,
): Promise<boolean> {
  await deps.resourceServers.settled();
  // An exchanged token of a client's own token has that client as its subject, not an account.
  const accountId = token.exchange !== undefined && token.accountId === token.exchange.subjectClientId ? undefined : token.accountId;
  return (
    callerMayKnow(deps, callerClientId, token) &&
    (await deps.clients.allowsTokenIssuedAt(token.clientId, token.issuedAt)) &&
    (accountId === undefined || (await deps.accounts.allowsTokenIssuedAt(accountId, token.issuedAt))) &&
    (token.exchange === undefined || (await exchangeChainAlive(deps, token.exchange, token.issuedAt))) &&
    (await stillEntitled(deps, { ...token, accountId }))
  );
}

/** Audience isolation: the caller is the token's own client, or the resource server it is for. */
function callerMayKnow(deps: Pick<TokenEndpointDependencies, 'resourceServers'>, callerClientId: string, token: IntrospectedToken): boolean {
  if (callerClientId === token.clientId) return true;
  const callerAudience = deps.resourceServers.byIntrospectionClientId(callerClientId)?.identifier;
  return callerAudience !== undefined && token.audiences.includes(callerAudience);
}

/**
 * The claim in which a JWT access token issued from a grant (a person's sign-in) carries the SHA-256
 * digest of the grant id, so introspection can tell that its grant was revoked. A digest, not the id:
 * resource servers see the token's claims.
 */
export const GRANT_DIGEST_CLAIM = 'gid';

/** A stable, non-secret id for an opaque token (it has no `jti` of its own other than its value). */
export function opaqueTokenId(value: string): string {
  return sha256Base64Url(value).slice(0, 32);
}

/** Whether the provider refused the request only because its token is a JWT, which we answer. */
export const refusedStructuredToken = (ctx: KoaContextWithOIDC): boolean =>
  ctx.status === 400 &&
  (ctx.body as { error?: string } | undefined)?.error === 'unsupported_token_type' &&
  ctx.oidc.client !== undefined &&
  typeof ctx.oidc.params?.token === 'string' &&
  looksLikeJwt(ctx.oidc.params.token);

/** An RFC 7662 answer: `{"active": false}`, or an active answer with the fields docs/protocol.md ("Introspection") lists. */
export type IntrospectionAnswer = Record<string, unknown> & { active: boolean };

/**
 * The answer for a JWT access token to `callerClientId`, given its verified claims (`undefined`: it did
 * not verify). Consults the store for the token's revocation and its grant's: both reads go out
 * together (auto-pipelined). Shared by the provider's step and the dedicated path.
 */
export async function jwtIntrospectionAnswer(
  deps: Omit<TokenEndpointDependencies, 'verifier'>,
  callerClientId: string,
  claims: Readonly<VerifiedJwtAccessToken> | undefined,
): Promise<IntrospectionAnswer> {
  if (!claims) return { active: false };
  const grantDigest = typeof claims[GRANT_DIGEST_CLAIM] === 'string' ? claims[GRANT_DIGEST_CLAIM] : undefined;
  const [revoked, grantActive] = await Promise.all([
    deps.tokenStore.isJwtRevoked(claims.jti),
    grantDigest === undefined ? true : deps.tokenStore.isGrantActive(grantDigest),
  ]);
  if (revoked || !grantActive) return { active: false };
  const audiences = ([] as string[]).concat(claims.aud ?? []);
  // A client's own token has its client id as `sub`; a person's token has the account id.
  const accountId = claims.sub !== undefined && claims.sub !== claims.client_id ? claims.sub : undefined;
  const exchange = exchangeFactsOf(claims);
  if (
    !(await introspectionAllowed(deps, callerClientId, {
      clientId: claims.client_id,
      audiences,
      issuedAt: claims.iat,
      accountId,
      exchange,
      scope: typeof claims.scope === 'string' ? claims.scope : undefined,
    }))
  ) {
    return { active: false };
  }
  const answer: IntrospectionAnswer = {
    active: true,
    client_id: claims.client_id,
    sub: claims.sub ?? claims.client_id,
    aud: claims.aud,
    scope: claims.scope,
    exp: claims.exp,
    iat: claims.iat,
    iss: claims.iss,
    jti: claims.jti,
    // RFC 8693 section 4.1: who acts (a token issued by token exchange).
    ...(exchange !== undefined ? { act: claims.act, ...(claims.may_act !== undefined ? { may_act: claims.may_act } : {}) } : {}),
    // How the person signed in (strong-sign-in.ts), as an opaque token's answer has it.
    ...signInFacts(claims),
    // RFC 9449 section 6.2: a resource server must be able to tell a DPoP-bound token and its key.
    ...senderConstraint(claims),
  };
  await addEntitlementClaims(deps, deps.issuer, answer);
  return answer;
}

/** The `acr`, `amr` and `auth_time` of a person's JWT access token, for its introspection answer. */
function signInFacts(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const facts: Record<string, unknown> = {};
  for (const name of ['acr', 'amr', 'auth_time']) if (claims[name] !== undefined) facts[name] = claims[name];
  return facts;
}

/**
 * How a JWT access token is bound to its sender, as introspection reports it (RFC 9449 section 6.2):
 * a DPoP-bound token carries `cnf.jkt` and answers `token_type: "DPoP"`; an unbound one is `Bearer`.
 * The binding comes from the verified token itself, never from the caller.
 */
export function senderConstraint(claims: Readonly<Record<string, unknown>>): { token_type: 'Bearer' } | { token_type: 'DPoP'; cnf: { jkt: string } } {
  const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
  return typeof jkt === 'string' && jkt !== '' ? { token_type: 'DPoP', cnf: { jkt } } : { token_type: 'Bearer' };
}

async function introspectJwt(ctx: KoaContextWithOIDC, deps: TokenEndpointDependencies): Promise<void> {
  const claims = await deps.verifier.verify(ctx.oidc.params!.token as string);
  ctx.status = 200;
  ctx.body = { active: false };
  ctx.body = await jwtIntrospectionAnswer(deps, ctx.oidc.client!.clientId, claims);
}

/**
 * Fills in what docs/protocol.md ("Introspection") promises and the provider leaves out of its active
 * answer for an opaque token (`body`, changed in place; `token` is the introspected value).
 */
export function completeActiveAnswer(body: Record<string, unknown>, token: string, refreshToken: boolean): void {
  body.sub ??= body.client_id;
  // An exchanged token's own bookkeeping (its `act` stays: RFC 8693 section 4.1).
  for (const claim of EXCHANGE_INTERNAL_CLAIMS) delete body[claim];
  body.jti ??= opaqueTokenId(token);
  body.token_type ??= refreshToken ? 'refresh_token' : 'Bearer';
}

/** Installs the introspection step on `provider` (it runs around the provider's own handling). */
export function installIntrospection(provider: Provider, deps: TokenEndpointDependencies): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = ctx as KoaContextWithOIDC;
    if (oidcCtx.oidc?.route !== 'introspection') return;
    if (refusedStructuredToken(oidcCtx)) await introspectJwt(oidcCtx, deps);
    else if (ctx.status === 200 && (ctx.body as { active?: boolean }).active === true) {
      completeActiveAnswer(ctx.body as Record<string, unknown>, oidcCtx.oidc.params!.token as string, oidcCtx.oidc.entities.RefreshToken !== undefined);
      await addEntitlementClaims(deps, deps.issuer, ctx.body as Record<string, unknown>);
    }
  });
}
