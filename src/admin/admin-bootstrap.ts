/**
 * The first admin credentials: the admin audience every issuer has, the admin client that
 * `npm run -s admin:bootstrap` prints, and the one ADMIN_BOOTSTRAP_* names for automated deployments.
 */
import { SYSTEM_ACTOR } from '../audit/audit.js';
import type { ClientMetadata } from '../clients/client.js';
import { selectClientWithSecrets } from '../clients/client-repository.js';
import { createClient, updateClient, type ProviderMetadataValidator } from '../clients/client-service.js';
import type { Db } from '../db/database.js';
import { MemoryChangeBus, type ChangeBus } from '../events/change-bus.js';
import type { Logger } from '../observability/logger.js';
import { createResourceServer } from '../resource-servers/resource-server-service.js';
import { ConflictError } from '../shared/errors.js';
import { ADMIN_SCOPES, adminAudience } from './admin-auth.js';

/** What creating admin clients needs. */
export interface AdminBootstrapDependencies {
  readonly issuer: string;
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly logger: Logger;
  readonly validateClientMetadata: ProviderMetadataValidator;
}

/** Metadata of an admin client: client credentials for the admin audience, both admin scopes. */
export function adminClientMetadata(issuer: string): ClientMetadata {
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: ADMIN_SCOPES.join(' '),
    resources: [adminAudience(issuer)],
  };
}

/**
 * Makes sure the admin audience (a resource server) of `issuer` exists, and that it enforces
 * entitlements: a person gets `admin:read` or `admin:write` only through an entitlement
 * (docs/groups-and-entitlements.md), whatever client signs them in. Admin clients' own
 * (client credentials) tokens are not concerned.
 */
export async function ensureAdminAudience(db: Db, issuer: string): Promise<void> {
  const audience = adminAudience(issuer);
  const existing = await db.selectFrom('resource_servers').select(['id', 'enforce_entitlements']).where('identifier', '=', audience).executeTakeFirst();
  if (existing && !existing.enforce_entitlements) {
    // Deployments from before entitlements: switched on once; no resource server event is needed, as
    // this runs before the registries load.
    await db.updateTable('resource_servers').set({ enforce_entitlements: true }).where('id', '=', existing.id).execute();
  }
  if (!existing) {
    try {
      // Admin tokens are opaque: revoking one ends its use at once.
      await createResourceServer(
        { db, bus: new MemoryChangeBus(), actor: SYSTEM_ACTOR },
        {
          identifier: audience,
          name: 'Admin API',
          scopes: [...ADMIN_SCOPES],
          sensitiveScopes: [],
          tokenFormat: 'opaque',
          accessTokenTtl: 900,
          signingAlg: 'RS256',
          introspectionResponse: 'json',
          enforceEntitlements: true,
          scopeDescriptions: { 'admin:read': 'Read the configuration of the login server', 'admin:write': 'Change the configuration of the login server' },
          requiredAcr: null,
          sensitiveScopesAcr: null,
          sensitiveScopesAcrMaxAge: null,
        },
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
}

/** What `npm run -s admin:bootstrap` prints: how to get an admin token. */
export interface AdminCredentials {
  client_id: string;
  client_secret: string;
  token_endpoint: string;
  resource: string;
  scope: string;
}

/** Creates a new admin client and answers its credentials (the secret appears only here). */
export async function createAdminClient(deps: AdminBootstrapDependencies): Promise<AdminCredentials> {
  const { client, secret } = await createClient({ db: deps.db, bus: deps.bus, actor: SYSTEM_ACTOR }, deps.validateClientMetadata, {
    clientName: 'Admin',
    trust: 'internal',
    metadata: adminClientMetadata(deps.issuer),
  });
  return {
    client_id: client.clientId,
    client_secret: secret!,
    token_endpoint: `${deps.issuer}/token`,
    resource: adminAudience(deps.issuer),
    scope: ADMIN_SCOPES.join(' '),
  };
}

/**
 * Makes sure the admin client named by ADMIN_BOOTSTRAP_* exists (automated deployments), and that it
 * is an admin client of this issuer: when ISSUER changes, its audience follows.
 */
export async function ensureBootstrapAdmin(deps: AdminBootstrapDependencies, admin: { clientId: string; clientSecret: string }): Promise<void> {
  const change = { db: deps.db, bus: deps.bus, actor: SYSTEM_ACTOR };
  const metadata = adminClientMetadata(deps.issuer);
  const existing = await selectClientWithSecrets(deps.db, admin.clientId);
  if (existing) {
    const sameAudience = existing.metadata.resources.join(' ') === metadata.resources.join(' ') && existing.metadata.scope === metadata.scope;
    if (!sameAudience) {
      await updateClient(change, deps.validateClientMetadata, admin.clientId, {
        clientName: existing.clientName,
        trust: 'internal',
        metadata,
        disabled: existing.disabled,
      });
    }
    return;
  }
  try {
    await createClient(
      change,
      deps.validateClientMetadata,
      { clientName: 'Bootstrap admin', trust: 'internal', metadata },
      { clientId: admin.clientId, secret: admin.clientSecret },
    );
    deps.logger.info({ clientId: admin.clientId }, 'bootstrap admin client created');
  } catch (error) {
    // Another instance created it at the same moment.
    if (!(error instanceof ConflictError)) throw error;
  }
}
