/**
 * Key rotation under load, as resource servers live it: two server processes issue tokens without a
 * pause while a resource server verifies every one with jose's createRemoteJWKSet and its default
 * caching (it refetches the JWKS after 10 minutes, or on an unknown kid at most once per 30 s). A
 * rotation and a forced rotation cost no verification; both instances sign with the new key within
 * 2 s; the retired keys stay published, and their tokens valid, until those tokens expire.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { AuthorizationServer } from 'oauth4webapi';
import { kidOf, kidOfToken, listKeys, onInstance, publishedKids, sleep, within, type ListedKey } from '../helpers/keys.js';
import { adminCall, adminToken, discover, introspect, issueToken, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

// Longer than jose's 30 s refetch cooldown, as it must be (docs/signing-keys.md, "Settings").
const JWKS_MAX_AGE = 35;
const JOSE_COOLDOWN_MS = 30_000;

let first: RunningServer;
let second: RunningServer;
let as: AuthorizationServer;
let admin: string;
let api: { identifier: string; introspection: { client_id: string; client_secret: string } };
let client: { client_id: string; client_secret: string };

beforeAll(async () => {
  first = await startServer({ env: { JWKS_MAX_AGE: String(JWKS_MAX_AGE) } });
  second = await startServer({ issuerPort: first.port, env: { JWKS_MAX_AGE: String(JWKS_MAX_AGE) } });
  as = await discover(first.issuer);
  admin = await adminToken(first.issuer);
  api = await registerResourceServer(first.issuer, admin, { identifier: uniqueResource('rotation'), name: 'Rotation', scopes: ['rotation:read'] });
  client = await registerClient(first.issuer, admin, { client_name: 'Busy job', trust: 'internal', resources: [api.identifier], scope: 'rotation:read' });
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
});

interface Issued {
  readonly instance: number;
  /** When the token was asked for: a token asked for after a change was made by the keys after it. */
  readonly requestedAt: number;
  readonly kid: string;
  readonly token: string;
}

describe('rotation under continuous issuance, two instances, a caching resource server', () => {
  it('costs no verification, reaches both instances within 2 s, and keeps retired keys published until their tokens expire', async () => {
    const instances = [as, { ...as, token_endpoint: onInstance(as.token_endpoint!, second.port) }];
    const resourceServer = createRemoteJWKSet(new URL(as.jwks_uri!));
    const verifyOptions = { issuer: first.issuer, audience: api.identifier, typ: 'at+jwt' };
    const issued: Issued[] = [];
    const failures: string[] = [];
    let firstVerifiedAt: number | undefined;
    let running = true;
    const traffic = instances.map(async (instance, index) => {
      while (running) {
        const requestedAt = Date.now();
        try {
          const { accessToken } = await issueToken(instance, client.client_id, client.client_secret, { scope: 'rotation:read' });
          issued.push({ instance: index, requestedAt, kid: kidOfToken(accessToken), token: accessToken });
          await jwtVerify(accessToken, resourceServer, verifyOptions);
          firstVerifiedAt ??= Date.now();
        } catch (error) {
          failures.push(`instance ${index}: ${(error as Error).message}`);
        }
      }
    });

    const rotateAndObserve = async (query: string) => {
      const before = await listKeys(first.issuer, admin);
      expect((await adminCall(first.issuer, admin, 'POST', `/keys/rotate${query}`)).status).toBe(204);
      const rotatedAt = Date.now();
      const promoted = kidOf(before, 'RS256', 'next');
      const waitedMs = await within(2000, async () =>
        [0, 1].every((instance) => issued.some((t) => t.instance === instance && t.requestedAt >= rotatedAt && t.kid === promoted)),
      );
      await sleep(3000 - waitedMs); // traffic goes on past the 2 s bound
      const late = issued.filter((t) => t.requestedAt > rotatedAt + 2000);
      expect(new Set(late.map((t) => t.instance))).toEqual(new Set([0, 1]));
      expect(late.filter((t) => t.kid !== promoted)).toEqual([]);
      // Per instance, how long after the answer it still signed with the old key.
      const lagMs = [0, 1].map((instance) =>
        Math.max(0, ...issued.filter((t) => t.instance === instance && t.requestedAt >= rotatedAt && t.kid !== promoted).map((t) => t.requestedAt - rotatedAt)),
      );
      return { retired: kidOf(before, 'RS256', 'current'), promoted, lagMs };
    };

    try {
      await within(5000, async () => firstVerifiedAt !== undefined);
      const resourceServerFetchedAt = firstVerifiedAt!;

      // A rotation: the next keys have been published for JWKS_MAX_AGE, so every cached JWKS holds them.
      const nextPublishedAt = Math.max(...(await listKeys(first.issuer, admin)).filter((k) => k.state === 'next').map((k) => Date.parse(k.created_at)));
      await sleep(Math.max(0, nextPublishedAt + JWKS_MAX_AGE * 1000 + 200 - Date.now()));
      const rotation = await rotateAndObserve('');

      // The new next keys were published moments ago: a rotation is refused until JWKS_MAX_AGE has passed...
      await sleep(Math.max(0, resourceServerFetchedAt + JOSE_COOLDOWN_MS + 1000 - Date.now()));
      expect((await adminCall(first.issuer, admin, 'POST', '/keys/rotate')).status).toBe(409);
      // ...unless forced. The resource server's JWKS predates the promoted key: it refetches on the unknown kid.
      const forced = await rotateAndObserve('?force=true');
      console.log(
        `last token signed with the old key, per instance, after the rotation: ${rotation.lagMs.join(' / ')} ms, ` +
          `after the forced rotation: ${forced.lagMs.join(' / ')} ms; ${issued.length} tokens verified`,
      );

      running = false;
      await Promise.all(traffic);
      expect(failures).toEqual([]);

      const listed = await listKeys(first.issuer, admin);
      const jwksOfBoth = await Promise.all([publishedKids(as.jwks_uri!), publishedKids(onInstance(as.jwks_uri!, second.port))]);
      for (const retired of [rotation.retired, rotation.promoted]) {
        const key = listed.find((k) => k.kid === retired) as ListedKey;
        expect(key.state).toBe('retired');
        const lastExpiry = Math.max(...issued.filter((t) => t.kid === retired).map((t) => decodeJwt(t.token).exp!));
        expect(Date.parse(key.expires_at!)).toBeGreaterThanOrEqual(lastExpiry * 1000);
        for (const kids of jwksOfBoth) expect(kids).toContain(retired);
      }
      expect(kidOf(listed, 'RS256', 'current')).toBe(forced.promoted);

      // Every token, from before and after both rotations, still verifies for a resource server that starts now.
      const freshResourceServer = createRemoteJWKSet(new URL(as.jwks_uri!));
      for (const { token } of issued) await jwtVerify(token, freshResourceServer, verifyOptions);
      const oldest = issued.find((t) => t.kid === rotation.retired)!;
      expect(await introspect(as, api.introspection.client_id, api.introspection.client_secret, oldest.token)).toMatchObject({ active: true });
    } finally {
      running = false;
      await Promise.all(traffic);
    }
  }, 120_000);
});
