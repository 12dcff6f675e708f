/**
 * A peer: a stock oidc-provider configured the way its documentation suggests, with static clients,
 * its default in-memory adapter (or a plain Redis one, see peer-redis-adapter.ts), and one resource
 * per token format through `features.resourceIndicators`. It answers the same requests as the
 * project, so they compare side by side.
 *
 * Environment: PORT; PEER_CLIENT_SECRET, the secret of every static client; PEER_REDIS_URL and
 * PEER_REDIS_PREFIX to keep tokens in Redis instead of memory. Listens on 127.0.0.1.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors, type ClientMetadata, type JWK, type ResourceServer } from 'oidc-provider';
import { PEER_CLIENTS, PEER_RESOURCES, PEER_SCOPE } from './peer-fixtures.js';
import { redisAdapterFactory } from './peer-redis-adapter.js';

const port = Number(process.env.PORT);
const secret = process.env.PEER_CLIENT_SECRET!;
const redisUrl = process.env.PEER_REDIS_URL;

const resourceServers: Record<string, ResourceServer> = {
  [PEER_RESOURCES.opaque]: { scope: PEER_SCOPE, audience: PEER_RESOURCES.opaque, accessTokenTTL: 3600, accessTokenFormat: 'opaque' },
  [PEER_RESOURCES.rs256]: { scope: PEER_SCOPE, audience: PEER_RESOURCES.rs256, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256', kid: 'RS256-current' } } },
  [PEER_RESOURCES.es256]: { scope: PEER_SCOPE, audience: PEER_RESOURCES.es256, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256', kid: 'ES256-current' } } },
};
const defaultResourceOf: Record<string, string> = {
  [PEER_CLIENTS.opaque]: PEER_RESOURCES.opaque,
  [PEER_CLIENTS.rs256]: PEER_RESOURCES.rs256,
  [PEER_CLIENTS.es256]: PEER_RESOURCES.es256,
  [PEER_CLIENTS.resourceServer]: PEER_RESOURCES.opaque,
};

const client = (clientId: string): ClientMetadata => ({
  client_id: clientId,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
});

const ALGS = { RS256: 'rsa', PS256: 'rsa', ES256: 'ec', EdDSA: 'ed25519' } as const;

function privateJwk(alg: keyof typeof ALGS, kid: string): JWK {
  const type = ALGS[alg];
  const { privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
}

// The same key set as the project publishes (a current and a next key for each algorithm it offers),
// so that the JWKS scenario serves documents of the same size. The first key of an algorithm signs.
const keys = Object.keys(ALGS).flatMap((alg) => [privateJwk(alg as keyof typeof ALGS, `${alg}-current`), privateJwk(alg as keyof typeof ALGS, `${alg}-next`)]);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  ...(redisUrl ? { adapter: redisAdapterFactory(redisUrl, process.env.PEER_REDIS_PREFIX ?? '') } : {}),
  clients: Object.values(PEER_CLIENTS).map(client),
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // As its documentation asks: decide who may introspect. The same rule as ours: the token's
      // client, or the resource server the token is for.
      allowedPolicy: async (_ctx, caller, token) =>
        caller.clientId === token.clientId || (caller.clientId === PEER_CLIENTS.resourceServer && 'aud' in token && token.aud === PEER_RESOURCES.opaque),
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (_ctx, caller, token) => caller.clientId === token.clientId,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, requester, oneOf) => oneOf ?? defaultResourceOf[requester.clientId],
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const info = resourceServers[resourceIndicator];
        if (!info) throw new errors.InvalidTarget();
        return info;
      },
    },
  },
});
provider.on('server_error', (_ctx: unknown, error: Error) => console.error('peer server_error', error));

const server = provider.listen(port, '127.0.0.1', () => console.log(`peer listening on port ${port}`));
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
