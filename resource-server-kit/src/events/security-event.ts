/**
 * Security Event Tokens (RFC 8417) from the issuer: a JWS with `typ: secevent+jwt`, signed with a key
 * of the issuer's JWKS, for this resource server (`aud`). The kit acts on the fields of each event
 * whatever its type URI, so a new event type that names a `jti`, a `gid`, a client or an account with
 * `revoked_before` (and, for an account, the `scope` and `roles` it lost), or a `kid`, works without a new kit.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { AccessDenied } from '../errors.js';
import type { JwksCache } from '../jwks-cache.js';
import type { RevocationFacts } from '../revocation-list.js';

/** The event types the issuer sends (the kit reads their fields, not their names). */
export const EVENT_TYPES = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  tokenRevoked: 'urn:login-server:secevent:token-revoked',
  clientTokensRevoked: 'urn:login-server:secevent:client-tokens-revoked',
  signingKeyRevoked: 'urn:login-server:secevent:signing-key-revoked',
  entitlementsRevoked: 'urn:login-server:secevent:entitlements-revoked',
} as const;

/** RFC 8935 section 2.4 / RFC 8936 error codes for a SET the kit refuses. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied';

/** A SET the kit refuses, with the RFC 8935 error to report. */
export class SetRejected extends Error {
  override readonly name = 'SetRejected';
  constructor(
    readonly err: SetErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A verified SET. */
export interface VerifiedSecurityEvent {
  readonly jti: string;
  readonly iat: number | undefined;
  readonly types: string[];
  readonly facts: RevocationFacts[];
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const numericDate = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** The revocation facts of one event's fields (an event naming none of them yields nothing). */
export function factsOf(fields: Record<string, unknown>): RevocationFacts | undefined {
  const facts: RevocationFacts = {
    jti: text(fields.jti),
    gid: text(fields.gid),
    clientId: text(fields.client_id),
    sub: text(fields.sub),
    revokedBefore: numericDate(fields.revoked_before),
    kid: text(fields.kid),
    scopes: typeof fields.scope === 'string' ? fields.scope.split(' ').filter(Boolean) : undefined,
    roles: Array.isArray(fields.roles) ? fields.roles.filter((role): role is string => typeof role === 'string' && role !== '') : undefined,
  };
  const meaningful = facts.jti ?? facts.gid ?? facts.kid ?? (facts.revokedBefore !== undefined ? 'cut-off' : undefined);
  return meaningful === undefined ? undefined : facts;
}

/** Verifies SETs with the issuer's JWKS. */
export class SecurityEventVerifier {
  constructor(
    private readonly jwks: JwksCache,
    private readonly issuer: string,
    private readonly audience: string,
    private readonly algorithms: readonly string[],
  ) {}

  /** The verified event, or throws `SetRejected`. */
  async verify(set: string): Promise<VerifiedSecurityEvent> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(set, this.jwks.getKey, {
        issuer: this.issuer,
        audience: this.audience,
        typ: 'secevent+jwt',
        algorithms: [...this.algorithms],
      }));
    } catch (error) {
      // Keys that cannot be fetched now: not the SET's fault, so it is neither acknowledged nor refused.
      if (error instanceof AccessDenied && error.code === 'temporarily_unavailable') throw error;
      if (error instanceof AccessDenied) throw new SetRejected('invalid_key', error.message);
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'iss') throw new SetRejected('invalid_issuer', 'unexpected issuer');
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud') throw new SetRejected('invalid_audience', 'unexpected audience');
      if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
        throw new SetRejected('invalid_key', 'the signature does not verify with the issuer’s keys');
      }
      throw new SetRejected('invalid_request', error instanceof Error ? error.message : 'not a valid SET');
    }
    const jti = text(payload.jti);
    const events = payload.events as Record<string, unknown> | undefined;
    if (jti === undefined || typeof events !== 'object' || events === null || Array.isArray(events)) {
      throw new SetRejected('invalid_request', 'a SET needs a jti and an events object');
    }
    const types = Object.keys(events);
    const facts = types.flatMap((type) => {
      const fields = events[type];
      const found = typeof fields === 'object' && fields !== null ? factsOf(fields as Record<string, unknown>) : undefined;
      return found ? [found] : [];
    });
    return { jti, iat: numericDate(payload.iat), types, facts };
  }
}
