/** Registering clients: checks, secret generation, the row, the audit entry, the change event. */
import type { Db } from '../db/database.js';
import { recordAudit } from '../observability/audit.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { generateIdentifier, generateSecret, sha256Hex } from '../shared/secrets.js';
import type { Client, ClientMetadata, ClientTrust } from './client.js';
import { insertClient } from './client-repository.js';

/** OpenID Connect scopes any login client may ask for, on top of its resources' scopes. */
export const OPENID_SCOPES = ['openid', 'offline_access', 'profile', 'email'] as const;

/** What an admin gives to register a client. */
export interface ClientInput {
  clientName: string;
  trust: ClientTrust;
  metadata: ClientMetadata;
}

/** A client input that cannot be accepted; `path` names the field at fault. */
export class InvalidClientInputError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** Checks metadata the way oidc-provider will read it, so nothing stored can fail at request time. */
export type ProviderMetadataValidator = (clientId: string, metadata: ClientMetadata) => Promise<void>;

async function checkResourcesAndScopes(db: Db, metadata: ClientMetadata): Promise<void> {
  const rows =
    metadata.resources.length === 0
      ? []
      : await db.selectFrom('resource_servers').select(['identifier', 'scopes']).where('identifier', 'in', metadata.resources).execute();
  metadata.resources.forEach((identifier, index) => {
    if (!rows.some((r) => r.identifier === identifier)) {
      throw new InvalidClientInputError(`resources.${index}`, `no resource server is registered as ${identifier}`);
    }
  });
  const offered = new Set<string>([...OPENID_SCOPES, ...rows.flatMap((r) => r.scopes)]);
  for (const scope of metadata.scope.split(' ').filter(Boolean)) {
    if (!offered.has(scope)) {
      throw new InvalidClientInputError('scope', `scope ${scope} is offered by none of the client's resources`);
    }
  }
}

/** Whether clients with this auth method authenticate with a shared secret. */
export const usesClientSecret = (metadata: ClientMetadata): boolean => metadata.token_endpoint_auth_method.startsWith('client_secret');

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
    if (isUniqueViolation(error)) throw new InvalidClientInputError('client_id', `client ${clientId} already exists`);
    throw error;
  }
  await change.bus.publish({ kind: 'client', id: clientId });
  return { client, secret };
}
