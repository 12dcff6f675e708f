/**
 * The issuer's JWKS, cached for as long as its `Cache-Control: max-age` says, fetched again once when a
 * token names a `kid` the cached set lacks (at most once per cool-down, so a flood of tokens with
 * made-up `kid`s cannot turn into a flood of fetches), and able to drop a revoked key at once.
 * jose's `createRemoteJWKSet` caches for a fixed time and cannot forget a key, hence this class; the
 * key selection and import stay jose's (`createLocalJWKSet`).
 */
import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWTHeaderParameters } from 'jose';
import { AccessDenied } from './errors.js';
import { report, type JwksFetchEvent, type KitHooks } from './hooks.js';

/** How the JWKS cache behaves. */
export interface JwksCacheOptions {
  readonly jwksUri: string;
  /** Minimum time between two fetches caused by an unknown `kid`. Default 30 s. */
  readonly cooldownMs?: number;
  /** Lifetime of the set when the answer has no `max-age`. Default 300 s. */
  readonly defaultMaxAgeMs?: number;
  /** How long a fetch may take. Default 5 s. */
  readonly timeoutMs?: number;
  readonly hooks?: KitHooks | undefined;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/** The `max-age` of a `Cache-Control` header in milliseconds; `no-store`/`no-cache` give 0. */
export function maxAgeOf(cacheControl: string | null): number | undefined {
  if (!cacheControl) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  return match ? Number(match[1]) * 1000 : undefined;
}

/** A cached JWKS with refetch on unknown `kid` and key revocation. */
export class JwksCache {
  private readonly cooldownMs: number;
  private readonly defaultMaxAgeMs: number;
  private readonly timeoutMs: number;
  private keys: JSONWebKeySet = { keys: [] };
  private resolver: KeyResolver | undefined;
  private etag: string | undefined;
  private expiresAt = 0;
  private lastUnknownKidFetchAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly revokedKids = new Set<string>();

  constructor(private readonly options: JwksCacheOptions) {
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.defaultMaxAgeMs = options.defaultMaxAgeMs ?? 300_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** The `kid`s currently cached. */
  cachedKids(): string[] {
    return this.keys.keys.flatMap((key) => (key.kid === undefined ? [] : [key.kid]));
  }

  /** Whether `kid` was revoked by an event. */
  isRevoked(kid: string | undefined): boolean {
    return kid !== undefined && this.revokedKids.has(kid);
  }

  /** Drops the key `kid` now and refuses it from then on, even should a later fetch still list it. */
  revoke(kid: string): void {
    this.revokedKids.add(kid);
    if (this.keys.keys.some((key) => key.kid === kid)) this.install({ keys: this.keys.keys.filter((key) => key.kid !== kid) });
  }

  /**
   * The key for a JWS with `header`, for jose's `jwtVerify`. Throws `AccessDenied` (invalid_token) for
   * a revoked or unknown key, (temporarily_unavailable) when the JWKS cannot be had at all.
   */
  readonly getKey = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    if (this.isRevoked(header.kid)) throw new AccessDenied('invalid_token', 'the token was signed with a revoked key');
    if (!this.resolver) await this.refresh('initial');
    else if (Date.now() >= this.expiresAt) await this.refresh('expired').catch(() => undefined); // a stale set beats none
    if (!this.resolver) throw new AccessDenied('temporarily_unavailable', 'the signing keys cannot be fetched');
    try {
      return await this.resolver(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      const known = header.kid !== undefined && this.cachedKids().includes(header.kid);
      if (known || Date.now() - this.lastUnknownKidFetchAt < this.cooldownMs) throw error;
      this.lastUnknownKidFetchAt = Date.now();
      await this.refresh('unknown_kid').catch(() => undefined);
      if (this.isRevoked(header.kid)) throw new AccessDenied('invalid_token', 'the token was signed with a revoked key');
      return this.resolver(header, token);
    }
  };

  /** Fetches the JWKS (one fetch at a time: concurrent callers share it). */
  refresh(reason: JwksFetchEvent['reason']): Promise<void> {
    this.inflight ??= this.fetchSet(reason).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async fetchSet(reason: JwksFetchEvent['reason']): Promise<void> {
    const started = performance.now();
    let outcome: JwksFetchEvent['outcome'] = 'error';
    try {
      const response = await fetch(this.options.jwksUri, {
        headers: { accept: 'application/json', ...(this.etag && this.resolver ? { 'if-none-match': this.etag } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const lifetime = maxAgeOf(response.headers.get('cache-control')) ?? this.defaultMaxAgeMs;
      if (response.status === 304) {
        await response.arrayBuffer();
        this.expiresAt = Date.now() + lifetime;
        outcome = 'not_modified';
        return;
      }
      if (!response.ok) throw new Error(`the JWKS answered ${response.status}`);
      const set = (await response.json()) as JSONWebKeySet;
      if (!set || !Array.isArray(set.keys)) throw new Error('the JWKS is not a key set');
      this.install({ keys: set.keys.filter((key) => !(key.kid !== undefined && this.revokedKids.has(key.kid))) });
      this.etag = response.headers.get('etag') ?? undefined;
      this.expiresAt = Date.now() + lifetime;
      outcome = 'fetched';
    } finally {
      report(this.options.hooks?.onJwksFetch, { reason, outcome, durationMs: performance.now() - started });
    }
  }

  private install(set: JSONWebKeySet): void {
    this.keys = set;
    this.resolver = createLocalJWKSet(set);
  }
}
