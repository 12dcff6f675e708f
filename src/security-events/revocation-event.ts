/**
 * Revocation events: what was revoked, as the server records it, and the Security Event Token
 * (RFC 8417) claims each resource server receives for it. The wire form (event types, subject fields)
 * is documented in docs/revocation-events.md and fixed: resource-server kits are built against it.
 */
import { sha256Base64Url } from '../shared/secrets.js';

/** CAEP "session revoked": used for a grant (a person's sign-in to a client) and for an account. */
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
/** This server's own event type: one access token was revoked (subject field `jti`). */
export const TOKEN_REVOKED = 'urn:login-server:secevent:token-revoked';
/** This server's own event type: every token of a client issued before an instant is dead (`client_id`, `revoked_before`). */
export const CLIENT_TOKENS_REVOKED = 'urn:login-server:secevent:client-tokens-revoked';
/** This server's own event type: a signing key was revoked; what it signed no longer verifies (`kid`). */
export const SIGNING_KEY_REVOKED = 'urn:login-server:secevent:signing-key-revoked';

/**
 * This server's own event type: a person lost scopes (or roles) at one resource server; their tokens
 * for it issued before an instant that carry any of them are dead (`sub`, `scope`, `roles`, `revoked_before`).
 */
export const ENTITLEMENTS_REVOKED = 'urn:login-server:secevent:entitlements-revoked';

/** The event types this server emits, as its discovery document lists them. */
export const EVENT_TYPES = [TOKEN_REVOKED, CAEP_SESSION_REVOKED, CLIENT_TOKENS_REVOKED, SIGNING_KEY_REVOKED, ENTITLEMENTS_REVOKED] as const;

/** Why a person lost entitlements (the `reason` of an entitlements-revoked event). */
export type EntitlementsRevokedReason = 'group-membership-removed' | 'group-deleted' | 'group-moved' | 'entitlement-removed' | 'entitlement-changed';

/**
 * What was revoked. Token, grant and entitlements events concern only their audiences (resource
 * server identifiers; an entitlements event names one); client, account and key events concern every
 * resource server.
 */
export type RevocationEvent =
  | { readonly kind: 'token'; readonly jti: string; readonly audiences: readonly string[] }
  | { readonly kind: 'grant'; readonly gid: string; readonly audiences: readonly string[] }
  | { readonly kind: 'client'; readonly clientId: string; readonly revokedBefore: number; readonly reason: 'disabled' | 'deleted' | 'revoked' }
  | { readonly kind: 'account'; readonly sub: string; readonly revokedBefore: number; readonly reason: 'disabled' | 'deleted' | 'revoked' }
  | { readonly kind: 'key'; readonly kid: string }
  | {
      readonly kind: 'entitlements';
      readonly sub: string;
      readonly audiences: readonly string[];
      readonly scopes: readonly string[];
      readonly roles: readonly string[];
      readonly revokedBefore: number;
      readonly reason: EntitlementsRevokedReason;
    };

/** A revocation event with the id it keeps through the outbox and the relay, and when it happened. */
export interface RecordedEvent {
  /** Unique per revocation; each audience's SET id is derived from it (so a relay done twice gives the same SET ids). */
  readonly id: string;
  /** Epoch seconds. */
  readonly at: number;
  readonly event: RevocationEvent;
}

/** The audiences (resource server identifiers) an event concerns, or `'all'`. */
export function audiencesOf(event: RevocationEvent): readonly string[] | 'all' {
  return 'audiences' in event ? event.audiences : 'all';
}

/** The SET id (`jti`) of `recorded` for the resource server `resourceServerId`: stable, so relaying twice gives the same SET. */
export function setIdFor(recorded: Pick<RecordedEvent, 'id'>, resourceServerId: string): string {
  return sha256Base64Url(`${recorded.id}\n${resourceServerId}`).slice(0, 32);
}

/**
 * "Tokens issued before this instant are dead", as a NumericDate, from the instant (ms) a revocation
 * took effect. The registries kill tokens issued at or before that second (`iat <= floor(t)`), so the
 * first second whose tokens live is the next one.
 */
export const revokedBeforeOf = (revokedAtMs: number): number => Math.floor(revokedAtMs / 1000) + 1;

/** The `events` claim of the SET for `event` (RFC 8417 section 2.2): one event, its subject fields by value. */
export function eventsClaim(recorded: RecordedEvent): Record<string, Record<string, unknown>> {
  const { event, at } = recorded;
  switch (event.kind) {
    case 'token':
      return { [TOKEN_REVOKED]: { jti: event.jti, event_timestamp: at } };
    case 'grant':
      return { [CAEP_SESSION_REVOKED]: { gid: event.gid, event_timestamp: at } };
    case 'client':
      return { [CLIENT_TOKENS_REVOKED]: { client_id: event.clientId, revoked_before: event.revokedBefore, reason: event.reason, event_timestamp: at } };
    case 'account':
      return { [CAEP_SESSION_REVOKED]: { sub: event.sub, revoked_before: event.revokedBefore, reason: event.reason, event_timestamp: at } };
    case 'key':
      return { [SIGNING_KEY_REVOKED]: { kid: event.kid, event_timestamp: at } };
    case 'entitlements':
      return {
        [ENTITLEMENTS_REVOKED]: {
          sub: event.sub,
          // Each only when something of its kind was lost (a scope string is never empty, RFC 6749 section 3.3).
          ...(event.scopes.length > 0 ? { scope: event.scopes.join(' ') } : {}),
          ...(event.roles.length > 0 ? { roles: [...event.roles] } : {}),
          revoked_before: event.revokedBefore,
          reason: event.reason,
          event_timestamp: at,
        },
      };
  }
}

/** Reads a recorded event back from its JSON form, or `undefined` when it is not one (never trusted blindly: it crossed Redis). */
export function parseRecordedEvent(json: string): RecordedEvent | undefined {
  try {
    const value = JSON.parse(json) as RecordedEvent;
    if (typeof value?.id !== 'string' || typeof value.at !== 'number' || typeof value.event?.kind !== 'string') return undefined;
    return value;
  } catch {
    return undefined;
  }
}
