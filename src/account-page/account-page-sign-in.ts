/**
 * The account page as a relying party of its own issuer: the authorization request (code flow, PKCE
 * S256, state, nonce) and the code exchange at the token endpoint, over HTTP like any app's, then the
 * ID token's checks (signature against the keys in force, issuer, audience, nonce).
 *
 * The exchange goes to this server's own listening socket (the address and port the callback arrived
 * on), not to the public issuer URL: behind a proxy the public URL may not be reachable from inside,
 * and any instance answers alike (the provider builds every URL from the issuer, never from Host).
 */
import { sha256Base64Url } from '../shared/secrets.js';
import type { Context } from 'koa';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { JwksDocument } from '../issuer/jwks-endpoint.js';
import { PROTOCOL_ROUTES } from '../issuer/protocol-routes.js';
import type { SignInTransaction } from './account-page-session.js';

/** How long the code exchange may take. */
const EXCHANGE_TIMEOUT_MS = 5_000;

/** The sign-in did not complete; the message is safe to show (it names no secret). */
export class AccountSignInError extends Error {}

/** The authorization request that signs a person in to the account page. */
export function authorizationUrl(issuer: string, clientId: string, redirectUri: string, transaction: SignInTransaction): string {
  const url = new URL(`${issuer}${PROTOCOL_ROUTES.authorization}`);
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid',
    state: transaction.state,
    nonce: transaction.nonce,
    code_challenge: sha256Base64Url(transaction.codeVerifier),
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

/** This server's token endpoint as reached from inside: the socket the request `ctx` arrived on. */
function ownTokenEndpoint(ctx: Context): string {
  const { localAddress, localPort } = ctx.req.socket;
  if (!localAddress || !localPort) throw new Error('the request has no local address');
  const host = localAddress.includes(':') ? `[${localAddress}]` : localAddress;
  return `http://${host}:${localPort}${PROTOCOL_ROUTES.token}`;
}

/** What the ID token says of the sign-in. */
export interface SignedIn {
  readonly accountId: string;
}

/**
 * Exchanges the code (with the PKCE verifier) and checks the ID token.
 * @throws AccountSignInError when the token endpoint refuses or the ID token does not check out.
 */
export async function exchangeCode(
  ctx: Context,
  client: { issuer: string; clientId: string; redirectUri: string; jwks: JwksDocument },
  code: string,
  transaction: SignInTransaction,
): Promise<SignedIn> {
  const response = await fetch(ownTokenEndpoint(ctx), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: client.redirectUri,
      client_id: client.clientId,
      code_verifier: transaction.codeVerifier,
    }),
    signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS),
  });
  const body = (await response.json().catch(() => ({}))) as { id_token?: unknown; error?: unknown };
  if (!response.ok || typeof body.id_token !== 'string') {
    // A 5xx (a store down) is the server's trouble, not a refused sign-in.
    if (response.status >= 500) throw new Error(`the token endpoint answered ${response.status}`);
    throw new AccountSignInError(`the sign-in was refused (${typeof body.error === 'string' ? body.error : response.status})`);
  }
  const keys = createLocalJWKSet(JSON.parse(client.jwks.body.toString('utf8')) as JSONWebKeySet);
  const { payload } = await jwtVerify(body.id_token, keys, { issuer: client.issuer, audience: client.clientId }).catch(() => {
    throw new AccountSignInError('the ID token did not verify');
  });
  if (payload.nonce !== transaction.nonce || typeof payload.sub !== 'string') throw new AccountSignInError('the ID token is not for this sign-in');
  return { accountId: payload.sub };
}
