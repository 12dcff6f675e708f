/**
 * The token store in process memory, for `npm start` without Redis: one instance only, and everything
 * is lost on restart. It keeps the same keys and semantics as the Redis store (see token-keys.ts).
 */
import { LOCKED_OUT, type LockedOut, type LockoutGuard } from '../limits/failure-counter.js';
import { randomUUID } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { RecordedEvent, RevocationEvent } from '../security-events/revocation-event.js';
import { sha256Base64Url } from '../shared/secrets.js';
import {
  ANNOUNCED_DESTROY_MODELS,
  grantsEndingWithSession,
  signInsOfSession,
  type AccountRecord,
  type AccountRecords,
  type EndedSignIn,
  type FoundToken,
  type IntrospectableModel,
  type OwnTokenRevocation,
  type RevocationRelay,
  type TokenOwner,
  type TokenStore,
} from './token-store.js';
import {
  assertTokenModel,
  epochSeconds,
  accountKey,
  grantDigestOfRecordKey,
  grantKeys,
  grantKeysOfDigest,
  type GrantKeys,
  matchesLookup,
  planUpsert,
  recordKey,
  restorePayload,
  revokedJwtKey,
  sessionDigestOfRecordKey,
  uidKey,
  userCodeKey,
} from './token-keys.js';

/** How often expired entries nobody reads again are dropped. Reads never see them regardless. */
const SWEEP_INTERVAL_MS = 60_000;

/** What a key holds; the kinds mirror the Redis store's hash, string and set keys. */
type Value =
  | { readonly kind: 'record'; readonly payload: AdapterPayload; consumed?: number }
  | { readonly kind: 'index'; readonly idDigest: string }
  | { readonly kind: 'set'; readonly members: Set<string> }
  | { readonly kind: 'revoked-jwt' };

interface Entry {
  readonly value: Value;
  /** Epoch milliseconds; `Infinity` for entries that never expire. */
  expiresAt: number;
}

/** {@link TokenStore} in a Map. Payloads are deep-copied in and out, so callers cannot change what is stored. */
export class MemoryTokenStore implements TokenStore {
  readonly #entries = new Map<string, Entry>();
  /** Events recorded while no relay was set, or whose relay failed: relayLeftoverAnnouncements takes them. */
  readonly #unrelayed: RecordedEvent[] = [];
  #relay: RevocationRelay | undefined;
  readonly #sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();

  adapter(model: string): Adapter {
    assertTokenModel(model);
    return {
      upsert: async (id, payload, expiresIn) => this.#upsert(model, id, payload, expiresIn),
      find: async (id) => this.#findRecord(recordKey(model, sha256Base64Url(id)), id),
      findByUid: async (uid) => this.#findByIndex(model, uidKey(model, uid), 'uid', uid),
      findByUserCode: async (userCode) => this.#findByIndex(model, userCodeKey(model, userCode), 'userCode', userCode),
      consume: async (id) => {
        const record = this.#get(recordKey(model, sha256Base64Url(id)), 'record');
        if (record) record.consumed = epochSeconds();
      },
      destroy: async (id) => {
        const idDigest = sha256Base64Url(id);
        const key = recordKey(model, idDigest);
        const payload = this.#get(key, 'record')?.payload;
        this.#entries.delete(key);
        if (payload && ANNOUNCED_DESTROY_MODELS.has(model)) {
          await this.#announce(
            model === 'Grant'
              ? { kind: 'grant', gid: idDigest, audiences: Object.keys((payload.resources as object | undefined) ?? {}) }
              : { kind: 'token', jti: idDigest.slice(0, 32), audiences: audiencesOfAud(payload.aud) },
          );
        }
      },
      // Deletes the Grant record too, as the Redis store does: there, that is what revokes the tokens at once.
      revokeByGrantId: async (grantId) => this.#revokeGrant(grantKeys(grantId), sha256Base64Url(grantId)),
    };
  }

  async revokeAccount(accountId: string, options: { readonly keepSession?: string } = {}): Promise<EndedSignIn[]> {
    const key = accountKey(accountId);
    const set = this.#get(key, 'set');
    const kept = options.keepSession === undefined ? [] : this.#keysOfSession(accountId, options.keepSession);
    const ended: EndedSignIn[] = [];
    for (const member of set?.members ?? []) {
      if (kept.includes(member)) continue;
      const grantDigest = grantDigestOfRecordKey(member);
      if (grantDigest !== undefined) await this.#revokeGrant(grantKeysOfDigest(grantDigest), grantDigest);
      else if (member.startsWith('Session:{')) ended.push(...signInsOfSession(this.#get(member, 'record')?.payload));
      this.#entries.delete(member);
      set!.members.delete(member);
    }
    if (kept.length === 0) this.#entries.delete(key);
    return ended;
  }

  async take(model: string, id: string): Promise<AdapterPayload | undefined> {
    assertTokenModel(model);
    const key = recordKey(model, sha256Base64Url(id));
    const payload = this.#findRecord(key, id);
    this.#entries.delete(key);
    return payload;
  }

  async listAccount(accountId: string): Promise<AccountRecords> {
    const sessions: AccountRecord[] = [];
    const grants: AccountRecord[] = [];
    for (const member of this.#get(accountKey(accountId), 'set')?.members ?? []) {
      const sessionDigest = sessionDigestOfRecordKey(member);
      const grantDigest = grantDigestOfRecordKey(member);
      const digest = sessionDigest ?? grantDigest;
      const payload = digest === undefined ? undefined : this.#findRecord(member, undefined);
      if (digest === undefined || payload?.accountId !== accountId) continue;
      (sessionDigest !== undefined ? sessions : grants).push({ digest, payload });
    }
    return { sessions, grants };
  }

  async endSession(accountId: string, sessionDigest: string): Promise<EndedSignIn[] | undefined> {
    const keys = this.#keysOfSession(accountId, sessionDigest);
    if (keys.length === 0) return undefined;
    const payload = this.#get(keys[0], 'record')!.payload;
    const set = this.#get(accountKey(accountId), 'set');
    for (const key of keys) {
      this.#entries.delete(key);
      set?.members.delete(key);
    }
    for (const grantId of grantsEndingWithSession(payload)) await this.#revokeGrant(grantKeys(grantId), sha256Base64Url(grantId));
    return signInsOfSession(payload);
  }

  async revokeGrant(accountId: string, grantDigest: string): Promise<boolean> {
    const grant = grantKeysOfDigest(grantDigest);
    if (this.#get(grant.record, 'record')?.payload.accountId !== accountId) return false;
    await this.#revokeGrant(grant, grantDigest);
    this.#get(accountKey(accountId), 'set')?.members.delete(grant.record);
    return true;
  }

  /** The keys of the account's session with this digest: its record and its uid index entry; none if it is not the account's. */
  #keysOfSession(accountId: string, sessionDigest: string): string[] {
    const key = recordKey('Session', sessionDigest);
    const payload = this.#get(key, 'record')?.payload;
    if (payload?.accountId !== accountId) return [];
    return [key, ...(typeof payload.uid === 'string' ? [uidKey('Session', payload.uid)] : [])];
  }

  async findIntrospectable(models: readonly IntrospectableModel[], token: string, guard?: LockoutGuard): Promise<FoundToken | undefined | LockedOut> {
    if (guard && (await guard.atLimit())) return LOCKED_OUT;
    const digest = sha256Base64Url(token);
    for (const model of models) {
      const payload = this.#findRecord(recordKey(model, digest), token);
      if (payload) return { model, payload };
    }
    return undefined;
  }

  /** As the Redis store's script (REVOKE_OWN_CLIENT_CREDENTIALS_SCRIPT): synchronous, hence atomic. */
  async revokeOwnClientCredentials(token: string, owner: TokenOwner, guard?: LockoutGuard): Promise<OwnTokenRevocation | LockedOut> {
    if (guard && (await guard.atLimit())) return LOCKED_OUT;
    const digest = sha256Base64Url(token);
    if (this.#get(recordKey('AccessToken', digest), 'record') || this.#get(recordKey('RefreshToken', digest), 'record')) return 'other';
    const key = recordKey('ClientCredentials', digest);
    const record = this.#get(key, 'record');
    if (!record) return 'absent';
    const p = record.payload;
    if (
      p.kind !== 'ClientCredentials' ||
      typeof p.clientId !== 'string' ||
      typeof p.iat !== 'number' ||
      typeof p.exp !== 'number' ||
      ['jti', 'nbf', 'format', 'jwt', 'jwt-ietf', 'paseto'].some((field) => p[field] !== undefined)
    ) {
      return 'other';
    }
    if (p.clientId !== owner.clientId) return 'foreign';
    if (p.exp <= owner.expiredAtOrBefore) return 'expired';
    if (owner.tokensRevokedAt !== null && p.iat <= owner.tokensRevokedAt) return 'hidden';
    this.#entries.delete(key);
    await this.#announce({ kind: 'token', jti: digest.slice(0, 32), audiences: audiencesOfAud(p.aud) });
    return 'revoked';
  }

  async revokeJwt(jti: string, expiresAt: number, audiences: readonly string[]): Promise<void> {
    if (expiresAt <= epochSeconds()) return;
    this.#entries.set(revokedJwtKey(jti), { value: { kind: 'revoked-jwt' }, expiresAt: expiresAt * 1000 });
    await this.#announce({ kind: 'token', jti, audiences: [...audiences] });
  }

  announceTo(relay: RevocationRelay): void {
    this.#relay = relay;
  }

  async relayLeftoverAnnouncements(): Promise<number> {
    const leftovers = this.#unrelayed.splice(0);
    let relayed = 0;
    for (const recorded of leftovers) if (await this.#relayOne(recorded)) relayed++;
    return relayed;
  }

  /** Records the event of a revocation just made (in the same synchronous step) and relays it. */
  async #announce(event: RevocationEvent): Promise<void> {
    if (event.kind === 'token' || event.kind === 'grant') {
      if (event.audiences.length === 0) return;
    }
    await this.#relayOne({ id: randomUUID(), at: epochSeconds(), event });
  }

  async #relayOne(recorded: RecordedEvent): Promise<boolean> {
    try {
      if (!this.#relay) throw new Error('no relay yet');
      await this.#relay(recorded);
      return true;
    } catch {
      this.#unrelayed.push(recorded);
      return false;
    }
  }

  async isGrantActive(grantDigest: string): Promise<boolean> {
    return this.#get(grantKeysOfDigest(grantDigest).record, 'record') !== undefined;
  }

  async grantOfDigest(grantDigest: string): Promise<AdapterPayload | undefined> {
    return this.#findRecord(grantKeysOfDigest(grantDigest).record, undefined);
  }

  async isJwtRevoked(jti: string): Promise<boolean> {
    return this.#get(revokedJwtKey(jti), 'revoked-jwt') !== undefined;
  }

  async ping(): Promise<void> {}

  /** Stops the sweep timer. The entries stay readable (and expire on read). */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  #upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): void {
    const plan = planUpsert(model, id, payload, expiresIn);
    const expiresAt = plan.ttl === undefined ? Infinity : Date.now() + plan.ttl * 1000;
    this.#entries.set(plan.key, { value: { kind: 'record', payload: structuredClone(plan.stored) }, expiresAt });
    for (const indexKey of plan.indexKeys) {
      this.#entries.set(indexKey, { value: { kind: 'index', idDigest: plan.idDigest }, expiresAt });
    }
    if (plan.grantIndexKey !== undefined) this.#joinSet(plan.grantIndexKey, [plan.key, ...plan.indexKeys], expiresAt);
    if (plan.accountKey !== undefined) this.#joinSet(plan.accountKey, [plan.key, ...plan.indexKeys], expiresAt);
  }

  /** Adds `members` to the set at `setKey`, which lives as long as its longest-lived member. */
  #joinSet(setKey: string, members: readonly string[], expiresAt: number): void {
    const set = this.#live(setKey);
    if (set?.value.kind === 'set') {
      for (const member of members) set.value.members.add(member);
      set.expiresAt = Math.max(set.expiresAt, expiresAt);
    } else {
      this.#entries.set(setKey, { value: { kind: 'set', members: new Set(members) }, expiresAt });
    }
  }

  #findRecord(key: string, id: string | undefined): AdapterPayload | undefined {
    const record = this.#get(key, 'record');
    return record && restorePayload(structuredClone(record.payload), record.consumed, id);
  }

  #findByIndex(model: string, indexKey: string, field: 'uid' | 'userCode', value: string): AdapterPayload | undefined {
    const index = this.#get(indexKey, 'index');
    const payload = index && this.#findRecord(recordKey(model, index.idDigest), undefined);
    return payload && matchesLookup(payload, field, value) ? payload : undefined;
  }

  /** The unexpired entry at `key`; an expired one is dropped on the way. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.expiresAt > Date.now()) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  /** The live value at `key` if it is of `kind`. */
  #get<K extends Value['kind']>(key: string, kind: K): Extract<Value, { kind: K }> | undefined {
    const value = this.#live(key)?.value;
    return value?.kind === kind ? (value as Extract<Value, { kind: K }>) : undefined;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key);
    }
  }

  /** Deletes a grant's record, its index, and every token key the index lists. */
  async #revokeGrant(grant: GrantKeys, grantDigest: string): Promise<void> {
    const payload = this.#get(grant.record, 'record')?.payload;
    for (const member of this.#get(grant.index, 'set')?.members ?? []) this.#entries.delete(member);
    this.#entries.delete(grant.index);
    this.#entries.delete(grant.record);
    if (payload) await this.#announce({ kind: 'grant', gid: grantDigest, audiences: Object.keys((payload.resources as object | undefined) ?? {}) });
  }
}

/** The audiences an access token's `aud` names (a string or a list). */
function audiencesOfAud(aud: unknown): string[] {
  return ([] as unknown[]).concat(aud ?? []).filter((value): value is string => typeof value === 'string');
}
