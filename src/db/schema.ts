/** The typed PostgreSQL schema: one interface per table, as created by migrations/. */
import type { ColumnType, Generated, JSONColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface ResourceServersTable {
  id: string;
  identifier: string;
  name: string;
  scopes: JSONColumnType<string[]>;
  sensitive_scopes: JSONColumnType<string[]>;
  token_format: 'jwt' | 'opaque';
  access_token_ttl: number | null;
  signing_alg: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  introspection_response: ColumnType<'json' | 'jwt', 'json' | 'jwt' | undefined, 'json' | 'jwt'>;
  introspection_client_id: string;
  /** RFC 8935 push target of the resource server's security events, or null (poll only). */
  events_endpoint: ColumnType<string | null, string | null | undefined, string | null>;
  /** The bearer credential presented at `events_endpoint`, sealed under the key-encryption key. */
  events_endpoint_token_sealed: ColumnType<string | null, string | null | undefined, string | null>;
  /** The id of the key-encryption key that sealed `events_endpoint_token_sealed`. */
  events_endpoint_token_kek_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

/** Revocation events decided in PostgreSQL, waiting to be relayed to Redis (src/security-events/outbox.ts). */
export interface SecurityEventOutboxTable {
  id: string;
  event: ColumnType<unknown, string, string>;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export interface ClientsTable {
  client_id: string;
  client_name: string;
  trust: 'internal' | 'external';
  /** RFC 7591 metadata as oidc-provider validated it, without any secret. */
  metadata: JSONColumnType<Record<string, unknown>>;
  /** Set for the introspection credentials of a resource server; such clients get no tokens. */
  resource_server_id: string | null;
  disabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Tokens issued at or before this instant are dead (bulk revocation without a token index). */
  tokens_revoked_at: NullableTimestamp;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface ClientSecretsTable {
  id: Generated<number>;
  client_id: string;
  /** SHA-256 of the secret, hex. Secrets are 256 random bits, so a slow hash would add nothing. */
  digest: string;
  /** Null while the secret is the current one; set when a rotation gives it a grace period. */
  expires_at: NullableTimestamp;
  created_at: CreatedAt;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  state: 'next' | 'current' | 'retired' | 'revoked';
  public_jwk: JSONColumnType<Record<string, unknown>>;
  /** AES-256-GCM ciphertext of the private JWK (iv.tag.ciphertext, base64url). */
  private_jwk_encrypted: string;
  /** Identifier of the key-encryption key that wrapped this key. */
  kek_id: string;
  created_at: CreatedAt;
  activates_at: NullableTimestamp;
  retires_at: NullableTimestamp;
  expires_at: NullableTimestamp;
}

export interface AuditEventsTable {
  id: Generated<string>;
  at: CreatedAt;
  actor: string;
  action: string;
  target: string;
  details: JSONColumnType<Record<string, unknown>>;
}

export interface AccountsTable {
  /** A UUID: the `sub` of the account's tokens. */
  id: string;
  /** As given; unique whatever its case (a unique index on lower(email)). */
  email: string;
  name: string;
  /** argon2id PHC string. */
  password_hash: string;
  disabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Sessions, grants and tokens of the account from before this instant are dead. */
  tokens_revoked_at: NullableTimestamp;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

/** Every table of the database. */
export interface Database {
  resource_servers: ResourceServersTable;
  clients: ClientsTable;
  client_secrets: ClientSecretsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  accounts: AccountsTable;
  security_event_outbox: SecurityEventOutboxTable;
}
