/**
 * The oidc-provider configuration: the engine does the protocol; this file only feeds it our clients,
 * keys, token store and token policy, and routes its secret comparison to the stored digests.
 */
import { hkdfSync } from 'node:crypto';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import { OPENID_SCOPES } from '../clients/client-service.js';
import type { KeyEncryptionKey } from '../keys/key-encryption.js';
import { SIGNING_ALGS, type KeyRing } from '../keys/signing-keys.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import type { TokenStore } from '../tokens/token-store.js';
import { introspectionAllowed } from './token-edges.js';
import { decideAccessToken } from './token-policy.js';

/** Everything the provider is built from. */
export interface ProviderDependencies {
  readonly issuer: string;
  readonly clients: ClientRegistry;
  readonly resourceServers: ResourceServerRegistry;
  readonly tokenStore: TokenStore;
  readonly keyRing: KeyRing;
  /**
   * Cookie signing keys are derived from them, so every instance signs alike with no extra setting:
   * the first signs, the others (a previous key-encryption key) still verify.
   */
  readonly keyEncryptionKeys: readonly KeyEncryptionKey[];
}

/** Where the JWKS is published (`jwks_uri`); its answer is made by jwks-endpoint.ts. */
export const JWKS_PATH = '/jwks';

const ASYMMETRIC_ALGS = [...SIGNING_ALGS];

const cookieSigningKey = (kek: KeyEncryptionKey) =>
  Buffer.from(hkdfSync('sha256', kek.key, Buffer.alloc(0), 'cookie-signing', 32)).toString('base64url');

/** The scopes the token will carry, wherever the grant keeps them. */
function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  const fromParams = ctx.oidc.params?.scope;
  if (typeof fromParams === 'string') return fromParams.split(' ').filter(Boolean);
  const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken ?? ctx.oidc.entities.DeviceCode;
  return source?.scope?.split(' ').filter(Boolean) ?? [];
}

/** Builds the provider. It is rebuilt (not mutated) when the signing keys change. */
export function buildProvider(deps: ProviderDependencies): Provider {
  const { clients, resourceServers } = deps;

  const configuration: Configuration = {
    adapter: (model: string) => (model === 'Client' ? clients.providerAdapter() : deps.tokenStore.adapter(model)),
    jwks: { keys: deps.keyRing.privateJwks as NonNullable<Configuration['jwks']>['keys'] },
    cookies: { keys: deps.keyEncryptionKeys.map(cookieSigningKey) },
    routes: { jwks: JWKS_PATH },
    // Only the OpenID scopes are static; resource server scopes come from getResourceServerInfo.
    scopes: [...OPENID_SCOPES],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    // Secrets are stored as digests, so nothing may use a client secret as an HMAC key.
    enabledJWA: {
      clientAuthSigningAlgValues: ASYMMETRIC_ALGS,
      idTokenSigningAlgValues: ASYMMETRIC_ALGS,
      requestObjectSigningAlgValues: ASYMMETRIC_ALGS,
      userinfoSigningAlgValues: ASYMMETRIC_ALGS,
      introspectionSigningAlgValues: ASYMMETRIC_ALGS,
      authorizationSigningAlgValues: ASYMMETRIC_ALGS,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Audience isolation: only the token's audience (or its own client) learns it is active.
        allowedPolicy: async (_ctx, caller, token) =>
          introspectionAllowed(deps, caller.clientId, {
            clientId: token.clientId!,
            audiences: ([] as string[]).concat(('aud' in token ? (token.aud as string | string[] | undefined) : undefined) ?? []),
            issuedAt: token.iat!,
          }),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, caller, token) => caller.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          const registered = await clients.get(client.clientId);
          return registered?.metadata.resources[0];
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          const registered = await clients.getActive(client.clientId);
          const rs = resourceServers.byIdentifier(resourceIndicator);
          if (!registered || !rs || !registered.metadata.resources.includes(rs.identifier)) {
            throw new errors.InvalidTarget(`resource ${resourceIndicator} is unknown or not allowed for this client`);
          }
          // The provider checks only its static (OpenID) scopes against the client; resource server
          // scopes it would drop silently. A client asking beyond what it was granted must hear so.
          const allowed = new Set(registered.metadata.scope.split(' '));
          const requested = requestedScopes(ctx);
          const refused = requested.find((scope) => !allowed.has(scope));
          if (refused !== undefined) throw new errors.InvalidScope('requested scope is not allowed', refused);
          const decision = decideAccessToken(registered.trust, rs, requested);
          return {
            audience: rs.identifier,
            scope: rs.scopes.filter((scope) => allowed.has(scope)).join(' '),
            accessTokenTTL: decision.ttlSeconds,
            accessTokenFormat: decision.format,
            ...(decision.format === 'jwt'
              ? { jwt: { sign: { alg: decision.signingAlg, kid: deps.keyRing.currentKid[decision.signingAlg] } } }
              : {}),
          };
        },
      },
    },
    // Accounts arrive with the login issue; until then no user can be found.
    findAccount: async () => undefined,
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head><body><h1>Something went wrong</h1><p>${escapeHtml(String(out.error))}</p></body></html>`;
    },
  };

  const provider = new Provider(deps.issuer, configuration);

  // The maintainers' suggested extension point for stored secret digests (node-oidc-provider#631):
  // the provider's own comparison would need the plaintext, which we never keep.
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual: string) {
    return clients.verifySecret(this.clientId, actual);
  } as unknown as (actual: string) => boolean;

  return provider;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
