/**
 * The dedicated client_credentials path (docs/dedicated-paths.md): an access token for a client
 * authenticating with its secret (Basic or in the form), issued in front of oidc-provider with the
 * provider's own checks, token and answer: an opaque token stored as the provider stores it, or a JWT
 * (RFC 9068) signed as the provider signs it, by the token policy's decision. It handles only requests
 * whose whole course it knows; anything else goes to the provider untouched, with its body given back
 * when it was read. Errors of the grant (`invalid_scope`, `invalid_target`) are the provider's to
 * give: the request is left to it.
 *
 * What this reproduces: lib/actions/token.js, lib/actions/grants/client_credentials.js,
 * lib/shared/check_resource.js, lib/models/formats/opaque.js and lib/models/formats/jwt.js of
 * oidc-provider; and test/e2e/issuance-differential.test.ts holds the two answers to the same corpus
 * equal, and the tokens of each path alike on the other. Shared with the provider's path rather than
 * repeated: the client secret check (and its lockout), the resource server resolution and token policy
 * (resource-server-info.ts), the client-bound adapter and the token store, the signing keys in force.
 */
import type { EarlyExchange, EarlyRoute } from './early-dispatch.js';
import {
  answerFailure,
  authenticate,
  dedicatedPath,
  readFormAhead,
  readProviderForm,
  respond,
  secretCredentials,
  type ProviderRoute,
  type SecretCredentials,
} from './dedicated-path.js';
import { randomFillSync } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { ClientTrust } from '../clients/client.js';
import type { Logger } from '../observability/logger.js';
import { tokensIssued } from '../observability/metrics.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { requestContext } from '../shared/request-context.js';
import { epochSeconds } from '../tokens/token-keys.js';
import type { TokenStore } from '../tokens/token-store.js';
import type { ClientSecretCheck } from './client-authentication.js';
import { clientBoundAdapter } from './client-bound-adapter.js';
import { signAccessToken, type AccessTokenSigningKey, type JwtAccessTokenSigner } from './jwt-access-token.js';
import { defaultResourceOf, resolveResourceServer, type ResourceServerInfoDependencies } from './resource-server-info.js';

/** What the dedicated path consults. */
export interface DedicatedIssuanceDependencies extends ResourceServerInfoDependencies {
  readonly issuer: string;
  readonly tokenPath: string;
  readonly clients: ClientRegistry;
  readonly resourceServers: ResourceServerRegistry;
  readonly tokenStore: TokenStore;
  readonly checkClientSecret: ClientSecretCheck;
  /** The signer of the key ring in force (its `kid`s are those `currentKid` names). */
  readonly currentJwtSigner: () => JwtAccessTokenSigner;
  readonly logger: Logger;
}

/** The only form parameters handled here; any other (a client assertion, authorization details...) is left to the provider. */
const HANDLED_PARAMETERS = new Set(['grant_type', 'scope', 'resource', 'client_id', 'client_secret']);

/** The provider's scope syntax (lib/helpers/is_valid_scope.js); anything else is its `invalid_scope` to give. */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;

/**
 * Opaque token values as the provider makes them (lib/models/formats/opaque.js with its default
 * `formats.bitsOfOpaqueRandomness` of 256): 43 symbols of a 64-symbol URL-safe alphabet, each drawn
 * from 6 uniformly random bits (258 bits in all), from a pool of random bytes refilled as it runs out.
 */
const TOKEN_LENGTH = Math.ceil(256 / 6);
const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'latin1');
const POOL_BYTES = TOKEN_LENGTH * 128;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;
function newTokenValue(): string {
  if (poolOffset + TOKEN_LENGTH > POOL_BYTES) {
    randomFillSync(pool);
    for (let i = 0; i < POOL_BYTES; i++) pool[i] = ALPHABET[pool[i] & 63]!;
    poolOffset = 0;
  }
  const value = pool.toString('latin1', poolOffset, poolOffset + TOKEN_LENGTH);
  poolOffset += TOKEN_LENGTH;
  return value;
}

/** A request this path handles, as far as its form and headers tell. */
interface Candidate extends SecretCredentials {
  /** The `scope` parameter, when given. */
  readonly scope: string | undefined;
  /** The `resource` parameter, when given. */
  readonly resource: string | undefined;
}

/** Not handled here: the provider answers. */
const LEAVE = undefined;

/** Picks the request this path handles from the form, the provider's way (see readProviderForm). */
function candidateOf(exchange: EarlyExchange, body: Buffer): Candidate | undefined {
  // Empty parameters: the provider's reading of them is its own to give.
  const form = readProviderForm(exchange, body, HANDLED_PARAMETERS, 'leave');
  if (!form) return LEAVE;
  const { grant_type: grantType, scope, resource } = form;
  if (grantType !== 'client_credentials') return LEAVE;
  if (scope !== undefined && !SCOPE_SYNTAX.test(scope)) return LEAVE;
  const credentials = secretCredentials(exchange, form);
  return credentials && { ...credentials, scope, resource };
}

/** A resource indicator the provider takes as it is (lib/shared/check_resource.js): absolute, no fragment. */
function acceptableIndicator(identifier: string): boolean {
  const href = URL.parse(identifier)?.href;
  return href !== undefined && !href.includes('#');
}

/** The provider's token route has CORS and its no-cache step. */
const TOKEN_ROUTE: ProviderRoute = { name: 'token', noStore: true };

/**
 * Builds the route of the dedicated path, answered by the early dispatch in front of the Koa
 * application; every request it leaves goes on to the provider.
 */
export function dedicatedIssuance(deps: DedicatedIssuanceDependencies): EarlyRoute {
  // The adapter the provider stores ClientCredentials tokens through (provider.ts `adapter`).
  const adapter = clientBoundAdapter(deps.tokenStore.adapter('ClientCredentials'), deps.clients);
  const issuedCount = (format: 'opaque' | 'jwt'): Record<ClientTrust, ReturnType<typeof tokensIssued.labels>> => ({
    internal: tokensIssued.labels('client_credentials', format, 'internal'),
    external: tokensIssued.labels('client_credentials', format, 'external'),
  });
  const issued = { opaque: issuedCount('opaque'), jwt: issuedCount('jwt') };
  return dedicatedPath('token', deps.tokenPath, answer);

  /**
   * An opaque token, stored as the provider stores it: its payload in its order (opaque.js: iat, exp,
   * then the token's own fields), through the same adapter.
   */
  async function opaqueAccessToken(clientId: string, audience: string, scope: string | undefined, ttl: number): Promise<string> {
    const value = newTokenValue();
    const now = epochSeconds();
    const payload: AdapterPayload = { iat: now, exp: now + ttl };
    if (scope !== undefined) payload.scope = scope;
    Object.assign(payload, { kind: 'ClientCredentials', jti: value, clientId, aud: audience, extra: undefined });
    await adapter.upsert(value, payload, ttl);
    return value;
  }

  /**
   * A JWT access token as the provider's JWT format makes one for a client_credentials token (jwt.js
   * `getValueAndPayload`): nothing stored (the format has no payload to save), its claims in the
   * provider's order, its `jti` of the same form as an opaque value (its nanoid: 43 URL-safe symbols),
   * `sub` the client itself. The provider's `extraTokenClaims` (provider.ts) adds nothing to such a token:
   * it has no grant, no person and no token exchange behind it. The header is the provider's too
   * (`alg`, `typ: "at+jwt"`, `kid`).
   */
  async function jwtAccessToken(key: AccessTokenSigningKey, clientId: string, audience: string, scope: string | undefined, ttl: number): Promise<string> {
    const now = epochSeconds();
    return signAccessToken(key, {
      jti: newTokenValue(),
      sub: clientId,
      iat: now,
      exp: now + ttl,
      ...(scope !== undefined ? { scope } : {}),
      client_id: clientId,
      iss: deps.issuer,
      aud: audience,
    });
  }

  /** Answers the request; or leaves it untouched (but for a body read ahead) and resolves `false`. */
  async function answer(exchange: EarlyExchange): Promise<boolean> {
    const body = await readFormAhead(exchange);
    const candidate = body && candidateOf(exchange, body);
    if (!candidate) return false;
    // A failed lookup is the provider's to fail again (its answer to a store failure is a 503 as well).
    const client = await deps.clients.getActive(candidate.clientId).catch(() => undefined);
    const method = client?.metadata.token_endpoint_auth_method;
    // Unknown clients and other methods get the provider's errors (which count no failure), and so
    // does a client not registered for this grant (its invalid_request comes after authentication).
    if (!client || (method !== 'client_secret_basic' && method !== 'client_secret_post')) return false;
    if (!client.metadata.grant_types.includes('client_credentials')) return false;
    // The provider's defaultResource; a client with none gets a token without audience, left to it.
    const indicator = candidate.resource ?? client.metadata.resources[0];
    if (indicator === undefined || !acceptableIndicator(indicator)) return false;

    // The provider's course (client_credentials.js): the requested scopes, the resource server (its
    // defaultResource when none is named) and the policy's decision. None of it depends on the secret
    // or changes anything, so it is decided first: a request left to the provider for what it asks
    // (a grant error, a key ring changing under it) is authenticated once, there.
    const requested = candidate.scope === undefined ? [] : candidate.scope.split(' ');
    if (candidate.resource === undefined) {
      // As the provider asks it (a cached client answers at once); the same value as read above.
      const fallback = defaultResourceOf(deps.clients, candidate.clientId);
      if ((fallback instanceof Promise ? await fallback : fallback) !== indicator) return false;
    }
    let resolved;
    try {
      resolved = await resolveResourceServer(deps, candidate.clientId, indicator, requested);
    } catch {
      // invalid_target, invalid_scope (the provider's to give, after it authenticates the client), or a
      // failure (a registry reload) the provider meets again.
      return false;
    }
    const ttl = resolved.accessTokenTTL;
    if (!Number.isSafeInteger(ttl) || ttl <= 0) return false;
    // A JWT is signed with the key the provider would select (the current key of the resource
    // server's algorithm, jwt.js `getResourceServerConfig`), taken from the signer of the key ring in
    // force; a key ring that changed since the kid was read leaves the request to the provider.
    let signingKey: AccessTokenSigningKey | undefined;
    if (resolved.accessTokenFormat === 'jwt') {
      const sign = resolved.jwt?.sign;
      signingKey = sign?.kid === undefined ? undefined : deps.currentJwtSigner().key(sign.alg, sign.kid);
      if (signingKey === undefined) return false;
    }

    const context = requestContext.getStore();
    // Named as the provider names it once it has found the client (traces and logs carry it).
    if (context) context.clientId = candidate.clientId;
    try {
      if (!(await authenticate(exchange, deps, candidate, TOKEN_ROUTE))) return true;

      const resourceScopes = new Set(resolved.scope.split(' '));
      const scope = [...new Set(requested)].filter((s) => resourceScopes.has(s)).join(' ') || undefined;
      const value = signingKey
        ? await jwtAccessToken(signingKey, candidate.clientId, resolved.audience, scope, ttl)
        : await opaqueAccessToken(candidate.clientId, resolved.audience, scope, ttl);

      respond(
        exchange,
        { status: 200, body: { access_token: value, expires_in: ttl, ...(scope !== undefined ? { scope } : {}), token_type: 'Bearer' } },
        TOKEN_ROUTE,
      );
      issued[resolved.accessTokenFormat][client.trust].inc();
      return true;
    } catch (error) {
      answerFailure(exchange, deps.logger, error, TOKEN_ROUTE);
      return true;
    }
  }
}
