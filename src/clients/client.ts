/** The client as the rest of the server sees it: never a database row. */

/** RFC 7591 metadata we store and hand to oidc-provider (snake_case, as on the wire), no secret. */
export interface ClientMetadata {
  grant_types: string[];
  response_types: string[];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  token_endpoint_auth_method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** Space-separated scopes the client may ask for. */
  scope: string;
  /** Resource server identifiers the client may get tokens for; the first is its default. */
  resources: string[];
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  /** OpenID Connect Back-Channel Logout 1.0: where logout tokens are posted. */
  backchannel_logout_uri?: string;
  /** Whether logout tokens must carry the session id (`sid`); the engine's default is false. */
  backchannel_logout_session_required?: boolean;
  /** RFC 8693 token exchange: which subject tokens this client may exchange, for which audiences. */
  token_exchange?: TokenExchangeAllowance;
  /** How the `groups` claim names groups: by name (the default) or by id (docs/groups-and-entitlements.md). */
  groups_claim?: 'names' | 'ids';
}

/**
 * What a client may exchange (RFC 8693), set through the admin API; a client without one exchanges
 * nothing. A subject token qualifies when its client is in `subject_client_ids` or one of its
 * audiences is in `subject_audiences`; the new token may be for any of `audiences`.
 */
export interface TokenExchangeAllowance {
  /** Clients whose access tokens (tokens issued to them) this client may exchange. */
  subject_client_ids: string[];
  /** Resource server identifiers: access tokens for them this client may exchange. */
  subject_audiences: string[];
  /** Resource server identifiers the exchanged tokens may be for (a subset of the client's `resources`). */
  audiences: string[];
  /**
   * The one client that may exchange the tokens this client gets by exchange again: they carry
   * `may_act` naming it (RFC 8693 section 4.4). Absent: no `may_act`, the next client's own allowance decides.
   */
  may_act_client_id?: string;
}

/**
 * What every client id looks like: generated ones are base64url (introspection identities add `rs_`),
 * the bootstrap admin client's is chosen from the same characters. Anything else (a NUL, a character
 * outside these, more than 128 of them) names no client, and is answered as unknown without a query.
 */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

/** Whether a client could have this id (see {@link CLIENT_ID_PATTERN}). */
export const isPossibleClientId = (clientId: string): boolean => CLIENT_ID_PATTERN.test(clientId);

/**
 * OpenID Connect scopes any login client may ask for, on top of its resources' scopes. `groups` asks
 * for the person's groups in the ID token and at userinfo (docs/groups-and-entitlements.md).
 */
export const OPENID_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'] as const;

/** Who a client is to the company: its own software, or a third party. */
export type ClientTrust = 'internal' | 'external';

/** A registered client. */
export interface Client {
  readonly clientId: string;
  readonly clientName: string;
  readonly trust: ClientTrust;
  readonly metadata: ClientMetadata;
  /** Set when this client is the introspection identity of a resource server. */
  readonly resourceServerId: string | null;
  readonly disabled: boolean;
  /** Epoch seconds: tokens issued at or before this instant are revoked. */
  readonly tokensRevokedAt: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A client with the digests of its valid secrets, as the registry caches it. */
export interface ClientWithSecrets extends Client {
  readonly secretDigests: ReadonlyArray<{ readonly digest: string; readonly expiresAt: number | null }>;
}
