/** Registering resource servers: the row, its introspection identity, the audit entry, the event. */
import { randomUUID } from 'node:crypto';
import { insertClient } from '../clients/client-repository.js';
import type { SigningAlg } from '../keys/signing-keys.js';
import { recordAudit } from '../observability/audit.js';
import { isUniqueViolation, type ChangeContext } from '../shared/change-context.js';
import { generateIdentifier, generateSecret, sha256Hex } from '../shared/secrets.js';
import type { ResourceServer } from './resource-server.js';
import { insertResourceServer } from './resource-server-repository.js';

/** What an admin gives to register a resource server. */
export interface ResourceServerInput {
  identifier: string;
  name: string;
  scopes: string[];
  sensitiveScopes: string[];
  tokenFormat: 'jwt' | 'opaque';
  accessTokenTtl: number | null;
  signingAlg: SigningAlg;
}

/** Thrown when the identifier is already registered. */
export class DuplicateResourceServerError extends Error {
  constructor(identifier: string) {
    super(`a resource server with identifier ${identifier} already exists`);
  }
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
    if (isUniqueViolation(error)) throw new DuplicateResourceServerError(input.identifier);
    throw error;
  }
  await change.bus.publish({ kind: 'resource-server', id });
  return { resourceServer, introspectionSecret };
}
