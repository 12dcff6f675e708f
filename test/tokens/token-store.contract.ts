/**
 * The behaviour every TokenStore must have, run against each implementation by its own test file.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sha256Base64Url } from '../../src/shared/secrets.js';
import type { RecordedEvent } from '../../src/security-events/revocation-event.js';
import { LOCKED_OUT, type FailureCounter } from '../../src/limits/failure-counter.js';
import type { AdapterPayload, FoundToken, TokenStore } from '../../src/tokens/token-store.js';

/** A store under test and how to dispose of it and anything it left behind. */
export interface StoreUnderTest {
  store: TokenStore;
  /** A failure counter as the server pairs with this store (on the same connection), allowing 2 failures; its keys go with `cleanup`. */
  failures: FailureCounter;
  cleanup: () => Promise<void>;
}

/** A fresh random value shaped like an opaque token. */
export function newTokenValue(): string {
  return randomBytes(32).toString('base64url');
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A payload as oidc-provider writes it: `jti` is the id. */
export function payloadFor(model: string, id: string, fields: AdapterPayload = {}): AdapterPayload {
  const iat = nowSeconds();
  return { jti: id, kind: model, iat, exp: iat + 60, accountId: 'account-1', clientId: 'client-1', ...fields };
}

/**
 * Writes a token of each kind that is a bearer credential (and a Grant, a Session and a revoked JWT id)
 * and returns their values, which a dump of the store must not reveal. No DeviceCode: its record keeps
 * the id, as findByUserCode must return it (see planUpsert in src/tokens/token-keys.ts).
 */
export async function writeSampleTokens(store: TokenStore): Promise<string[]> {
  const grantId = newTokenValue();
  const [accessToken, refreshToken, code, clientCredentials, session, revokedJti] = Array.from({ length: 6 }, newTokenValue);
  await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId), 60);
  await store.adapter('AccessToken').upsert(accessToken, payloadFor('AccessToken', accessToken, { grantId }), 60);
  await store.adapter('RefreshToken').upsert(refreshToken, payloadFor('RefreshToken', refreshToken, { grantId }), 60);
  await store.adapter('AuthorizationCode').upsert(code, payloadFor('AuthorizationCode', code, { grantId }), 60);
  await store.adapter('AuthorizationCode').consume(code);
  await store.adapter('ClientCredentials').upsert(clientCredentials, payloadFor('ClientCredentials', clientCredentials), 60);
  await store.adapter('Session').upsert(session, payloadFor('Session', session, { uid: newTokenValue() }), 60);
  await store.revokeJwt(revokedJti, nowSeconds() + 60, []);
  return [accessToken, refreshToken, code, clientCredentials, session, revokedJti];
}

/** Defines the contract suite for one TokenStore implementation; `makeStore` runs once for the suite. */
export function describeTokenStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name} (TokenStore contract)`, () => {
    let store: TokenStore;
    let failures: FailureCounter;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      ({ store, failures, cleanup } = await makeStore());
    });

    afterAll(async () => {
      await cleanup();
    });

    it('finds an upserted payload by its id, jti included', async () => {
      const id = newTokenValue();
      const payload = payloadFor('AccessToken', id, { grantId: newTokenValue(), scope: 'openid', extra: { tier: 'gold' } });
      await store.adapter('AccessToken').upsert(id, payload, 60);

      expect(await store.adapter('AccessToken').find(id)).toEqual(payload);
    });

    it('finds nothing for an unknown id, uid or user code', async () => {
      expect(await store.adapter('AccessToken').find(newTokenValue())).toBeUndefined();
      expect(await store.adapter('Session').findByUid(newTokenValue())).toBeUndefined();
      expect(await store.adapter('DeviceCode').findByUserCode('ABCD-EFGH')).toBeUndefined();
    });

    it('keeps models apart', async () => {
      const id = newTokenValue();
      await store.adapter('AccessToken').upsert(id, payloadFor('AccessToken', id), 60);

      expect(await store.adapter('RefreshToken').find(id)).toBeUndefined();
    });

    it('finds a value under the first model holding it, as that model finds it (consumed mark included), in one lookup', async () => {
      const models = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;
      const access = newTokenValue();
      await store.adapter('AccessToken').upsert(access, payloadFor('AccessToken', access, { scope: 'openid' }), 60);
      const refresh = newTokenValue();
      await store.adapter('RefreshToken').upsert(refresh, payloadFor('RefreshToken', refresh), 60);
      await store.adapter('RefreshToken').consume(refresh);

      expect(await store.findIntrospectable(models, access)).toEqual({ model: 'AccessToken', payload: await store.adapter('AccessToken').find(access) });
      const found = (await store.findIntrospectable(models, refresh)) as FoundToken | undefined;
      expect(found).toEqual({ model: 'RefreshToken', payload: await store.adapter('RefreshToken').find(refresh) });
      expect(typeof found?.payload.consumed).toBe('number');
      expect(await store.findIntrospectable(models, newTokenValue())).toBeUndefined();
      // Only the models asked about.
      expect(await store.findIntrospectable(['AccessToken', 'ClientCredentials'], refresh)).toBeUndefined();
    });

    it("checks a lockout guard in the step it is given to: at the key's limit, nothing is found and nothing revoked", async () => {
      const key = `guard-${newTokenValue()}`;
      const id = newTokenValue();
      await store.adapter('ClientCredentials').upsert(id, payloadFor('ClientCredentials', id, { accountId: undefined }), 60);
      const owner = { clientId: 'client-1', expiredAtOrBefore: nowSeconds() - 15, tokensRevokedAt: null };
      const models = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;
      const stored = { model: 'ClientCredentials', payload: await store.adapter('ClientCredentials').find(id) };

      // Below the limit (one failure of two allowed): as without a guard.
      await failures.admit(key, true);
      expect(await store.findIntrospectable(models, id, failures.guard(key))).toEqual(stored);
      expect(await store.findIntrospectable(models, newTokenValue(), failures.guard(key))).toBeUndefined();
      // At the limit: refused, and the token is still there.
      await failures.admit(key, true);
      expect(await store.findIntrospectable(models, id, failures.guard(key))).toBe(LOCKED_OUT);
      expect(await store.revokeOwnClientCredentials(id, owner, failures.guard(key))).toBe(LOCKED_OUT);
      expect(await store.adapter('ClientCredentials').find(id)).toBeDefined();
      // Another key's limit is its own.
      expect(await store.revokeOwnClientCredentials(id, owner, failures.guard(`${key}-other`))).toBe('revoked');
      expect(await store.adapter('ClientCredentials').find(id)).toBeUndefined();
    });

    it('replaces the payload, and any consumed mark, on a second upsert', async () => {
      const id = newTokenValue();
      const adapter = store.adapter('RefreshToken');
      await adapter.upsert(id, payloadFor('RefreshToken', id, { rotations: 0 }), 60);
      await adapter.consume(id);
      const second = payloadFor('RefreshToken', id, { rotations: 1 });
      await adapter.upsert(id, second, 60);

      expect(await adapter.find(id)).toEqual(second);
    });

    it('forgets a payload and its index entries once expiresIn has passed', async () => {
      const id = newTokenValue();
      const uid = newTokenValue();
      await store.adapter('Session').upsert(id, payloadFor('Session', id, { uid }), 1);
      expect(await store.adapter('Session').find(id)).toBeDefined();

      await sleep(1200);

      expect(await store.adapter('Session').find(id)).toBeUndefined();
      expect(await store.adapter('Session').findByUid(uid)).toBeUndefined();
    });

    it('marks a payload consumed, in epoch seconds', async () => {
      const id = newTokenValue();
      const payload = payloadFor('AuthorizationCode', id);
      await store.adapter('AuthorizationCode').upsert(id, payload, 60);
      const before = nowSeconds();
      await store.adapter('AuthorizationCode').consume(id);

      const found = await store.adapter('AuthorizationCode').find(id);
      expect(found).toEqual({ ...payload, consumed: expect.any(Number) });
      expect(found?.consumed).toBeGreaterThanOrEqual(before);
      expect(found?.consumed).toBeLessThanOrEqual(nowSeconds());
    });

    it('does not bring back a payload by consuming it after it is gone', async () => {
      const id = newTokenValue();
      await store.adapter('AuthorizationCode').upsert(id, payloadFor('AuthorizationCode', id), 60);
      await store.adapter('AuthorizationCode').destroy(id);
      await store.adapter('AuthorizationCode').consume(id);

      expect(await store.adapter('AuthorizationCode').find(id)).toBeUndefined();
    });

    it('destroys a payload', async () => {
      const id = newTokenValue();
      await store.adapter('AccessToken').upsert(id, payloadFor('AccessToken', id), 60);
      await store.adapter('AccessToken').destroy(id);

      expect(await store.adapter('AccessToken').find(id)).toBeUndefined();
    });

    it('takes a one-use record: of many takers at once exactly one gets its payload, and it is gone', async () => {
      const id = newTokenValue();
      const payload = { challenge: newTokenValue() };
      await store.adapter('AccountPagePasskeyChallenge').upsert(id, payload, 60);

      const taken = await Promise.all(Array.from({ length: 8 }, () => store.take('AccountPagePasskeyChallenge', id)));
      expect(taken.filter((answer) => answer !== undefined)).toEqual([{ ...payload, jti: id }]);
      expect(await store.adapter('AccountPagePasskeyChallenge').find(id)).toBeUndefined();
      expect(await store.take('AccountPagePasskeyChallenge', id)).toBeUndefined();
      expect(await store.take('AccountPagePasskeyChallenge', newTokenValue())).toBeUndefined();
    });

    it('finds a Session by uid, without jti: the store keeps only a digest of the id', async () => {
      const id = newTokenValue();
      const uid = newTokenValue();
      const payload = payloadFor('Session', id, { uid, authorizations: { 'client-1': { grantId: 'g', sid: 's' } } });
      await store.adapter('Session').upsert(id, payload, 60);

      const found = await store.adapter('Session').findByUid(uid);
      expect(found).toEqual({ ...payload, jti: undefined });
      expect(found).not.toHaveProperty('jti');
    });

    it('finds a DeviceCode by user code, jti included so it can be saved back', async () => {
      const id = newTokenValue();
      const payload = payloadFor('DeviceCode', id, { userCode: 'WDJB-MJHT', params: { scope: 'openid' } });
      await store.adapter('DeviceCode').upsert(id, payload, 60);

      expect(await store.adapter('DeviceCode').findByUserCode('WDJB-MJHT')).toEqual(payload);
    });

    it('does not find a record by a uid it no longer has', async () => {
      const id = newTokenValue();
      const [oldUid, newUid] = [newTokenValue(), newTokenValue()];
      await store.adapter('Session').upsert(id, payloadFor('Session', id, { uid: oldUid }), 60);
      await store.adapter('Session').upsert(id, payloadFor('Session', id, { uid: newUid }), 60);

      expect(await store.adapter('Session').findByUid(oldUid)).toBeUndefined();
      expect(await store.adapter('Session').findByUid(newUid)).toMatchObject({ uid: newUid });
    });

    it('revokes a grant: its Grant record and every token of it, of every model, and nothing else', async () => {
      const [revoked, kept] = [newTokenValue(), newTokenValue()];
      for (const grantId of [revoked, kept]) await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId), 60);
      const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode'];
      const tokens = models.flatMap((model) => [revoked, kept].map((grantId) => ({ model, grantId, id: newTokenValue(), userCode: newTokenValue() })));
      for (const { model, grantId, id, userCode } of tokens) {
        const fields = model === 'DeviceCode' ? { grantId, userCode } : { grantId };
        await store.adapter(model).upsert(id, payloadFor(model, id, fields), 60);
      }
      const interaction = newTokenValue();
      await store.adapter('Interaction').upsert(interaction, payloadFor('Interaction', interaction, { grantId: revoked }), 60);

      await store.adapter('RefreshToken').revokeByGrantId(revoked);

      expect(await store.adapter('Grant').find(revoked)).toBeUndefined();
      expect(await store.adapter('Grant').find(kept)).toMatchObject({ jti: kept });
      for (const { model, grantId, id, userCode } of tokens) {
        const adapter = store.adapter(model);
        if (grantId === revoked) {
          expect(await adapter.find(id)).toBeUndefined();
          if (model === 'DeviceCode') expect(await adapter.findByUserCode(userCode)).toBeUndefined();
        } else {
          expect(await adapter.find(id)).toMatchObject({ jti: id, grantId: kept });
          if (model === 'DeviceCode') expect(await adapter.findByUserCode(userCode)).toMatchObject({ jti: id });
        }
      }
      // An interaction refers to the grant it is for; it is not a token of it.
      expect(await store.adapter('Interaction').find(interaction)).toBeDefined();
      await expect(store.adapter('AccessToken').revokeByGrantId(newTokenValue())).resolves.toBeUndefined();
    });

    it('says whether a grant is active, by the digest of its id, until it is revoked', async () => {
      const grantId = newTokenValue();
      const grantDigest = sha256Base64Url(grantId);
      expect(await store.isGrantActive(grantDigest)).toBe(false);
      await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId), 60);
      expect(await store.isGrantActive(grantDigest)).toBe(true);
      await store.adapter('AccessToken').revokeByGrantId(grantId);
      expect(await store.isGrantActive(grantDigest)).toBe(false);
    });

    it('finds a grant by the digest of its id, without the id, until it is revoked', async () => {
      const grantId = newTokenValue();
      const grantDigest = sha256Base64Url(grantId);
      expect(await store.grantOfDigest(grantDigest)).toBeUndefined();
      await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId, { accountId: 'account-1', clientId: 'client-1' }), 60);
      const found = await store.grantOfDigest(grantDigest);
      expect(found).toMatchObject({ accountId: 'account-1', clientId: 'client-1' });
      expect(found?.jti).toBeUndefined();
      await store.adapter('AccessToken').revokeByGrantId(grantId);
      expect(await store.grantOfDigest(grantDigest)).toBeUndefined();
    });

    it("revokes an account's grants, their tokens and its sessions, and no other account's", async () => {
      const [gone, other] = [newTokenValue(), newTokenValue()];
      const written = await Promise.all(
        [gone, other].map(async (accountId) => {
          const grantId = newTokenValue();
          const [accessToken, refreshToken, session, sessionUid] = Array.from({ length: 4 }, newTokenValue);
          const clientCredentials = newTokenValue();
          await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId, { accountId }), 60);
          await store.adapter('AccessToken').upsert(accessToken, payloadFor('AccessToken', accessToken, { grantId, accountId }), 60);
          await store.adapter('RefreshToken').upsert(refreshToken, payloadFor('RefreshToken', refreshToken, { grantId, accountId }), 120);
          const authorizations = { 'client-a': { sid: `sid-${accountId}`, grantId }, 'client-b': {} };
          await store.adapter('Session').upsert(session, payloadFor('Session', session, { uid: sessionUid, accountId, authorizations }), 60);
          await store.adapter('ClientCredentials').upsert(clientCredentials, payloadFor('ClientCredentials', clientCredentials), 60);
          return { accountId, grantId, accessToken, refreshToken, session, sessionUid, clientCredentials };
        }),
      );

      // The sign-ins it ended, for back-channel logout: each client of the session, with its sid.
      expect(await store.revokeAccount(gone)).toEqual([
        { clientId: 'client-a', sid: `sid-${gone}` },
        { clientId: 'client-b', sid: undefined },
      ]);

      for (const w of written) {
        const present = w.accountId === other;
        const expectation = (found: unknown) => (present ? expect(found).toBeDefined() : expect(found).toBeUndefined());
        expectation(await store.adapter('Grant').find(w.grantId));
        expectation(await store.adapter('AccessToken').find(w.accessToken));
        expectation(await store.adapter('RefreshToken').find(w.refreshToken));
        expectation(await store.adapter('Session').find(w.session));
        expectation(await store.adapter('Session').findByUid(w.sessionUid));
        // Tokens of no account are not the account's to lose.
        expect(await store.adapter('ClientCredentials').find(w.clientCredentials)).toBeDefined();
      }
      await expect(store.revokeAccount(newTokenValue())).resolves.toEqual([]);
    });

    describe("an account's own view (the account page)", () => {
      /** An account with two sessions, a grant signed in from the first that persists logout, one that does not, and their tokens. */
      async function accountWithSessions() {
        const accountId = newTokenValue();
        const [kept, ended] = [newTokenValue(), newTokenValue()];
        const [persisting, ending] = [newTokenValue(), newTokenValue()];
        const [persistingToken, endingToken] = [newTokenValue(), newTokenValue()];
        const [keptUid, endedUid] = [newTokenValue(), newTokenValue()];
        for (const grantId of [persisting, ending]) await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId, { accountId }), 60);
        await store.adapter('AccessToken').upsert(persistingToken, payloadFor('AccessToken', persistingToken, { grantId: persisting, accountId }), 60);
        await store.adapter('RefreshToken').upsert(endingToken, payloadFor('RefreshToken', endingToken, { grantId: ending, accountId }), 60);
        const authorizations = {
          'client-a': { sid: 'sid-a', grantId: ending },
          'client-b': { sid: 'sid-b', grantId: persisting, persistsLogout: true },
        };
        await store.adapter('Session').upsert(ended, payloadFor('Session', ended, { uid: endedUid, accountId, authorizations }), 60);
        await store.adapter('Session').upsert(kept, payloadFor('Session', kept, { uid: keptUid, accountId, authorizations: {} }), 60);
        return { accountId, kept, ended, keptUid, endedUid, persisting, ending, persistingToken, endingToken };
      }

      it("lists the sessions and grants of the account, named by the digests of their ids, and no other account's", async () => {
        const a = await accountWithSessions();
        const other = await accountWithSessions();
        const listed = await store.listAccount(a.accountId);
        const digests = (records: readonly { digest: string }[]) => records.map((r) => r.digest).sort();
        expect(digests(listed.sessions)).toEqual([a.kept, a.ended].map(sha256Base64Url).sort());
        expect(digests(listed.grants)).toEqual([a.persisting, a.ending].map(sha256Base64Url).sort());
        const endedSession = listed.sessions.find((s) => s.digest === sha256Base64Url(a.ended))!;
        expect(endedSession.payload).toMatchObject({ uid: a.endedUid, accountId: a.accountId, kind: 'Session' });
        // The id (a session's cookie value) is not handed out.
        expect(endedSession.payload.jti).toBeUndefined();
        expect(JSON.stringify(listed)).not.toContain(a.ended);
        expect(digests((await store.listAccount(other.accountId)).sessions)).toEqual([other.kept, other.ended].map(sha256Base64Url).sort());
        await expect(store.listAccount(newTokenValue())).resolves.toEqual({ sessions: [], grants: [] });
      });

      it('ends one session as a sign-out does: it goes, with the grants that do not persist logout, and says whom to tell', async () => {
        const a = await accountWithSessions();
        const other = await accountWithSessions();
        // Another account's session is not the account's to end.
        await expect(store.endSession(a.accountId, sha256Base64Url(other.ended))).resolves.toBeUndefined();
        expect(await store.adapter('Session').find(other.ended)).toBeDefined();
        await expect(store.endSession(a.accountId, sha256Base64Url(newTokenValue()))).resolves.toBeUndefined();

        expect(await store.endSession(a.accountId, sha256Base64Url(a.ended))).toEqual([
          { clientId: 'client-a', sid: 'sid-a' },
          { clientId: 'client-b', sid: 'sid-b' },
        ]);
        expect(await store.adapter('Session').find(a.ended)).toBeUndefined();
        expect(await store.adapter('Session').findByUid(a.endedUid)).toBeUndefined();
        expect(await store.adapter('Grant').find(a.ending)).toBeUndefined();
        expect(await store.adapter('RefreshToken').find(a.endingToken)).toBeUndefined();
        // offline_access outlives a sign-out, as with the provider's own.
        expect(await store.adapter('Grant').find(a.persisting)).toBeDefined();
        expect(await store.adapter('AccessToken').find(a.persistingToken)).toBeDefined();
        expect(await store.adapter('Session').find(a.kept)).toBeDefined();
        const listed = await store.listAccount(a.accountId);
        expect(listed.sessions.map((s) => s.digest)).toEqual([sha256Base64Url(a.kept)]);
        expect(listed.grants.map((g) => g.digest)).toEqual([sha256Base64Url(a.persisting)]);
        await expect(store.endSession(a.accountId, sha256Base64Url(a.ended))).resolves.toBeUndefined();
      });

      it("revokes one grant of the account with its tokens, and no other account's", async () => {
        const a = await accountWithSessions();
        const other = await accountWithSessions();
        await expect(store.revokeGrant(a.accountId, sha256Base64Url(other.persisting))).resolves.toBe(false);
        expect(await store.isGrantActive(sha256Base64Url(other.persisting))).toBe(true);

        await expect(store.revokeGrant(a.accountId, sha256Base64Url(a.persisting))).resolves.toBe(true);
        expect(await store.isGrantActive(sha256Base64Url(a.persisting))).toBe(false);
        expect(await store.adapter('AccessToken').find(a.persistingToken)).toBeUndefined();
        expect(await store.adapter('Grant').find(a.ending)).toBeDefined();
        expect((await store.listAccount(a.accountId)).grants.map((g) => g.digest)).toEqual([sha256Base64Url(a.ending)]);
        await expect(store.revokeGrant(a.accountId, sha256Base64Url(a.persisting))).resolves.toBe(false);
      });

      it('revokes an account but one session of it, which stays signed in and listed', async () => {
        const a = await accountWithSessions();
        expect(await store.revokeAccount(a.accountId, { keepSession: sha256Base64Url(a.kept) })).toEqual([
          { clientId: 'client-a', sid: 'sid-a' },
          { clientId: 'client-b', sid: 'sid-b' },
        ]);
        expect(await store.adapter('Session').find(a.kept)).toBeDefined();
        expect(await store.adapter('Session').findByUid(a.keptUid)).toBeDefined();
        expect(await store.adapter('Session').find(a.ended)).toBeUndefined();
        for (const grantId of [a.persisting, a.ending]) expect(await store.adapter('Grant').find(grantId)).toBeUndefined();
        expect(await store.adapter('AccessToken').find(a.persistingToken)).toBeUndefined();
        const listed = await store.listAccount(a.accountId);
        expect(listed).toEqual({ sessions: [expect.objectContaining({ digest: sha256Base64Url(a.kept) })], grants: [] });
        // A session of another account is no exception: everything of this one goes.
        const b = await accountWithSessions();
        await store.revokeAccount(b.accountId, { keepSession: sha256Base64Url(a.kept) });
        await expect(store.listAccount(b.accountId)).resolves.toEqual({ sessions: [], grants: [] });
        expect(await store.adapter('Session').find(a.kept)).toBeDefined();
      });
    });

    it('keeps stored payloads out of reach of callers mutating theirs', async () => {
      const id = newTokenValue();
      const payload = payloadFor('AccessToken', id, { extra: { tier: 'gold' } });
      const expected = structuredClone(payload);
      await store.adapter('AccessToken').upsert(id, payload, 60);
      (payload.extra as { tier: string }).tier = 'changed after upsert';
      const found = await store.adapter('AccessToken').find(id);
      (found?.extra as { tier: string }).tier = 'changed after find';

      expect(await store.adapter('AccessToken').find(id)).toEqual(expected);
    });

    it('refuses the Client model, which lives in PostgreSQL', () => {
      expect(() => store.adapter('Client')).toThrow(TypeError);
    });

    it('rejects an expiresIn that is not a positive whole number of seconds', async () => {
      const id = newTokenValue();
      for (const expiresIn of [0, -1, 1.5]) {
        await expect(store.adapter('AccessToken').upsert(id, payloadFor('AccessToken', id), expiresIn)).rejects.toThrow(RangeError);
      }
      expect(await store.adapter('AccessToken').find(id)).toBeUndefined();
    });

    it('holds a JWT id revoked until expiresAt, then forgets it', async () => {
      const jti = newTokenValue();
      // Two seconds ahead: a whole second away at least, however far into the current second we are.
      const expiresAt = nowSeconds() + 2;
      await store.revokeJwt(jti, expiresAt, []);

      expect(await store.isJwtRevoked(jti)).toBe(true);
      expect(await store.isJwtRevoked(newTokenValue())).toBe(false);

      await sleep(expiresAt * 1000 + 100 - Date.now());

      expect(await store.isJwtRevoked(jti)).toBe(false);
    });

    it('ignores revoking a JWT id that has already expired', async () => {
      const jti = newTokenValue();
      await store.revokeJwt(jti, nowSeconds() - 1, []);

      expect(await store.isJwtRevoked(jti)).toBe(false);
    });

    describe('revokeOwnClientCredentials', () => {
      const owner = (clientId: string, fields: { expiredAtOrBefore?: number; tokensRevokedAt?: number | null } = {}) => ({
        clientId,
        expiredAtOrBefore: fields.expiredAtOrBefore ?? nowSeconds() - 15,
        tokensRevokedAt: fields.tokensRevokedAt ?? null,
      });
      const clientCredentials = async (fields: AdapterPayload = {}) => {
        const id = newTokenValue();
        await store.adapter('ClientCredentials').upsert(id, payloadFor('ClientCredentials', id, { accountId: undefined, ...fields }), 60);
        return id;
      };

      it("deletes the caller's own live token, and only its record", async () => {
        const id = await clientCredentials();
        const other = await clientCredentials();

        expect(await store.revokeOwnClientCredentials(id, owner('client-1'))).toBe('revoked');
        expect(await store.adapter('ClientCredentials').find(id)).toBeUndefined();
        expect(await store.adapter('ClientCredentials').find(other)).toBeDefined();
        expect(await store.revokeOwnClientCredentials(id, owner('client-1'))).toBe('absent');
      });

      it("never deletes another client's token", async () => {
        const id = await clientCredentials();

        expect(await store.revokeOwnClientCredentials(id, owner('client-2'))).toBe('foreign');
        expect(await store.adapter('ClientCredentials').find(id)).toBeDefined();
      });

      it('leaves expired tokens, and tokens issued before a bulk revocation, as the provider finds none', async () => {
        const id = await clientCredentials();
        const { iat, exp } = (await store.adapter('ClientCredentials').find(id))!;

        expect(await store.revokeOwnClientCredentials(id, owner('client-1', { expiredAtOrBefore: exp as number }))).toBe('expired');
        expect(await store.revokeOwnClientCredentials(id, owner('client-1', { tokensRevokedAt: iat as number }))).toBe('hidden');
        expect(await store.adapter('ClientCredentials').find(id)).toBeDefined();
        expect(await store.revokeOwnClientCredentials(id, owner('client-1', { tokensRevokedAt: (iat as number) - 1 }))).toBe('revoked');
      });

      it('changes nothing for access and refresh tokens (their revocation is a grant revocation) or odd records', async () => {
        const access = newTokenValue();
        const refresh = newTokenValue();
        await store.adapter('AccessToken').upsert(access, payloadFor('AccessToken', access, { grantId: newTokenValue() }), 60);
        await store.adapter('RefreshToken').upsert(refresh, payloadFor('RefreshToken', refresh, { grantId: newTokenValue() }), 60);
        const formatted = await clientCredentials({ format: 'jwt' });
        const notBefore = await clientCredentials({ nbf: nowSeconds() });

        for (const id of [access, refresh, formatted, notBefore]) {
          expect(await store.revokeOwnClientCredentials(id, owner('client-1'))).toBe('other');
        }
        expect(await store.adapter('AccessToken').find(access)).toBeDefined();
        expect(await store.adapter('RefreshToken').find(refresh)).toBeDefined();
        expect(await store.adapter('ClientCredentials').find(formatted)).toBeDefined();
        expect(await store.adapter('ClientCredentials').find(notBefore)).toBeDefined();
      });

      it('answers absent for an unknown value', async () => {
        expect(await store.revokeOwnClientCredentials(newTokenValue(), owner('client-1'))).toBe('absent');
      });
    });

    it('answers a ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('revocation events', () => {
      const relayed: RecordedEvent[] = [];
      let relayFails = false;

      beforeAll(() => {
        store.announceTo(async (recorded) => {
          if (relayFails) throw new Error('the relay is down');
          relayed.push(recorded);
        });
      });

      const eventsAbout = (field: 'jti' | 'gid', value: string) =>
        relayed.filter((recorded) => (recorded.event as unknown as Record<string, unknown>)[field] === value).map((recorded) => recorded.event);

      it('a destroyed access token announces the id introspection answers for it to its audiences; a refresh token announces nothing', async () => {
        const [accessToken, clientToken, refreshToken] = [newTokenValue(), newTokenValue(), newTokenValue()];
        await store.adapter('AccessToken').upsert(accessToken, payloadFor('AccessToken', accessToken, { aud: ['https://a.test/', 'https://b.test/'] }), 60);
        await store.adapter('ClientCredentials').upsert(clientToken, payloadFor('ClientCredentials', clientToken, { aud: 'https://a.test/' }), 60);
        await store.adapter('RefreshToken').upsert(refreshToken, payloadFor('RefreshToken', refreshToken, { aud: 'https://a.test/' }), 60);
        for (const [model, value] of [
          ['AccessToken', accessToken],
          ['ClientCredentials', clientToken],
          ['RefreshToken', refreshToken],
        ] as const) {
          await store.adapter(model).destroy(value);
          // Destroying what is gone already announces nothing more.
          await store.adapter(model).destroy(value);
        }
        const idOf = (value: string) => sha256Base64Url(value).slice(0, 32);
        expect(eventsAbout('jti', idOf(accessToken))).toEqual([{ kind: 'token', jti: idOf(accessToken), audiences: ['https://a.test/', 'https://b.test/'] }]);
        expect(eventsAbout('jti', idOf(clientToken))).toEqual([{ kind: 'token', jti: idOf(clientToken), audiences: ['https://a.test/'] }]);
        expect(eventsAbout('jti', idOf(refreshToken))).toEqual([]);
      });

      it('a revoked grant announces its gid (the digest JWT access tokens carry) to its resources, once', async () => {
        const grantId = newTokenValue();
        await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId, { resources: { 'https://a.test/': 'x', 'https://c.test/': 'y' } }), 60);
        // As the provider revokes a grant: each model by grant id, and the Grant record, at once.
        await Promise.all([
          store.adapter('AccessToken').revokeByGrantId(grantId),
          store.adapter('RefreshToken').revokeByGrantId(grantId),
          store.adapter('Grant').destroy(grantId),
        ]);
        const events = eventsAbout('gid', sha256Base64Url(grantId));
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ kind: 'grant', gid: sha256Base64Url(grantId) });
        expect([...(events[0] as unknown as { audiences: string[] }).audiences].sort()).toEqual(['https://a.test/', 'https://c.test/']);
      });

      it("an account's revocation announces each of its grants", async () => {
        const grantId = newTokenValue();
        await store.adapter('Grant').upsert(grantId, payloadFor('Grant', grantId, { accountId: 'account-events', resources: { 'https://a.test/': 'x' } }), 60);
        await store.revokeAccount('account-events');
        expect(eventsAbout('gid', sha256Base64Url(grantId))).toEqual([{ kind: 'grant', gid: sha256Base64Url(grantId), audiences: ['https://a.test/'] }]);
      });

      it('a revoked JWT announces its jti to the audiences given; an opaque token revoked by its client, its id', async () => {
        const jti = newTokenValue();
        await store.revokeJwt(jti, nowSeconds() + 60, ['https://b.test/']);
        expect(eventsAbout('jti', jti)).toEqual([{ kind: 'token', jti, audiences: ['https://b.test/'] }]);
        const value = newTokenValue();
        await store.adapter('ClientCredentials').upsert(value, payloadFor('ClientCredentials', value, { aud: 'https://a.test/' }), 60);
        const owner = { clientId: 'client-1', expiredAtOrBefore: nowSeconds() - 15, tokensRevokedAt: null };
        expect(await store.revokeOwnClientCredentials(value, owner)).toBe('revoked');
        expect(await store.revokeOwnClientCredentials(value, owner)).toBe('absent');
        expect(eventsAbout('jti', sha256Base64Url(value).slice(0, 32))).toHaveLength(1);
      });

      it('an event whose relay failed is kept, and relayed by relayLeftoverAnnouncements', async () => {
        const value = newTokenValue();
        await store.adapter('AccessToken').upsert(value, payloadFor('AccessToken', value, { aud: 'https://a.test/' }), 60);
        relayFails = true;
        await store.adapter('AccessToken').destroy(value);
        relayFails = false;
        const id = sha256Base64Url(value).slice(0, 32);
        expect(eventsAbout('jti', id)).toEqual([]);
        expect(await store.relayLeftoverAnnouncements()).toBeGreaterThanOrEqual(1);
        expect(eventsAbout('jti', id)).toHaveLength(1);
        expect(await store.relayLeftoverAnnouncements()).toBe(0);
      });
    });
  });
}
