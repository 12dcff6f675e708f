/**
 * Admin API authorisation: an access token this server issued for the admin audience, holding
 * `admin:read` (reads) or `admin:write` (everything else): an admin client's own (client credentials)
 * token, or a person's token (code flow) whose scopes the person is entitled to now
 * (docs/groups-and-entitlements.md). Admin tokens are opaque, so a revoked one stops working at once. A DPoP-bound token (RFC 9449) counts only with `Authorization: DPoP` and a
 * valid proof for this request; sent as a bearer token it is refused, like a stolen one would be.
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { stillEntitled, type EntitlementCheckDependencies } from '../issuer/entitlements.js';
import { checkDpopProof, DPOP_SIGNING_ALGS, InvalidDpopProofError } from './dpop-proof.js';
import { Problem } from './problem.js';

/** The scopes of the admin audience. */
export const ADMIN_SCOPES = ['admin:read', 'admin:write'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** The admin audience of an issuer. */
export const adminAudience = (issuer: string): string => `${issuer}/admin`;

/** What admin authentication asks of the client registry: whether a client's token still counts. */
export interface TokenIssuerCheck {
  allowsTokenIssuedAt(clientId: string, issuedAt: number): Promise<boolean>;
}

/** What admin authentication asks about a person's token: whether the account and its entitlements still allow it. */
export interface PersonTokenCheck extends EntitlementCheckDependencies {
  readonly accounts: { allowsTokenIssuedAt(accountId: string, issuedAt: number): Promise<boolean> };
}

/** Who is calling, for the audit trail. */
export interface AdminPrincipal {
  readonly clientId: string;
  /** The person behind the token, when it is a person's (a person administrator). */
  readonly accountId?: string;
  readonly scopes: ReadonlySet<string>;
  /** How the token was presented, for the challenge of a 403. */
  readonly scheme: 'Bearer' | 'DPoP';
}

const DPOP_ALGS = `algs="${DPOP_SIGNING_ALGS.join(' ')}"`;

/** A 401 whose challenge names the scheme the token was (or must be) presented with. */
const unauthorized = (description: string, scheme: 'Bearer' | 'DPoP' = 'Bearer', error = 'invalid_token') =>
  new Problem(401, description, undefined, {
    'WWW-Authenticate': `${scheme} error="${error}", error_description="${description}"${scheme === 'DPoP' ? `, ${DPOP_ALGS}` : ''}`,
  });

// Keyed by the request's context rather than kept on the untyped `ctx.state`, so reading it needs no cast
// and nothing but adminAuthentication can set it.
const principals = new WeakMap<Context, AdminPrincipal>();

/** Middleware that authenticates the access token (Bearer, or DPoP with its proof) and records the principal for `principalOf`. */
export function adminAuthentication(currentProvider: () => Provider, clients: TokenIssuerCheck, issuer: string, people: PersonTokenCheck) {
  const audience = adminAudience(issuer);
  return async function authenticateAdmin(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get('authorization');
    const match = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match) {
      throw new Problem(401, 'an access token is required', undefined, { 'WWW-Authenticate': `Bearer, DPoP ${DPOP_ALGS}` });
    }
    const scheme = match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const value = match[2];
    const provider = currentProvider();
    // A client's own token, else a person's (its account named for the audit trail).
    const token = (await provider.ClientCredentials.find(value)) ?? (await personToken(provider, value));
    const accountId = token && 'accountId' in token ? token.accountId : undefined;
    const audiences = ([] as string[]).concat(token?.aud ?? []);
    if (!token || !token.isValid || !audiences.includes(audience)) {
      throw unauthorized('the access token is invalid, expired, revoked or not for the admin API', scheme);
    }
    const proof = ctx.get('dpop');
    if (token.jkt) {
      // A bound token is worth nothing without the key: the scheme, then the proof for this request.
      if (scheme !== 'DPoP') throw unauthorized('this access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof', 'DPoP');
      if (!proof) throw unauthorized('a DPoP proof is required', 'DPoP', 'invalid_dpop_proof');
      try {
        await checkDpopProof(provider, proof, {
          method: ctx.method,
          url: `${issuer}${ctx.path}`,
          accessToken: value,
          jkt: token.jkt,
          clientId: token.clientId!,
        });
      } catch (error) {
        if (error instanceof InvalidDpopProofError) throw unauthorized(error.message, 'DPoP', 'invalid_dpop_proof');
        throw error;
      }
    } else if (scheme === 'DPoP' || proof) {
      // As oidc-provider does at userinfo: a proof (or the DPoP scheme) with an unbound token is an error.
      throw unauthorized('this access token is not DPoP-bound: send it as Authorization: Bearer without a DPoP proof');
    }
    if (!(await clients.allowsTokenIssuedAt(token.clientId!, token.iat))) {
      throw unauthorized('the access token was revoked');
    }
    if (accountId !== undefined && !(await personStillAllowed(provider, people, token as PersonAccessToken, audiences))) {
      throw unauthorized('the access token was revoked, or its person is no longer entitled to it');
    }
    principals.set(ctx, {
      clientId: token.clientId!,
      ...(accountId !== undefined ? { accountId } : {}),
      scopes: new Set((token.scope ?? '').split(' ')),
      scheme,
    });
    await next();
  };
}

/** Middleware demanding `admin:read` for safe methods and `admin:write` for the rest. */
export async function requireAdminScope(ctx: Context, next: Next): Promise<void> {
  const needed: AdminScope = ctx.method === 'GET' || ctx.method === 'HEAD' ? 'admin:read' : 'admin:write';
  const principal = principalOf(ctx);
  if (!principal.scopes.has(needed)) {
    throw new Problem(403, `the access token lacks the scope ${needed}`, undefined, {
      'WWW-Authenticate': `${principal.scheme} error="insufficient_scope", scope="${needed}"`,
    });
  }
  await next();
}

/**
 * Who is making the request, as `adminAuthentication` found. Throws (a 500) when it did not run: a route
 * mounted outside the admin API's middleware is a wiring bug, never an anonymous caller.
 */
export function principalOf(ctx: Context): AdminPrincipal {
  const principal = principals.get(ctx);
  if (!principal) throw new Error('admin route reached without adminAuthentication');
  return principal;
}

type PersonAccessToken = InstanceType<Provider['AccessToken']>;

/** A person's access token with this value, if any (a token of no account is no person's). */
async function personToken(provider: Provider, value: string): Promise<PersonAccessToken | undefined> {
  const token = await provider.AccessToken.find(value);
  return token?.accountId ? token : undefined;
}

/** Whether a person's token still counts: its grant exists, its account allows it, and the person is entitled to its scopes now. */
async function personStillAllowed(provider: Provider, people: PersonTokenCheck, token: PersonAccessToken, audiences: readonly string[]): Promise<boolean> {
  const grant = token.grantId ? await provider.Grant.find(token.grantId) : undefined;
  return (
    grant !== undefined &&
    grant.accountId === token.accountId &&
    (await people.accounts.allowsTokenIssuedAt(token.accountId, token.iat)) &&
    (await stillEntitled(people, { accountId: token.accountId, audiences, scope: token.scope }))
  );
}

/**
 * Who is making the request, for the audit trail: the admin client's id, or for a person
 * administrator `account:<account id> via <client id>`.
 */
export const actorOf = (ctx: Context): string => {
  const principal = principalOf(ctx);
  return principal.accountId === undefined ? principal.clientId : `account:${principal.accountId} via ${principal.clientId}`;
};
