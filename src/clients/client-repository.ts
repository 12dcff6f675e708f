/** PostgreSQL access for clients and their secret digests. Functions take the database first. */
import { sql, type Selectable } from 'kysely';
import type { Db } from '../db/database.js';
import type { ClientsTable } from '../db/schema.js';
import { pageAfter, type PageCursor } from '../shared/pagination.js';
import { isPossibleClientId, type Client, type ClientMetadata, type ClientWithSecrets } from './client.js';

type Row = Selectable<ClientsTable>;

function toClient(row: Row): Client {
  return {
    clientId: row.client_id,
    clientName: row.client_name,
    trust: row.trust,
    metadata: row.metadata as unknown as ClientMetadata,
    resourceServerId: row.resource_server_id,
    disabled: row.disabled,
    tokensRevokedAt: row.tokens_revoked_at ? Math.floor(row.tokens_revoked_at.getTime() / 1000) : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What a new client row needs. */
export interface NewClient {
  clientId: string;
  clientName: string;
  trust: Client['trust'];
  metadata: ClientMetadata;
  resourceServerId: string | null;
  /** SHA-256 digest of the initial secret, or null for clients without one. */
  secretDigest: string | null;
}

/** Inserts a client and its first secret digest; run it inside the caller's transaction. */
export async function insertClient(db: Db, client: NewClient): Promise<Client> {
  const now = new Date();
  const row = await db
    .insertInto('clients')
    .values({
      client_id: client.clientId,
      client_name: client.clientName,
      trust: client.trust,
      metadata: JSON.stringify(client.metadata),
      resource_server_id: client.resourceServerId,
      // Set here (millisecond precision) so keyset cursors round-trip through JavaScript dates.
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (client.secretDigest) {
    await db.insertInto('client_secrets').values({ client_id: client.clientId, digest: client.secretDigest }).execute();
  }
  return toClient(row);
}

/** A client with its unexpired secret digests, or undefined. */
export async function selectClientWithSecrets(db: Db, clientId: string): Promise<ClientWithSecrets | undefined> {
  if (!isPossibleClientId(clientId)) return undefined;
  const row = await db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  if (!row) return undefined;
  const secrets = await db
    .selectFrom('client_secrets')
    .select(['digest', 'expires_at'])
    .where('client_id', '=', clientId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .execute();
  return {
    ...toClient(row),
    secretDigests: secrets.map((s) => ({
      digest: s.digest,
      expiresAt: s.expires_at ? Math.floor(s.expires_at.getTime() / 1000) : null,
    })),
  };
}

/** A page of application clients (not introspection identities) in creation order, `limit + 1` rows. */
export async function selectClientPage(db: Db, limit: number, after: PageCursor | undefined): Promise<Client[]> {
  const rows = await pageAfter(db.selectFrom('clients').selectAll().where('resource_server_id', 'is', null), after, limit, {
    createdAtColumn: 'created_at',
    idColumn: 'client_id',
  }).execute();
  return rows.map(toClient);
}

/** What may change on a client row. */
export interface ClientChanges {
  clientName?: string;
  trust?: Client['trust'];
  metadata?: ClientMetadata;
  disabled?: boolean;
  tokensRevokedAt?: Date;
}

/** Updates a client; undefined when there is no such client. */
export async function updateClient(db: Db, clientId: string, changes: ClientChanges): Promise<Client | undefined> {
  const row = await db
    .updateTable('clients')
    .set({
      ...(changes.clientName !== undefined ? { client_name: changes.clientName } : {}),
      ...(changes.trust !== undefined ? { trust: changes.trust } : {}),
      ...(changes.metadata !== undefined ? { metadata: JSON.stringify(changes.metadata) } : {}),
      ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
      ...(changes.tokensRevokedAt !== undefined ? { tokens_revoked_at: changes.tokensRevokedAt } : {}),
      updated_at: new Date(),
    })
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
  return row && toClient(row);
}

/** Deletes a client (its secrets go with it); whether it existed. */
export async function deleteClientRow(db: Db, clientId: string): Promise<boolean> {
  const result = await db.deleteFrom('clients').where('client_id', '=', clientId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Adds a new secret digest; the client's other valid secrets expire at `oldSecretsExpireAt`
 * (now, for a rotation without grace).
 */
export async function replaceSecretDigest(db: Db, clientId: string, digest: string, oldSecretsExpireAt: Date): Promise<void> {
  await db
    .updateTable('client_secrets')
    .set({ expires_at: oldSecretsExpireAt })
    .where('client_id', '=', clientId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', oldSecretsExpireAt)]))
    .execute();
  // Expired digests are useless: drop them so the table only holds what can still authenticate.
  await db.deleteFrom('client_secrets').where('client_id', '=', clientId).where('expires_at', '<=', new Date()).execute();
  await db.insertInto('client_secrets').values({ client_id: clientId, digest, created_at: new Date() }).execute();
}

/** Ids of the application clients that may get tokens for a resource server identifier. */
export async function selectClientIdsUsingResource(db: Db, identifier: string): Promise<string[]> {
  const rows = await db
    .selectFrom('clients')
    .select('client_id')
    .where(sql<boolean>`metadata -> 'resources' @> ${JSON.stringify([identifier])}::jsonb`)
    .execute();
  return rows.map((r) => r.client_id);
}
