/**
 * What the revocation events said, kept so that a token the issuer revoked is refused here even where
 * the kit never asks the issuer again: a JWT (validated offline) or a cached introspection answer.
 */

/** The facts of one revocation event, whatever its type URI (docs/resource-servers.md, "Revocation events"). */
export interface RevocationFacts {
  /** An access token was revoked: a JWT's `jti`, or the `jti` introspection answered for an opaque token. */
  readonly jti?: string | undefined;
  /** A grant was revoked: the `gid` claim of the JWT access tokens issued from it. */
  readonly gid?: string | undefined;
  /** With `revokedBefore`: the tokens of this client issued before then are dead. */
  readonly clientId?: string | undefined;
  /** With `revokedBefore`: the tokens of this account issued before then are dead; with `gid`, the grant's account. */
  readonly sub?: string | undefined;
  /** NumericDate (seconds). */
  readonly revokedBefore?: number | undefined;
  /** A signing key was revoked. */
  readonly kid?: string | undefined;
  /**
   * With `sub` and `revokedBefore`: the person lost these scopes here; only their tokens issued before
   * then that hold one of them are dead (an entitlements-revoked event).
   */
  readonly scopes?: readonly string[] | undefined;
  /** As `scopes`, for the roles the person lost here: their tokens carrying one of them are dead. */
  readonly roles?: readonly string[] | undefined;
}

/** Whether the facts take only some of a person's tokens: those carrying a lost scope or role. */
export const isEntitlementLoss = (facts: RevocationFacts): boolean => (facts.scopes?.length ?? 0) > 0 || (facts.roles?.length ?? 0) > 0;

/** The claims of a token that revocation is decided on. */
export interface RevocableToken {
  readonly jti?: unknown;
  readonly gid?: unknown;
  readonly client_id?: unknown;
  readonly sub?: unknown;
  readonly iat?: unknown;
  /** Space-separated. */
  readonly scope?: unknown;
  readonly roles?: unknown;
  /** A JWT whose roles did not fit names `roles` here instead (OpenID Connect Core 5.6.2). */
  readonly _claim_names?: unknown;
}

/** Marks a lost scope or role in a person's entitlement cut-offs. */
const scopeKey = (scope: string) => `scope ${scope}`;
const roleKey = (role: string) => `role ${role}`;

/**
 * The keys (`scopeKey`, `roleKey`) of what `token` carries. A JWT whose `roles` overflowed to
 * introspection may carry any role: `anyRole` says so (a lost role then refuses it: fail closed).
 */
function carried(token: RevocableToken): { keys: string[]; anyRole: boolean } {
  const scopes = typeof token.scope === 'string' ? token.scope.split(' ').filter(Boolean) : [];
  const roles = Array.isArray(token.roles) ? token.roles.filter((role): role is string => typeof role === 'string') : [];
  const names = token._claim_names;
  const anyRole = typeof names === 'object' && names !== null && 'roles' in names;
  return { keys: [...scopes.map(scopeKey), ...roles.map(roleKey)], anyRole };
}

/** Whether `token` carries a scope or role the facts of an entitlement loss name (whatever its `iat`). */
export function carriesLost(facts: RevocationFacts, token: RevocableToken): boolean {
  const { keys, anyRole } = carried(token);
  if (anyRole && (facts.roles?.length ?? 0) > 0) return true;
  const lost = new Set([...(facts.scopes ?? []).map(scopeKey), ...(facts.roles ?? []).map(roleKey)]);
  return keys.some((key) => lost.has(key));
}

/** How long entries are kept, and how many. */
export interface RevocationListOptions {
  /**
   * How long a revoked `jti` or `gid`, or a cut-off, is remembered. Must be at least the longest
   * access token lifetime of the resource server (after that, the tokens it refuses have expired
   * anyway). Default 24 h.
   */
  readonly retentionMs?: number;
  /** The most entries of each kind kept (the oldest go first). Default 100 000. */
  readonly maxEntries?: number;
}

/** Entries with the time they may be forgotten, oldest first (a Map keeps insertion order). */
class ExpiringSet<V> {
  private readonly entries = new Map<string, { value: V; forgetAt: number }>();

  constructor(private readonly maxEntries: number) {}

  set(key: string, value: V, forgetAt: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, forgetAt });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  get size(): number {
    return this.entries.size;
  }

  prune(now: number): void {
    for (const [key, entry] of this.entries) if (entry.forgetAt <= now) this.entries.delete(key);
  }
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** The revoked tokens, grants, and client, account (whole, or of lost scopes and roles) and global cut-offs. */
export class RevocationList {
  private readonly retentionMs: number;
  private readonly jtis: ExpiringSet<true>;
  private readonly grants: ExpiringSet<true>;
  private readonly clientCutoffs: ExpiringSet<number>;
  private readonly accountCutoffs: ExpiringSet<number>;
  /** Per account: per lost scope or role (`scopeKey`, `roleKey`), the cut-off. */
  private readonly entitlementCutoffs: ExpiringSet<Map<string, number>>;
  private globalCutoff = 0;
  private lastPrune = Date.now();

  constructor(options: RevocationListOptions = {}) {
    this.retentionMs = options.retentionMs ?? 24 * 3600_000;
    const max = options.maxEntries ?? 100_000;
    this.jtis = new ExpiringSet(max);
    this.grants = new ExpiringSet(max);
    this.clientCutoffs = new ExpiringSet(max);
    this.accountCutoffs = new ExpiringSet(max);
    this.entitlementCutoffs = new ExpiringSet(max);
  }

  /** How many entries are kept (for tests and metrics). */
  get size(): number {
    return this.jtis.size + this.grants.size + this.clientCutoffs.size + this.accountCutoffs.size + this.entitlementCutoffs.size;
  }

  /** Records one event's facts. */
  record(facts: RevocationFacts): void {
    const now = Date.now();
    const forgetAt = now + this.retentionMs;
    if (facts.jti !== undefined) this.jtis.set(facts.jti, true, forgetAt);
    if (facts.gid !== undefined) this.grants.set(facts.gid, true, forgetAt);
    if (facts.revokedBefore !== undefined) {
      const cutoff = facts.revokedBefore;
      const raise = (set: ExpiringSet<number>, key: string) => set.set(key, Math.max(cutoff, set.get(key) ?? 0), cutoff * 1000 + this.retentionMs);
      if (facts.clientId !== undefined) raise(this.clientCutoffs, facts.clientId);
      if (facts.sub !== undefined && isEntitlementLoss(facts)) this.recordLoss(facts.sub, facts, cutoff);
      else if (facts.sub !== undefined && facts.gid === undefined) raise(this.accountCutoffs, facts.sub);
      // A cut-off naming nobody is every token issued before then (nothing else to attach it to).
      if (facts.clientId === undefined && facts.sub === undefined && facts.jti === undefined && facts.gid === undefined && facts.kid === undefined) {
        this.globalCutoff = Math.max(this.globalCutoff, cutoff);
      }
    }
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now;
      for (const set of [this.jtis, this.grants, this.clientCutoffs, this.accountCutoffs, this.entitlementCutoffs] as ExpiringSet<unknown>[]) set.prune(now);
    }
  }

  /** Why `token` is revoked, or undefined when nothing recorded refuses it. */
  refuses(token: RevocableToken): string | undefined {
    const jti = text(token.jti);
    if (jti !== undefined && this.jtis.get(jti)) return 'the token was revoked';
    const gid = text(token.gid);
    if (gid !== undefined && this.grants.get(gid)) return 'the grant of the token was revoked';
    const iat = typeof token.iat === 'number' ? token.iat : Number.NEGATIVE_INFINITY;
    if (iat < this.globalCutoff) return 'the token was revoked';
    const clientId = text(token.client_id);
    if (clientId !== undefined && iat < (this.clientCutoffs.get(clientId) ?? Number.NEGATIVE_INFINITY)) return "the client's tokens were revoked";
    const sub = text(token.sub);
    if (sub !== undefined && iat < (this.accountCutoffs.get(sub) ?? Number.NEGATIVE_INFINITY)) return "the account's tokens were revoked";
    const losses = sub === undefined ? undefined : this.entitlementCutoffs.get(sub);
    if (losses !== undefined) {
      const { keys, anyRole } = carried(token);
      const after = (cutoff: number | undefined) => cutoff !== undefined && iat < cutoff;
      if (keys.some((key) => after(losses.get(key)))) return 'the person lost a scope or role the token carries';
      if (anyRole && [...losses].some(([key, cutoff]) => key.startsWith('role ') && after(cutoff))) return 'the person lost a role the token may carry';
    }
    return undefined;
  }

  /** Raises the person's cut-off of each scope and role they lost (kept as long as the latest of them). */
  private recordLoss(sub: string, facts: RevocationFacts, cutoff: number): void {
    const losses = new Map(this.entitlementCutoffs.get(sub));
    for (const key of [...(facts.scopes ?? []).map(scopeKey), ...(facts.roles ?? []).map(roleKey)]) losses.set(key, Math.max(cutoff, losses.get(key) ?? 0));
    this.entitlementCutoffs.set(sub, losses, Math.max(...losses.values()) * 1000 + this.retentionMs);
  }
}
