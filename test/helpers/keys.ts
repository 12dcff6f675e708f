/**
 * Signing keys as outsiders see them: the admin API's list, the published JWKS of one instance, and
 * the kid a token was signed with.
 */
import { decodeProtectedHeader } from 'jose';
import { adminCall } from './oauth.js';

/** A key as `GET /admin/keys` lists it. */
export interface ListedKey {
  kid: string;
  alg: string;
  state: 'next' | 'current' | 'retired';
  created_at: string;
  activates_at: string | null;
  retires_at: string | null;
  expires_at: string | null;
}

/** Every published key, from the admin API. */
export async function listKeys(issuer: string, admin: string): Promise<ListedKey[]> {
  const answer = await adminCall(issuer, admin, 'GET', '/keys?limit=100');
  if (answer.status !== 200) throw new Error(`GET /admin/keys answered ${answer.status}`);
  return answer.body.items as ListedKey[];
}

/** The kid of the key in `state` for `alg`. */
export function kidOf(keys: readonly ListedKey[], alg: string, state: ListedKey['state']): string {
  const key = keys.find((k) => k.alg === alg && k.state === state);
  if (!key) throw new Error(`no ${state} ${alg} key in ${JSON.stringify(keys)}`);
  return key.kid;
}

/** `url` (an endpoint found by discovery) on the instance listening on `port`: instances share one issuer URL. */
export function onInstance(url: string, port: number): string {
  const moved = new URL(url);
  moved.port = String(port);
  return moved.toString();
}

/** The kids in the JWKS at `jwksUri`, fetched past any cache. */
export async function publishedKids(jwksUri: string): Promise<string[]> {
  const response = await fetch(jwksUri, { headers: { 'cache-control': 'no-cache' } });
  return ((await response.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

/** The kid in a JWT's header. */
export const kidOfToken = (jwt: string): string => decodeProtectedHeader(jwt).kid!;

/** Polls `probe` every 20 ms until it returns true; resolves with the milliseconds it took, rejects after `timeoutMs`. */
export async function within(timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
