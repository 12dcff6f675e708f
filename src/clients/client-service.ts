/**
 * Client lifecycle: registration, changes, secret rotation, bulk revocation, deletion. Each change is
 * one transaction with its audit entry, then a change event so every instance drops its cached copy.
 */
import type { Db } from '../db/database.js';
import { recordAudit } from '../audit/audit.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { ConflictError, found, InvalidInputError } from '../shared/errors.js';
import { generateIdentifier, generateSecret, sha256Hex } from '../shared/secrets.js';
import { recordRevocationEvent } from '../security-events/outbox.js';
import { revokedBeforeOf } from '../security-events/revocation-event.js';
import { OPENID_SCOPES, type Client, type ClientMetadata, type ClientTrust, type ClientWithSecrets } from './client.js';
import {
  deleteClientRow,
  insertClient,
  replaceSecretDigest,
  selectClientWithSecrets,
  updateClient as updateClientRow,
  type ClientChanges,
} from './client-repository.js';

/** What an admin gives to register a client. */
export interface ClientInput {
  clientName: string;
  trust: ClientTrust;
  metadata: ClientMetadata;
}

/** Checks metadata the way oidc-provider will read it, so nothing stored can fail at request time. */
export type ProviderMetadataValidator = (clientId: string, metadata: ClientMetadata) => Promise<void>;

/** Whether clients with this auth method authenticate with a shared secret. */
export const usesClientSecret = (metadata: ClientMetadata): boolean => metadata.token_endpoint_auth_method.startsWith('client_secret');

async function checkResourcesAndScopes(db: Db, metadata: ClientMetadata): Promise<void> {
  const rows =
    metadata.resources.length === 0
      ? []
      : await db.selectFrom('resource_servers').select(['identifier', 'scopes']).where('identifier', 'in', metadata.resources).execute();
  metadata.resources.forEach((identifier, index) => {
    if (!rows.some((r) => r.identifier === identifier)) {
      throw new InvalidInputError(`resources.${index}`, `no resource server is registered as ${identifier}`);
    }
  });
  const offered = new Set<string>([...OPENID_SCOPES, ...rows.flatMap((r) => r.scopes)]);
  for (const scope of metadata.scope.split(' ').filter(Boolean)) {
    if (!offered.has(scope)) throw new InvalidInputError('scope', `scope ${scope} is offered by none of the client's resources`);
  }
}

/**
 * The application client with this id, or NotFoundError. A resource server's introspection identity is
 * not one: it is managed through its resource server.
 */
export async function existingClient(db: Db, clientId: string): Promise<ClientWithSecrets> {
  const client = await selectClientWithSecrets(db, clientId);
  return found(client?.resourceServerId ? undefined : client, `client ${clientId}`);
}

/**
 * Registers a client. `clientId` and `secret` may be given (the bootstrap admin client); otherwise
 * they are generated.
 * @returns the client and its secret (when it has one), which is never shown again.
 */
export async function createClient(
  change: ChangeContext,
  validate: ProviderMetadataValidator,
  input: ClientInput,
  fixed: { clientId?: string; secret?: string } = {},
): Promise<{ client: Client; secret: string | undefined }> {
  await checkResourcesAndScopes(change.db, input.metadata);
  const clientId = fixed.clientId ?? generateIdentifier();
  await validate(clientId, input.metadata);
  const secret = usesClientSecret(input.metadata) ? (fixed.secret ?? generateSecret()) : undefined;

  let client: Client;
  try {
    client = await change.db.transaction().execute(async (trx) => {
      const created = await insertClient(trx, {
        clientId,
        clientName: input.clientName,
        trust: input.trust,
        metadata: input.metadata,
        resourceServerId: null,
        secretDigest: secret ? sha256Hex(secret) : null,
      });
      await recordAudit(trx, {
        actor: change.actor,
        action: 'client.create',
        target: clientId,
        details: {
          client_name: input.clientName,
          trust: input.trust,
          grant_types: input.metadata.grant_types,
          resources: input.metadata.resources,
          scope: input.metadata.scope,
        },
      });
      return created;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`client ${clientId} already exists`);
    throw error;
  }
  await change.bus.publish({ kind: 'client', id: clientId });
  return { client, secret };
}

/** A partial update, already merged and validated as a whole by the caller's schema. */
export interface ClientUpdate {
  clientName: string;
  trust: ClientTrust;
  metadata: ClientMetadata;
  disabled: boolean;
}

/**
 * Applies a validated whole-client update. Disabling takes effect on every instance at once: the
 * client gets no token and every token it holds introspects inactive.
 */
export async function updateClient(change: ChangeContext, validate: ProviderMetadataValidator, clientId: string, update: ClientUpdate): Promise<Client> {
  const current = await existingClient(change.db, clientId);
  await checkResourcesAndScopes(change.db, update.metadata);
  await validate(clientId, update.metadata);
  if (usesClientSecret(update.metadata) && current.secretDigests.length === 0) {
    throw new InvalidInputError('token_endpoint_auth_method', 'the client has no secret: rotate its secret after switching, or keep its method');
  }
  const changed = Object.keys(update).filter(
    (key) => JSON.stringify(update[key as keyof ClientUpdate]) !== JSON.stringify(fieldOf(current, key as keyof ClientUpdate)),
  );
  const disabling = update.disabled && !current.disabled;
  const client = await change.db.transaction().execute(async (trx) => {
    // Disabling kills the tokens it holds for good (as it does for accounts): they stay dead if it is
    // enabled again, so the revocation event resource servers get says the same.
    const revokedAt = disabling ? new Date() : undefined;
    const updated = await updateClientRow(trx, clientId, { ...(update satisfies ClientChanges), ...(revokedAt ? { tokensRevokedAt: revokedAt } : {}) });
    if (revokedAt) await recordRevocationEvent(trx, { kind: 'client', clientId, revokedBefore: revokedBeforeOf(revokedAt.getTime()), reason: 'disabled' });
    await recordAudit(trx, {
      actor: change.actor,
      action: update.disabled !== current.disabled ? (update.disabled ? 'client.disable' : 'client.enable') : 'client.update',
      target: clientId,
      details: { changed },
    });
    return updated!;
  });
  await change.bus.publish({ kind: 'client', id: clientId });
  return client;
}

const fieldOf = (client: Client, key: keyof ClientUpdate) => client[key];

/** Deletes a client: it gets no token and its tokens introspect inactive on every instance at once. */
export async function deleteClient(change: ChangeContext, clientId: string): Promise<void> {
  await existingClient(change.db, clientId);
  await change.db.transaction().execute(async (trx) => {
    await deleteClientRow(trx, clientId);
    await recordRevocationEvent(trx, { kind: 'client', clientId, revokedBefore: revokedBeforeOf(Date.now()), reason: 'deleted' });
    await recordAudit(trx, { actor: change.actor, action: 'client.delete', target: clientId, details: {} });
  });
  await change.bus.publish({ kind: 'client', id: clientId });
}

/**
 * Gives a client (or a resource server's introspection identity) a new secret. Its other secrets keep
 * working for `graceSeconds` (0: they stop at once, on every instance).
 * @returns the new secret, which is never shown again.
 */
export async function rotateClientSecret(change: ChangeContext, clientId: string, graceSeconds: number, auditTarget = clientId): Promise<string> {
  const client = found(await selectClientWithSecrets(change.db, clientId), `client ${clientId}`);
  if (!usesClientSecret(client.metadata)) {
    throw new InvalidInputError('token_endpoint_auth_method', `a client using ${client.metadata.token_endpoint_auth_method} has no secret to rotate`);
  }
  const secret = generateSecret();
  await change.db.transaction().execute(async (trx) => {
    await replaceSecretDigest(trx, clientId, sha256Hex(secret), new Date(Date.now() + graceSeconds * 1000));
    await recordAudit(trx, {
      actor: change.actor,
      action: 'client.secret.rotate',
      target: auditTarget,
      details: { client_id: clientId, grace_seconds: graceSeconds },
    });
  });
  await change.bus.publish({ kind: 'client', id: clientId });
  return secret;
}

/**
 * Revokes every grant and token the client holds, JWT access tokens included: tokens issued up to
 * this second are dead on every instance (see ClientRegistry.allowsTokenIssuedAt).
 */
export async function revokeClientTokens(change: ChangeContext, clientId: string): Promise<void> {
  await existingClient(change.db, clientId);
  await change.db.transaction().execute(async (trx) => {
    const revokedAt = new Date();
    await updateClientRow(trx, clientId, { tokensRevokedAt: revokedAt });
    await recordRevocationEvent(trx, { kind: 'client', clientId, revokedBefore: revokedBeforeOf(revokedAt.getTime()), reason: 'revoked' });
    await recordAudit(trx, { actor: change.actor, action: 'client.tokens.revoke', target: clientId, details: {} });
  });
  await change.bus.publish({ kind: 'client', id: clientId });
}
