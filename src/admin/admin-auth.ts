/**
 * Admin API authorisation: a bearer access token this server issued for the admin audience, holding
 * `admin:read` (reads) or `admin:write` (everything else). Admin tokens are opaque, so a revoked one
 * stops working at once.
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
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

/** Who is calling, for the audit trail. */
export interface AdminPrincipal {
  readonly clientId: string;
  readonly scopes: ReadonlySet<string>;
}

const unauthorized = (description: string) =>
  new Problem(401, description, undefined, {
    'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description}"`,
  });

/** Middleware that authenticates the bearer token and puts the principal on `ctx.state.admin`. */
export function adminAuthentication(currentProvider: () => Provider, clients: TokenIssuerCheck, issuer: string) {
  const audience = adminAudience(issuer);
  return async function authenticateAdmin(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get('authorization');
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match) {
      throw new Problem(401, 'a bearer access token is required', undefined, { 'WWW-Authenticate': 'Bearer' });
    }
    const token = await currentProvider().ClientCredentials.find(match[1]!);
    const audiences = ([] as string[]).concat((token?.aud as string | string[] | undefined) ?? []);
    if (!token || !token.isValid || !audiences.includes(audience)) {
      throw unauthorized('the access token is invalid, expired, revoked or not for the admin API');
    }
    if (!(await clients.allowsTokenIssuedAt(token.clientId!, token.iat!))) {
      throw unauthorized('the access token was revoked');
    }
    ctx.state.admin = { clientId: token.clientId!, scopes: new Set((token.scope ?? '').split(' ')) } satisfies AdminPrincipal;
    await next();
  };
}

/** Middleware demanding `admin:read` for safe methods and `admin:write` for the rest. */
export async function requireAdminScope(ctx: Context, next: Next): Promise<void> {
  const needed: AdminScope = ctx.method === 'GET' || ctx.method === 'HEAD' ? 'admin:read' : 'admin:write';
  if (!adminOf(ctx).scopes.has(needed)) {
    throw new Problem(403, `the access token lacks the scope ${needed}`, undefined, {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${needed}"`,
    });
  }
  await next();
}

/**
 * The admin principal `adminAuthentication` put on the request. `ctx.state` is untyped: a cast would
 * turn a principal that was never set into an `undefined` actor in the audit trail, so its absence
 * throws instead (a route mounted outside the admin authentication).
 */
export function adminOf(ctx: Context): AdminPrincipal {
  const principal: unknown = ctx.state.admin;
  if (!principal || typeof principal !== 'object' || typeof (principal as AdminPrincipal).clientId !== 'string') {
    throw new Error('no authenticated admin principal on this request');
  }
  return principal as AdminPrincipal;
}

/** The admin client making the request, for the audit trail (set by `adminAuthentication`). */
export const actorOf = (ctx: Context): string => adminOf(ctx).clientId;
