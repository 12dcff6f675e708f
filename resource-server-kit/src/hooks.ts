/**
 * Metrics hooks: plain callbacks the kit calls as things happen, so an application feeds the metrics
 * library it already has (prom-client, OpenTelemetry, StatsD) without the kit depending on one.
 */

/** One verified or refused request. */
export interface VerificationEvent {
  readonly format: 'jwt' | 'opaque' | 'none';
  readonly outcome: 'accepted' | 'refused' | 'unavailable';
  /** The refusal code, when refused. */
  readonly code?: string | undefined;
  /** Whether an opaque token was answered from the introspection cache. */
  readonly cached: boolean;
  readonly durationMs: number;
}

/** One call to the introspection endpoint. */
export interface IntrospectionEvent {
  readonly outcome: 'active' | 'inactive' | 'error';
  readonly durationMs: number;
}

/** One fetch of the JWKS. */
export interface JwksFetchEvent {
  readonly reason: 'initial' | 'expired' | 'unknown_kid';
  readonly outcome: 'fetched' | 'not_modified' | 'error';
  readonly durationMs: number;
}

/** One Security Event Token received. */
export interface SecurityEventReceived {
  readonly delivery: 'poll' | 'push';
  readonly outcome: 'applied' | 'rejected';
  /** The event type URIs it carried (empty when rejected before they could be read). */
  readonly types: readonly string[];
  /** Milliseconds from the SET's `iat` to now, when it had one. */
  readonly lagMs?: number | undefined;
}

/** The state of the revocation event channel changed. */
export interface EventChannelState {
  readonly state: 'up' | 'down' | 'stale';
}

/** Callbacks for metrics; each is optional, and one that throws is ignored. */
export interface KitHooks {
  onVerification?: (event: VerificationEvent) => void;
  onIntrospection?: (event: IntrospectionEvent) => void;
  onJwksFetch?: (event: JwksFetchEvent) => void;
  onSecurityEvent?: (event: SecurityEventReceived) => void;
  onEventChannel?: (event: EventChannelState) => void;
}

/** Calls `hook` with `event`, ignoring a hook that throws: metrics never break a request. */
export function report<E>(hook: ((event: E) => void) | undefined, event: E): void {
  if (!hook) return;
  try {
    hook(event);
  } catch {
    // A metrics callback's failure is the application's to notice, not a reason to refuse a request.
  }
}
