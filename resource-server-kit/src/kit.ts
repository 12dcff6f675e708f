/**
 * The resource-server kit: one `verify` for a request's access token, bearer or DPoP, JWT or opaque.
 * JWTs (RFC 9068) are validated offline with jose against the issuer's cached JWKS; opaque tokens are
 * introspected (RFC 7662) and the answers cached; both are checked against the revocations the
 * issuer's events announced, so a revoked token is refused within about a second even while cached.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { DpopVerifier, type DpopOptions } from './dpop.js';
import { AccessDenied, refusalOf, type Refusal } from './errors.js';
import { EventChannel, type EventChannelOptions, type PushAnswer, type PushedRequest } from './events/event-channel.js';
import { SecurityEventVerifier } from './events/security-event.js';
import { report, type KitHooks } from './hooks.js';
import { IntrospectionCache, tokenDigest, type ActiveAnswer, type CachedAnswer, type IntrospectionCacheOptions } from './introspection-cache.js';
import { JwksCache } from './jwks-cache.js';
import { carriesLost, isEntitlementLoss, RevocationList, type RevocableToken, type RevocationFacts, type RevocationListOptions } from './revocation-list.js';

/** How the kit is set up. */
export interface ResourceServerKitOptions {
  /** The issuer URL, exactly as in its discovery document and its tokens' `iss`. */
  readonly issuer: string;
  /** This resource server's identifier: the audience (`aud`) its tokens carry. */
  readonly resource: string;
  /** The introspection credentials the issuer gave this resource server at registration. */
  readonly credentials: { readonly clientId: string; readonly clientSecret: string };
  /** JWT signing algorithms accepted: the `signing_alg` registered for this resource server. Default RS256. */
  readonly algorithms?: readonly string[];
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Default 5. */
  readonly clockToleranceSeconds?: number;
  /** The JWKS cache: cool-down between fetches for unknown `kid`s (default 30 s), lifetime without `max-age` (default 300 s). */
  readonly jwks?: { readonly cooldownMs?: number; readonly defaultMaxAgeMs?: number };
  /** The introspection (and verified-JWT) cache, or `false` to ask the issuer for every opaque token. */
  readonly cache?: IntrospectionCacheOptions | false;
  readonly dpop?: DpopOptions;
  /**
   * Revocation events. `whenStale` says what to do while the channel has been down longer than
   * `staleAfterMs`: `opaque: 'introspect'` (default, fail closed) asks the issuer about every opaque
   * token instead of trusting the cache; `jwt: 'introspect'` does the same for JWTs (default `accept`:
   * they are short-lived and validated offline by design).
   */
  readonly events?: EventChannelOptions & { readonly whenStale?: { readonly opaque?: 'introspect' | 'use-cache'; readonly jwt?: 'accept' | 'introspect' } };
  readonly revocations?: RevocationListOptions;
  /** The `realm` of the challenges. */
  readonly realm?: string;
  /** How long an introspection request may take. Default 5 s. */
  readonly introspectionTimeoutMs?: number;
  readonly hooks?: KitHooks;
}

/** The parts of a request the kit reads. */
export interface AccessRequest {
  /** The `Authorization` header. */
  readonly authorization: string | undefined;
  /** The `DPoP` header(s). */
  readonly dpop?: string | readonly string[] | undefined;
  /** The HTTP method. */
  readonly method: string;
  /** The request's public URL (for the DPoP proof's `htu`). */
  readonly url: string;
}

/** What an operation requires of the token beyond being valid and for this resource server. */
export interface AccessRequirements {
  /** Every one of these scopes. */
  readonly scopes?: readonly string[];
}

/** A token the kit accepted. */
export interface VerifiedAccess {
  readonly format: 'jwt' | 'opaque';
  /** Who the token acts for: the account id, or the client id for a client's own token. */
  readonly subject: string | undefined;
  readonly clientId: string | undefined;
  readonly scopes: readonly string[];
  readonly audience: readonly string[];
  /** Expiry, NumericDate. */
  readonly expiresAt: number | undefined;
  /** The token's `jti` (for an opaque token, the one introspection answered). */
  readonly tokenId: string | undefined;
  /** The JWK thumbprint a DPoP-bound token is bound to. */
  readonly boundKey: string | undefined;
  /** Whether the answer came from the cache. */
  readonly cached: boolean;
  /** Every claim of the JWT, or every field of the introspection answer. */
  readonly claims: Readonly<Record<string, unknown>>;
}

type Claims = Readonly<Record<string, unknown>>;

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const audiencesOf = (aud: unknown): string[] =>
  typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
const jktOf = (claims: Claims): string | undefined => text((claims.cnf as { jkt?: unknown } | undefined)?.jkt);

/** A JWT has three dot-separated parts; anything else is an opaque token. */
export function looksLikeJwt(token: string): boolean {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  return second > 0 && token.indexOf('.', second + 1) < 0;
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The scheme and token of an `Authorization` header; throws for a malformed one. */
function credentialsOf(authorization: string | undefined): { scheme: 'Bearer' | 'DPoP'; token: string } {
  const space = authorization?.indexOf(' ') ?? -1;
  const scheme = space > 0 ? authorization!.slice(0, space).toLowerCase() : undefined;
  if (scheme !== 'bearer' && scheme !== 'dpop') throw new AccessDenied(undefined, 'an access token is required');
  const token = authorization!.slice(space + 1).trim();
  const named = scheme === 'dpop' ? 'DPoP' : 'Bearer';
  if (!TOKEN68.test(token)) throw new AccessDenied('invalid_request', 'the Authorization header is malformed', named);
  return { scheme: named, token };
}

/** Why jose refused a JWT, in words safe to show the caller. */
function jwtRefusal(error: unknown): AccessDenied {
  if (error instanceof AccessDenied) return error;
  if (error instanceof errors.JWTExpired) return new AccessDenied('invalid_token', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) return new AccessDenied('invalid_token', `the token's "${error.claim}" claim is not acceptable`);
  if (error instanceof errors.JOSEAlgNotAllowed) return new AccessDenied('invalid_token', 'the token is signed with an algorithm this API does not accept');
  if (error instanceof errors.JWKSNoMatchingKey) return new AccessDenied('invalid_token', 'the token is signed with an unknown key');
  if (error instanceof errors.JOSEError) return new AccessDenied('invalid_token', 'the token is not a valid access token');
  return new AccessDenied('temporarily_unavailable', 'the token cannot be checked now');
}

/** Whether an event's facts cover a cached introspection answer. */
function covers(facts: RevocationFacts, answer: ActiveAnswer): boolean {
  const iat = typeof answer.iat === 'number' ? answer.iat : Number.NEGATIVE_INFINITY;
  if (facts.jti !== undefined && answer.jti === facts.jti) return true;
  if (facts.gid !== undefined) {
    // Introspection of an opaque token does not say which grant it came from: drop every person's
    // token (a client's own token has no grant), of the grant's account when the event names it.
    if (answer.gid !== undefined) return answer.gid === facts.gid;
    return answer.sub !== answer.client_id && (facts.sub === undefined || answer.sub === facts.sub);
  }
  if (facts.revokedBefore === undefined || iat >= facts.revokedBefore) return false;
  if (facts.clientId !== undefined) return answer.client_id === facts.clientId;
  if (facts.sub !== undefined && isEntitlementLoss(facts)) return answer.sub === facts.sub && carriesLost(facts, answer as RevocableToken);
  if (facts.sub !== undefined) return answer.sub === facts.sub;
  return facts.jti === undefined && facts.kid === undefined;
}

/** A resource server's access token checks. Create it with `createResourceServerKit`. */
export class ResourceServerKit {
  private readonly jwks: JwksCache;
  private readonly revocations: RevocationList;
  private readonly cache: IntrospectionCache | undefined;
  private readonly jwtCache: IntrospectionCache<Claims> | undefined;
  private readonly dpopVerifier: DpopVerifier;
  private readonly events: EventChannel;
  private readonly algorithms: string[];
  private readonly basicAuthorization: string;
  private readonly inflight = new Map<string, Promise<CachedAnswer>>();
  /**
   * Counts applied grant events: an introspection answer that one overtook is not cached. (Other
   * events need no such guard: the revocation list is checked on every cache hit, but an opaque
   * token's answer does not name its grant.)
   */
  private grantEpoch = 0;

  /** @internal use `createResourceServerKit` */
  constructor(
    private readonly options: ResourceServerKitOptions,
    private readonly endpoints: { jwksUri: string; introspectionEndpoint: string; pollEndpoint: string | undefined; ssfConfiguration: string },
  ) {
    const form = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
    // RFC 6749 section 2.3.1: both parts form-encoded before base64.
    this.basicAuthorization = `Basic ${Buffer.from(`${form(options.credentials.clientId)}:${form(options.credentials.clientSecret)}`).toString('base64')}`;
    this.algorithms = [...(options.algorithms ?? ['RS256'])];
    this.jwks = new JwksCache({ jwksUri: endpoints.jwksUri, ...options.jwks, hooks: options.hooks });
    this.revocations = new RevocationList(options.revocations);
    this.cache = options.cache === false ? undefined : new IntrospectionCache(options.cache);
    this.jwtCache = options.cache === false ? undefined : new IntrospectionCache<Claims>({ ...options.cache, negativeTtlMs: 0 });
    this.dpopVerifier = new DpopVerifier(options.dpop);
    const setAlgorithms = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'];
    this.events = new EventChannel(options.events ?? {}, {
      verifier: new SecurityEventVerifier(this.jwks, options.issuer, options.resource, setAlgorithms),
      apply: (facts) => this.applyRevocations(facts),
      pollEndpoint: endpoints.pollEndpoint,
      configurationUrl: endpoints.ssfConfiguration,
      basicAuthorization: this.basicAuthorization,
      hooks: options.hooks,
    });
  }

  /** The DPoP proof algorithms accepted (announced in DPoP challenges). */
  get dpopAlgorithms(): readonly string[] {
    return this.dpopVerifier.algorithms;
  }

  /**
   * Verifies the access token of `request`: resolves with what the token says, or rejects with
   * `AccessDenied` (turn it into an answer with `refusal`).
   */
  async verify(request: AccessRequest, requirements: AccessRequirements = {}): Promise<VerifiedAccess> {
    const started = performance.now();
    let format: 'jwt' | 'opaque' | 'none' = 'none';
    let cached = false;
    try {
      const { scheme, token } = credentialsOf(request.authorization);
      format = looksLikeJwt(token) ? 'jwt' : 'opaque';
      const found = format === 'jwt' ? await this.verifyJwt(token) : await this.verifyOpaque(token);
      cached = found.cached;
      const claims = found.claims;
      const jkt = jktOf(claims);
      if (jkt !== undefined) {
        if (scheme !== 'DPoP') throw new AccessDenied('invalid_token', 'the token is DPoP-bound: send it with the DPoP scheme and a proof', 'DPoP');
        await this.dpopVerifier.check({ proof: request.dpop, method: request.method, url: request.url, accessToken: token, jkt });
      } else if (scheme === 'DPoP') {
        throw new AccessDenied('invalid_token', 'the token is not DPoP-bound: send it with the Bearer scheme', 'DPoP');
      }
      const scopes = typeof claims.scope === 'string' && claims.scope !== '' ? claims.scope.split(' ') : [];
      const required = requirements.scopes ?? [];
      if (required.some((scope) => !scopes.includes(scope))) {
        throw new AccessDenied(
          'insufficient_scope',
          'the token lacks a scope this operation requires',
          jkt === undefined ? 'Bearer' : 'DPoP',
          required.join(' '),
        );
      }
      report(this.options.hooks?.onVerification, { format, outcome: 'accepted', cached, durationMs: performance.now() - started });
      return {
        format,
        subject: text(claims.sub),
        clientId: text(claims.client_id),
        scopes,
        audience: audiencesOf(claims.aud),
        expiresAt: typeof claims.exp === 'number' ? claims.exp : undefined,
        tokenId: text(claims.jti),
        boundKey: jkt,
        cached,
        claims,
      };
    } catch (error) {
      const denied = error instanceof AccessDenied ? error : new AccessDenied('temporarily_unavailable', 'the token cannot be checked now');
      report(this.options.hooks?.onVerification, {
        format,
        outcome: denied.code === 'temporarily_unavailable' ? 'unavailable' : 'refused',
        code: denied.code,
        cached,
        durationMs: performance.now() - started,
      });
      throw denied;
    }
  }

  /** The answer for a refusal (anything but `AccessDenied` is answered 503: fail closed). */
  refusal(error: unknown): Refusal {
    const denied = error instanceof AccessDenied ? error : new AccessDenied('temporarily_unavailable', 'the token cannot be checked now');
    return refusalOf(denied, { realm: this.options.realm, dpopAlgorithms: this.dpopVerifier.algorithms });
  }

  /** Handles a SET pushed by the issuer (RFC 8935); the framework adapters' push receivers call it. */
  receivePush(request: PushedRequest): Promise<PushAnswer> {
    return this.events.receivePush(request);
  }

  /** Whether the event channel has been down beyond its bound (the kit then distrusts its caches). */
  eventsStale(): boolean {
    return this.events.isStale();
  }

  /** Starts the event channel (`createResourceServerKit` does). */
  start(): void {
    this.events.start();
  }

  /** Stops the event channel. */
  close(): Promise<void> {
    return this.events.stop();
  }

  private refuseRevoked(claims: Claims, kid: string | undefined): void {
    if (this.jwks.isRevoked(kid)) throw new AccessDenied('invalid_token', 'the token was signed with a revoked key');
    const reason = this.revocations.refuses(claims);
    if (reason !== undefined) throw new AccessDenied('invalid_token', reason);
  }

  private async verifyJwt(token: string): Promise<{ claims: Claims; cached: boolean }> {
    const key = this.jwtCache ? tokenDigest(token) : '';
    const hit = this.jwtCache?.get(key);
    let claims: Claims;
    let cached = false;
    if (hit !== undefined && hit !== 'inactive') {
      claims = hit;
      cached = true;
    } else {
      let payload: JWTPayload;
      let kid: string | undefined;
      try {
        const verified = await jwtVerify(token, this.jwks.getKey, {
          issuer: this.options.issuer,
          audience: this.options.resource,
          typ: 'at+jwt',
          algorithms: this.algorithms,
          clockTolerance: this.options.clockToleranceSeconds ?? 5,
          requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
        });
        payload = verified.payload;
        kid = verified.protectedHeader.kid;
      } catch (error) {
        throw jwtRefusal(error);
      }
      // The header's kid is kept with the claims, so a key revoked later refuses the cached token too.
      claims = { ...payload, [KID]: kid };
      this.jwtCache?.set(key, claims);
    }
    this.refuseRevoked(claims, claims[KID] as string | undefined);
    if (this.events.isStale() && this.options.events?.whenStale?.jwt === 'introspect') {
      const answer = await this.introspect(token);
      if (answer === 'inactive') throw new AccessDenied('invalid_token', 'the token is not active');
    }
    return { claims, cached };
  }

  private async verifyOpaque(token: string): Promise<{ claims: Claims; cached: boolean }> {
    const key = tokenDigest(token);
    const trustCache = this.cache !== undefined && !(this.options.events?.whenStale?.opaque !== 'use-cache' && this.events.isStale());
    const hit = trustCache ? this.cache.get(key) : undefined;
    if (hit !== undefined) {
      if (hit === 'inactive') throw new AccessDenied('invalid_token', 'the token is not active');
      this.refuseRevoked(hit, undefined);
      return { claims: hit, cached: true };
    }
    const epoch = this.grantEpoch;
    const introspected = await this.introspect(token, key);
    const answer = introspected === 'inactive' ? 'the token is not active' : this.acceptable(introspected);
    // Not kept when a grant event arrived while the issuer answered: the answer may predate it.
    if (trustCache && epoch === this.grantEpoch) this.cache.set(key, typeof answer === 'string' ? 'inactive' : answer);
    if (typeof answer === 'string') throw new AccessDenied('invalid_token', answer);
    this.refuseRevoked(answer, undefined);
    return { claims: answer, cached: false };
  }

  /** `answer` when it is for this API and issuer and an access token; otherwise why not. */
  private acceptable(answer: ActiveAnswer): ActiveAnswer | string {
    if (!audiencesOf(answer.aud).includes(this.options.resource)) return 'the token is not for this API';
    if (answer.iss !== undefined && answer.iss !== this.options.issuer) return 'the token is not from this issuer';
    if (answer.token_type === 'refresh_token') return 'a refresh token is not an access token';
    return answer;
  }

  /** Asks the issuer about `token` (concurrent requests for one token share one call). */
  private introspect(token: string, key = tokenDigest(token)): Promise<CachedAnswer> {
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.callIntrospection(token).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async callIntrospection(token: string): Promise<CachedAnswer> {
    const started = performance.now();
    let outcome: 'active' | 'inactive' | 'error' = 'error';
    try {
      const response = await fetch(this.endpoints.introspectionEndpoint, {
        method: 'POST',
        headers: { authorization: this.basicAuthorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.options.introspectionTimeoutMs ?? 5_000),
      });
      if (response.status !== 200) {
        await response.arrayBuffer();
        throw new AccessDenied('temporarily_unavailable', 'the issuer cannot introspect the token now');
      }
      const answer = await this.readIntrospectionAnswer(response);
      const active = answer.active === true;
      outcome = active ? 'active' : 'inactive';
      return active ? (answer as ActiveAnswer) : 'inactive';
    } catch (error) {
      if (error instanceof AccessDenied) throw error;
      throw new AccessDenied('temporarily_unavailable', 'the issuer cannot introspect the token now');
    } finally {
      report(this.options.hooks?.onIntrospection, { outcome, durationMs: performance.now() - started });
    }
  }

  /**
   * The RFC 7662 answer in `response`: its JSON body, or, from a resource server registered for
   * signed answers (RFC 9701, `Content-Type: application/token-introspection+jwt`), the
   * `token_introspection` claim of a JWT verified against the issuer's keys, for this issuer and
   * addressed to this resource server's introspection client. An answer that does not verify is no
   * answer: the issuer counts as unreachable.
   */
  private async readIntrospectionAnswer(response: Response): Promise<Record<string, unknown>> {
    if (!(response.headers.get('content-type') ?? '').startsWith(SIGNED_INTROSPECTION_TYPE)) return (await response.json()) as Record<string, unknown>;
    const { payload } = await jwtVerify(await response.text(), this.jwks.getKey, {
      issuer: this.options.issuer,
      audience: this.options.credentials.clientId,
      typ: 'token-introspection+jwt',
      algorithms: this.algorithms,
      clockTolerance: this.options.clockToleranceSeconds ?? 5,
      requiredClaims: ['iat'],
    });
    const answer = payload.token_introspection;
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw new Error('the signed answer holds no token_introspection');
    return answer as Record<string, unknown>;
  }

  /** Applies revocation events: remembers them, drops revoked keys and the cached answers they cover. */
  private applyRevocations(facts: readonly RevocationFacts[]): void {
    for (const fact of facts) {
      if (fact.gid !== undefined) this.grantEpoch++;
      this.revocations.record(fact);
      if (fact.kid !== undefined) this.jwks.revoke(fact.kid);
      this.cache?.dropWhere((answer) => covers(fact, answer));
    }
  }
}

/** The media type of an RFC 9701 signed introspection answer. */
const SIGNED_INTROSPECTION_TYPE = 'application/token-introspection+jwt';

/** Where the verified JWT's header `kid` is kept among its cached claims (a symbol: never a claim). */
const KID = Symbol('kid') as unknown as string;

interface Discovery {
  issuer?: unknown;
  jwks_uri?: unknown;
  introspection_endpoint?: unknown;
  poll_endpoint?: unknown;
}

async function getJson(url: string): Promise<Discovery> {
  const response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as Discovery;
}

/**
 * Discovers the issuer's endpoints (its RFC 8414 metadata, and its SSF configuration unless events are
 * off), and starts the kit and its event channel. Close it with `close()`.
 */
export async function createResourceServerKit(options: ResourceServerKitOptions): Promise<ResourceServerKit> {
  const base = options.issuer.replace(/\/$/, '');
  const metadata = await getJson(`${base}/.well-known/oauth-authorization-server`);
  if (metadata.issuer !== options.issuer) throw new Error(`the discovery document names issuer ${String(metadata.issuer)}, not ${options.issuer}`);
  if (typeof metadata.jwks_uri !== 'string' || typeof metadata.introspection_endpoint !== 'string') {
    throw new Error('the discovery document lacks jwks_uri or introspection_endpoint');
  }
  const ssfConfiguration = `${base}/.well-known/ssf-configuration`;
  let pollEndpoint: string | undefined;
  if ((options.events?.mode ?? 'poll') === 'poll') {
    const ssf = await getJson(ssfConfiguration);
    if (ssf.issuer !== options.issuer) throw new Error(`the SSF configuration names issuer ${String(ssf.issuer)}, not ${options.issuer}`);
    if (typeof ssf.poll_endpoint !== 'string') throw new Error('the SSF configuration has no poll_endpoint');
    pollEndpoint = ssf.poll_endpoint;
  }
  const kit = new ResourceServerKit(options, {
    jwksUri: metadata.jwks_uri,
    introspectionEndpoint: metadata.introspection_endpoint,
    pollEndpoint,
    ssfConfiguration,
  });
  kit.start();
  return kit;
}
