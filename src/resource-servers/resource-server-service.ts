/** Registering resource servers: the row, its introspection identity, the audit entry, the event. */
import { randomUUID } from 'node:crypto';
import { insertClient, selectClientIdsUsingResource } from '../clients/client-repository.js';
import { rotateClientSecret } from '../clients/client-service.js';
import type { SigningAlg } from '../keys/signing-keys.js';
import { recordAudit } from '../audit/audit.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { ConflictError, found } from '../shared/errors.js';
import { generateIdentifier, generateSecret, sha256Hex } from '../shared/secrets.js';
import type { ResourceServer } from './resource-server.js';
import {
  deleteResourceServerRow,
  insertResourceServer,
  selectResourceServer,
  updateResourceServer as updateResourceServerRow,
} from './resource-server-repository.js';

/** What an admin gives to register a resource server. */
export interface ResourceServerInput {
  identifier: string;
  name: string;
  scopes: string[];
  sensitiveScopes: string[];
  tokenFormat: 'jwt' | 'opaque';
  accessTokenTtl: number | null;
  signingAlg: SigningAlg;
  introspectionResponse: 'json' | 'jwt';
}

/**
 * Registers a resource server with its introspection credentials.
 * @returns the resource server and its introspection secret, which is never shown again.
 */
export async function createResourceServer(
  change: ChangeContext,
  input: ResourceServerInput,
): Promise<{ resourceServer: ResourceServer; introspectionSecret: string }> {
  const id = randomUUID();
  const introspectionClientId = `rs_${generateIdentifier()}`;
  const introspectionSecret = generateSecret();
  let resourceServer: ResourceServer;
  try {
    resourceServer = await change.db.transaction().execute(async (trx) => {
      const created = await insertResourceServer(trx, { id, introspectionClientId, ...input });
      await insertClient(trx, {
        clientId: introspectionClientId,
        clientName: `${input.name} (introspection)`,
        trust: 'internal',
        // An introspection identity gets no tokens: no grant types, no redirects.
        metadata: {
          grant_types: [],
          response_types: [],
          redirect_uris: [],
          post_logout_redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: '',
          resources: [],
        },
        resourceServerId: id,
        secretDigest: sha256Hex(introspectionSecret),
      });
      await recordAudit(trx, {
        actor: change.actor,
        action: 'resource_server.create',
        target: id,
        details: { identifier: input.identifier, token_format: input.tokenFormat, scopes: input.scopes },
      });
      return created;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a resource server with identifier ${input.identifier} already exists`);
    throw error;
  }
  await change.bus.publish({ kind: 'resource-server', id });
  return { resourceServer, introspectionSecret };
}

/** The resource server with this id (a UUID), or NotFoundError. */
export async function existingResourceServer(db: ChangeContext['db'], id: string): Promise<ResourceServer> {
  return found(await selectResourceServer(db, id), `resource server ${id}`);
}

/** Refuses changes to audiences the server manages itself (the admin API's own). */
function assertManageable(rs: ResourceServer, protectedIdentifiers: readonly string[]): void {
  if (protectedIdentifiers.includes(rs.identifier)) throw new ConflictError(`${rs.identifier} is managed by the server itself`);
}

/**
 * A change of where the resource server's security events are pushed (RFC 8935): each field left
 * `undefined` stays as it is, `null` removes it. The credential comes sealed (the caller holds the key).
 */
export interface EventsPushChange {
  readonly endpoint?: string | null;
  readonly token?: { readonly sealed: string; readonly kekId: string } | null;
}

/** Applies a validated whole update; the next token for this audience follows it on every instance. */
export async function updateResourceServer(
  change: ChangeContext,
  id: string,
  update: Omit<ResourceServerInput, 'identifier'>,
  protectedIdentifiers: readonly string[],
  push: EventsPushChange = {},
): Promise<ResourceServer> {
  const current = await existingResourceServer(change.db, id);
  assertManageable(current, protectedIdentifiers);
  const updated = await change.db.transaction().execute(async (trx) => {
    const row = await updateResourceServerRow(trx, id, { ...update, eventsEndpoint: push.endpoint, eventsEndpointToken: push.token });
    await recordAudit(trx, {
      actor: change.actor,
      action: 'resource_server.update',
      target: id,
      details: {
        identifier: current.identifier,
        token_format: update.tokenFormat,
        scopes: update.scopes,
        sensitive_scopes: update.sensitiveScopes,
        // The credential itself is never recorded: only that it changed.
        ...(push.endpoint !== undefined ? { events_endpoint: push.endpoint } : {}),
        ...(push.token !== undefined ? { events_endpoint_token: push.token === null ? 'removed' : 'set' } : {}),
      },
    });
    return row!;
  });
  await change.bus.publish({ kind: 'resource-server', id });
  return updated;
}

/** Deletes a resource server; ConflictError while clients may still get tokens for it. */
export async function deleteResourceServer(change: ChangeContext, id: string, protectedIdentifiers: readonly string[]): Promise<void> {
  const current = await existingResourceServer(change.db, id);
  assertManageable(current, protectedIdentifiers);
  const users = await selectClientIdsUsingResource(change.db, current.identifier);
  if (users.length > 0) {
    throw new ConflictError(`clients still use ${current.identifier}: ${users.slice(0, 10).join(', ')}${users.length > 10 ? ', ...' : ''}`);
  }
  await change.db.transaction().execute(async (trx) => {
    await deleteResourceServerRow(trx, id);
    await recordAudit(trx, { actor: change.actor, action: 'resource_server.delete', target: id, details: { identifier: current.identifier } });
  });
  await change.bus.publish({ kind: 'resource-server', id });
  await change.bus.publish({ kind: 'client', id: current.introspectionClientId });
}

/** A new introspection secret; the old one keeps working for `graceSeconds`. */
export async function rotateIntrospectionSecret(change: ChangeContext, id: string, graceSeconds: number): Promise<{ clientId: string; secret: string }> {
  const current = await existingResourceServer(change.db, id);
  const secret = await rotateClientSecret(change, current.introspectionClientId, graceSeconds, id);
  return { clientId: current.introspectionClientId, secret };
}
