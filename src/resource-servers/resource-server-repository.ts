/** PostgreSQL access for resource servers. Functions take the database (or a transaction) first. */
import type { Selectable } from 'kysely';
import type { Db } from '../db/database.js';
import { decryptWithKek, encryptWithKek, type KeyEncryptionKey } from '../keys/key-encryption.js';
import type { ResourceServersTable } from '../db/schema.js';
import { pageAfter, type PageCursor } from '../shared/pagination.js';
import { isAcr } from '../issuer/authentication-policy.js';
import type { ResourceServer } from './resource-server.js';

type Row = Selectable<ResourceServersTable>;

function toResourceServer(row: Row): ResourceServer {
  return {
    id: row.id,
    identifier: row.identifier,
    name: row.name,
    scopes: row.scopes,
    sensitiveScopes: row.sensitive_scopes,
    tokenFormat: row.token_format,
    accessTokenTtl: row.access_token_ttl,
    signingAlg: row.signing_alg,
    introspectionResponse: row.introspection_response,
    requiredAcr: isAcr(row.required_acr) ? row.required_acr : null,
    sensitiveScopesAcr: isAcr(row.sensitive_scopes_acr) ? row.sensitive_scopes_acr : null,
    sensitiveScopesAcrMaxAge: row.sensitive_scopes_acr_max_age,
    introspectionClientId: row.introspection_client_id,
    eventsEndpoint: row.events_endpoint,
    eventsEndpointToken:
      row.events_endpoint_token_sealed !== null && row.events_endpoint_token_kek_id !== null
        ? { sealed: row.events_endpoint_token_sealed, kekId: row.events_endpoint_token_kek_id }
        : null,
    enforceEntitlements: row.enforce_entitlements,
    scopeDescriptions: row.scope_descriptions,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Associated data binding a sealed push credential to its resource server and key-encryption key
 * (a ciphertext moved onto another row does not open).
 */
export const eventsEndpointTokenContext = (resourceServerId: string, kekId: string) => `events-endpoint-token:${resourceServerId}:${kekId}`;

/** Inserts a resource server (without a push endpoint); the caller generated its id and introspection client id. */
export async function insertResourceServer(
  db: Db,
  rs: Omit<ResourceServer, 'createdAt' | 'updatedAt' | 'eventsEndpoint' | 'eventsEndpointToken'>,
): Promise<ResourceServer> {
  const now = new Date();
  const row = await db
    .insertInto('resource_servers')
    .values({
      id: rs.id,
      identifier: rs.identifier,
      name: rs.name,
      scopes: JSON.stringify(rs.scopes),
      sensitive_scopes: JSON.stringify(rs.sensitiveScopes),
      token_format: rs.tokenFormat,
      access_token_ttl: rs.accessTokenTtl,
      signing_alg: rs.signingAlg,
      introspection_response: rs.introspectionResponse,
      required_acr: rs.requiredAcr,
      sensitive_scopes_acr: rs.sensitiveScopesAcr,
      sensitive_scopes_acr_max_age: rs.sensitiveScopesAcrMaxAge,
      introspection_client_id: rs.introspectionClientId,
      enforce_entitlements: rs.enforceEntitlements,
      scope_descriptions: JSON.stringify(rs.scopeDescriptions),
      // Set here (millisecond precision) so keyset cursors round-trip through JavaScript dates.
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toResourceServer(row);
}

/** Every resource server (they are few: the registry caches them all). */
export async function selectAllResourceServers(db: Db): Promise<ResourceServer[]> {
  const rows = await db.selectFrom('resource_servers').selectAll().execute();
  return rows.map(toResourceServer);
}

/** One resource server by id, or undefined. */
export async function selectResourceServer(db: Db, id: string): Promise<ResourceServer | undefined> {
  const row = await db.selectFrom('resource_servers').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toResourceServer(row);
}

/** A page of resource servers in creation order, `limit + 1` rows (see `toPage`). */
export async function selectResourceServerPage(db: Db, limit: number, after: PageCursor | undefined): Promise<ResourceServer[]> {
  const rows = await pageAfter(db.selectFrom('resource_servers').selectAll(), after, limit, { createdAtColumn: 'created_at', idColumn: 'id' }).execute();
  return rows.map(toResourceServer);
}

/** What may change on a resource server (its identifier never does: clients refer to it). */
export type ResourceServerChanges = Partial<
  Pick<
    ResourceServer,
    | 'name'
    | 'scopes'
    | 'sensitiveScopes'
    | 'tokenFormat'
    | 'accessTokenTtl'
    | 'signingAlg'
    | 'introspectionResponse'
    | 'eventsEndpoint'
    | 'eventsEndpointToken'
    | 'enforceEntitlements'
    | 'scopeDescriptions'
    | 'requiredAcr'
    | 'sensitiveScopesAcr'
    | 'sensitiveScopesAcrMaxAge'
  >
>;

/** Updates a resource server; undefined when there is none. */
export async function updateResourceServer(db: Db, id: string, changes: ResourceServerChanges): Promise<ResourceServer | undefined> {
  const row = await db
    .updateTable('resource_servers')
    .set({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.scopes !== undefined ? { scopes: JSON.stringify(changes.scopes) } : {}),
      ...(changes.sensitiveScopes !== undefined ? { sensitive_scopes: JSON.stringify(changes.sensitiveScopes) } : {}),
      ...(changes.tokenFormat !== undefined ? { token_format: changes.tokenFormat } : {}),
      ...(changes.accessTokenTtl !== undefined ? { access_token_ttl: changes.accessTokenTtl } : {}),
      ...(changes.signingAlg !== undefined ? { signing_alg: changes.signingAlg } : {}),
      ...(changes.introspectionResponse !== undefined ? { introspection_response: changes.introspectionResponse } : {}),
      ...(changes.eventsEndpoint !== undefined ? { events_endpoint: changes.eventsEndpoint } : {}),
      ...(changes.eventsEndpointToken !== undefined
        ? {
            events_endpoint_token_sealed: changes.eventsEndpointToken?.sealed ?? null,
            events_endpoint_token_kek_id: changes.eventsEndpointToken?.kekId ?? null,
          }
        : {}),
      ...(changes.enforceEntitlements !== undefined ? { enforce_entitlements: changes.enforceEntitlements } : {}),
      ...(changes.scopeDescriptions !== undefined ? { scope_descriptions: JSON.stringify(changes.scopeDescriptions) } : {}),
      ...(changes.requiredAcr !== undefined ? { required_acr: changes.requiredAcr } : {}),
      ...(changes.sensitiveScopesAcr !== undefined ? { sensitive_scopes_acr: changes.sensitiveScopesAcr } : {}),
      ...(changes.sensitiveScopesAcrMaxAge !== undefined ? { sensitive_scopes_acr_max_age: changes.sensitiveScopesAcrMaxAge } : {}),
      updated_at: new Date(),
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toResourceServer(row);
}

/** Deletes a resource server (its introspection identity goes with it); whether it existed. */
export async function deleteResourceServerRow(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('resource_servers').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * Reseals every push credential that `to` did not seal (`npm run keys:rewrap`, after a change of
 * key-encryption key); resolves with how many. `keks` are every key that may have sealed one, by id.
 */
export async function rewrapEventsEndpointTokens(db: Db, keks: ReadonlyMap<string, KeyEncryptionKey>, to: KeyEncryptionKey): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('resource_servers')
      .select(['id', 'events_endpoint_token_sealed', 'events_endpoint_token_kek_id'])
      .where('events_endpoint_token_sealed', 'is not', null)
      .where('events_endpoint_token_kek_id', '!=', to.id)
      .forUpdate()
      .execute();
    for (const row of rows) {
      const from = keks.get(row.events_endpoint_token_kek_id!);
      if (!from)
        throw new Error(
          `the push credential of resource server ${row.id} was sealed by key-encryption key ${row.events_endpoint_token_kek_id}, which is not configured`,
        );
      const token = decryptWithKek(from, row.events_endpoint_token_sealed!, eventsEndpointTokenContext(row.id, from.id));
      await trx
        .updateTable('resource_servers')
        .set({ events_endpoint_token_sealed: encryptWithKek(to, token, eventsEndpointTokenContext(row.id, to.id)), events_endpoint_token_kek_id: to.id })
        .where('id', '=', row.id)
        .execute();
    }
    return rows.length;
  });
}
