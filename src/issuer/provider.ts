/**
 * The oidc-provider configuration: the engine does the protocol; this file only feeds it our clients,
 * accounts, keys, token store, token policy and pages, and routes its secret comparison to the stored
 * digests.
 */
import { hkdfSync } from 'node:crypto';
import type Koa from 'koa';
import Provider, { type Account, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { AccountRegistry } from '../accounts/account-registry.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import { OPENID_SCOPES } from '../clients/client.js';
import { DPOP_SIGNING_ALGS } from '../admin/dpop-proof.js';
import { trustedProviderMarkup } from '../interactions/html.js';
import { interactionPath } from '../interactions/interaction-routes.js';
import { installProviderPageHeaders } from '../interactions/page-headers.js';
import { errorPage, loggedOutPage, logoutPage } from '../interactions/pages.js';
import type { KeyEncryptionKey } from '../keys/key-encryption.js';
import type { FailureCounter } from '../limits/failure-counter.js';
import { SIGNING_ALGS, type KeyRing } from '../keys/signing-keys.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { sha256Base64Url } from '../shared/secrets.js';
import type { TokenStore } from '../tokens/token-store.js';
import { clientBoundAdapter } from './client-bound-adapter.js';
import { requestContext } from '../shared/request-context.js';
import { checkClientSecretsWith, type ClientSecretCheck } from './client-authentication.js';
import { deviceFlowFeature, installDevicePollingLimit, installUserCodeLimit, keepingExpiredDeviceCodes } from './device-flow.js';
import { GRANT_DIGEST_CLAIM, introspectionAllowed } from './introspection.js';
import { installJwtIntrospection } from './jwt-introspection.js';
import { PROTOCOL_ROUTES } from './protocol-routes.js';
import { refuseUnsupportedParameters } from './unsupported-requests.js';
import { ACR_VALUES } from './authentication-policy.js';
import { assertSignInMeetsResource, authenticationClaims, strongSignInPolicy } from './strong-sign-in.js';
import { defaultResourceOf, resolveResourceServer } from './resource-server-info.js';
import { exchangeClaimsOf } from './token-exchange.js';
import { exchangeFactsOf } from './token-exchange-claims.js';
import { DEFAULT_OPAQUE_TTL_SECONDS } from './token-policy.js';
import type { EntitlementRegistry } from '../groups/entitlement-registry.js';
import { entitlementClaims, groupsClaim, personBehind } from './entitlements.js';
import { MAX_LIST_CLAIM_BYTES } from './entitlement-policy.js';

/** Everything the provider is built from. */
export interface ProviderDependencies {
  readonly issuer: string;
  readonly clients: ClientRegistry;
  readonly accounts: AccountRegistry;
  readonly resourceServers: ResourceServerRegistry;
  /** Groups and entitlements: what a person's tokens may carry (entitlements.ts). */
  readonly entitlements: EntitlementRegistry;
  readonly tokenStore: TokenStore;
  readonly keyRing: KeyRing;
  /**
   * Cookie signing keys are derived from them, so every instance signs alike with no extra setting:
   * the first signs, the others (a previous key-encryption key) still verify.
   */
  readonly keyEncryptionKeys: readonly KeyEncryptionKey[];
  /** Checks client secrets (and counts failures); it outlives the provider, which is rebuilt. */
  readonly clientSecretCheck: ClientSecretCheck;
  /** Counts wrong device flow user codes (see device-flow.ts); it outlives the provider too. */
  readonly userCodeFailures: FailureCounter;
  /** Counts device code polls (slow_down); it outlives the provider too. */
  readonly devicePolls: FailureCounter;
  /** Seconds a device code (and its user code) stays usable (`DEVICE_CODE_TTL`). */
  readonly deviceCodeTtlSeconds: number;
  /** The provider's outgoing requests; it delivers back-channel logout tokens (backchannel-logout.ts). */
  readonly fetch: NonNullable<Configuration['fetch']>;
}

/** Where the JWKS is published (`jwks_uri`); its answer is made by jwks-endpoint.ts. */
export const JWKS_PATH = PROTOCOL_ROUTES.jwks;
/** The token endpoint, whose client_credentials grant the dedicated issuance path answers too. */
export const TOKEN_PATH = PROTOCOL_ROUTES.token;
/** The introspection endpoint, which the dedicated path answers too. */
export const INTROSPECTION_PATH = PROTOCOL_ROUTES.introspection;
/** The revocation endpoint, which the dedicated path answers too. */
export const REVOCATION_PATH = PROTOCOL_ROUTES.revocation;

const HOUR = 60 * 60;
const DAY = 24 * HOUR;
/** ID tokens live an hour; a retired key stays published at least as long (see services.ts). */
export const ID_TOKEN_TTL_SECONDS = HOUR;
/** A sign-in lasts a working day; then the person signs in again. */
const SESSION_TTL_SECONDS = 12 * HOUR;
/**
 * Refresh tokens (offline access) last 14 days from sign-in, however often they are rotated: a
 * rotated token inherits what is left of its predecessor's lifetime.
 */
const REFRESH_TOKEN_TTL_SECONDS = 14 * DAY;
/** Grants outlive the refresh tokens that refer to them. */
const GRANT_TTL_SECONDS = REFRESH_TOKEN_TTL_SECONDS;
/** How long a person has to finish signing in or consenting. */
const INTERACTION_TTL_SECONDS = HOUR;

const cookieSigningKey = (kek: KeyEncryptionKey) => Buffer.from(hkdfSync('sha256', kek.key, Buffer.alloc(0), 'cookie-signing', 32)).toString('base64url');

/** The scopes the token will carry, wherever the grant keeps them. */
function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  const fromParams = ctx.oidc.params?.scope;
  if (typeof fromParams === 'string') return fromParams.split(' ').filter(Boolean);
  const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken ?? ctx.oidc.entities.DeviceCode;
  return source?.scope?.split(' ').filter(Boolean) ?? [];
}

/**
 * Lets an internal client's request for `offline_access` count. OpenID Connect Core 11 has the
 * provider drop `offline_access` unless the request has `prompt=consent`, so that a person agrees to
 * access that outlives the sign-in; oidc-provider does so. Internal clients (the company's own
 * software) never show a consent page: the consent step approves them without one
 * (interaction-routes.ts). So for them the request is read as asking that step too (`consent` is
 * added to `prompt`): the grant gets `offline_access` and the code exchange a refresh token. External
 * clients keep the rule. A request with `prompt=none` is left alone (none admits no other value), and
 * so are parameters inside a request object or a pushed request, which the provider reads itself.
 */
async function consentForInternalOfflineAccess(ctx: Koa.ParameterizedContext, clients: ClientRegistry): Promise<void> {
  const query = new URLSearchParams(ctx.querystring);
  if (!query.get('scope')?.split(' ').includes('offline_access')) return;
  // Repeated parameters are the provider's to refuse, as they are.
  if (query.getAll('prompt').length > 1 || query.getAll('client_id').length !== 1) return;
  const prompt = (query.get('prompt') ?? '').split(' ').filter(Boolean);
  if (prompt.includes('consent') || prompt.includes('none')) return;
  const client = await clients.getActive(query.get('client_id')!);
  if (client?.trust !== 'internal') return;
  query.set('prompt', [...prompt, 'consent'].join(' '));
  ctx.querystring = query.toString();
}

/** Builds the provider. It is rebuilt (not mutated) when the signing keys change. */
export function buildProvider(deps: ProviderDependencies): Provider {
  const { clients, accounts, resourceServers } = deps;
  // Only the enabled algorithms (SIGNING_ALGS): discovery's *_signing_alg_values_supported follow.
  const enabledAlgs = [...deps.keyRing.algs];
  const publicUrl = new URL(deps.issuer);
  const https = publicUrl.protocol === 'https:';
  const resolution = { clients, resourceServers, entitlements: deps.entitlements, currentKid: () => deps.keyRing.currentKid };
  const entitlementDeps = { resourceServers, entitlements: deps.entitlements };
  const introspectionEndpoint = `${deps.issuer}${PROTOCOL_ROUTES.introspection}`;

  const configuration: Configuration = {
    adapter: (model: string) => {
      if (model === 'Client') return clients.providerAdapter();
      const adapter = clientBoundAdapter(deps.tokenStore.adapter(model), clients);
      return model === 'DeviceCode' ? keepingExpiredDeviceCodes(adapter) : adapter;
    },
    jwks: { keys: deps.keyRing.privateJwks },
    cookies: {
      keys: deps.keyEncryptionKeys.map(cookieSigningKey),
      long: { httpOnly: true, sameSite: 'lax', secure: https },
      short: { httpOnly: true, sameSite: 'lax', secure: https },
    },
    fetch: deps.fetch,
    routes: { ...PROTOCOL_ROUTES },
    // Only the OpenID scopes are static; resource server scopes come from getResourceServerInfo.
    scopes: [...OPENID_SCOPES],
    // acr, amr and auth_time: how the person signed in, in every ID token (docs/strong-sign-in.md).
    claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    interactions: { url: async (_ctx, interaction) => interactionPath(interaction.uid), policy: strongSignInPolicy(deps) },
    // Weakest first (docs/strong-sign-in.md); requests for them step up, see strong-sign-in.ts.
    acrValues: [...ACR_VALUES],
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_OPAQUE_TTL_SECONDS,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_OPAQUE_TTL_SECONDS,
      AuthorizationCode: 60,
      DeviceCode: deps.deviceCodeTtlSeconds,
      IdToken: ID_TOKEN_TTL_SECONDS,
      RefreshToken: (ctx) => ctx?.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? REFRESH_TOKEN_TTL_SECONDS,
      Session: SESSION_TTL_SECONDS,
      Grant: GRANT_TTL_SECONDS,
      Interaction: INTERACTION_TTL_SECONDS,
    },
    responseTypes: ['code'],
    extraParams: refuseUnsupportedParameters,
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    // Secrets are stored as digests, so nothing may use a client secret as an HMAC key. What we sign
    // with is limited to the enabled algorithms; what clients sign with (their own keys, never
    // published here) may be any asymmetric algorithm we can verify.
    enabledJWA: {
      clientAuthSigningAlgValues: [...SIGNING_ALGS],
      idTokenSigningAlgValues: enabledAlgs,
      requestObjectSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: enabledAlgs,
      introspectionSigningAlgValues: enabledAlgs,
      authorizationSigningAlgValues: enabledAlgs,
      // One list for the provider's endpoints and the admin API's own proof check.
      dPoPSigningAlgValues: [...DPOP_SIGNING_ALGS],
    },
    features: {
      devInteractions: { enabled: false },
      // An essential `acr` claim is honoured like acr_values (strong-sign-in.ts).
      claimsParameter: { enabled: true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: deviceFlowFeature(),
      backchannelLogout: { enabled: true },
      // Answers are signed by jwt-introspection.ts; enabled for discovery's signing algorithms.
      jwtIntrospection: { enabled: true },
      introspection: {
        enabled: true,
        // Audience isolation: only the token's audience (or its own client) learns it is active.
        allowedPolicy: async (_ctx, caller, token) =>
          introspectionAllowed(deps, caller.clientId, {
            clientId: token.clientId!,
            audiences: ([] as string[]).concat(('aud' in token ? token.aud : undefined) ?? []),
            issuedAt: token.iat,
            accountId: 'accountId' in token ? token.accountId : undefined,
            exchange: exchangeFactsOf('extra' in token ? token.extra : undefined),
            scope: token.scope,
          }),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, caller, token) => caller.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, client, oneOf) => oneOf ?? defaultResourceOf(clients, client.clientId),
        // A code exchange (or refresh) without `resource`: the token is for the granted API when the
        // scopes it asks for (its `scope` parameter, else the grant's) include one of that API's, so a
        // person-facing app gets a token its API accepts whether or not it repeats `resource`. Only
        // OpenID scopes (`openid profile email offline_access`) mean a token for userinfo, which
        // refuses any token with an audience; an app with an API gets one by a refresh with
        // `scope=openid ...` (see docs/protocol-notes.md). Without `openid`, the provider always uses
        // the granted resource.
        useGrantedResource: async (ctx, model) => {
          const asked = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope : model.scope;
          const openid: ReadonlySet<string> = new Set(OPENID_SCOPES);
          return (asked ?? '').split(' ').some((scope) => scope !== '' && !openid.has(scope));
        },
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          // The grant may hold several resources: the one named here must accept its sign-in's level.
          assertSignInMeetsResource(deps, ctx, resourceIndicator, requestedScopes(ctx));
          // Shared with the dedicated client_credentials path (resource-server-info.ts).
          const { decision: _decision, ...info } = await resolveResourceServer(
            resolution,
            client.clientId,
            resourceIndicator,
            requestedScopes(ctx),
            personBehind(ctx),
          );
          return info;
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = logoutPage(trustedProviderMarkup(form), ctx.oidc.client?.clientName);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = loggedOutPage(ctx.oidc.client?.clientName);
        },
      },
    },
    // A JWT access token of a grant names its grant (by digest) so that revoking the grant shows at
    // introspection (see GRANT_DIGEST_CLAIM), and carries the person's roles to its resource server
    // (entitlements.ts), bounded in size; a token issued by token exchange carries its chain
    // (token-exchange.ts). Opaque tokens need nothing: they are looked up.
    // A person's access token also carries how they signed in (acr, amr, auth_time; strong-sign-in.ts).
    extraTokenClaims: async (ctx, token) => {
      const signIn = 'accountId' in token ? authenticationClaims(ctx, token) : undefined;
      if (!('grantId' in token) || typeof token.grantId !== 'string' || token.resourceServer?.accessTokenFormat !== 'jwt') {
        const exchanged = exchangeClaimsOf(token);
        return exchanged || signIn ? { ...signIn, ...exchanged } : undefined;
      }
      const roles = await entitlementClaims(
        entitlementDeps,
        { accountId: token.accountId, audience: token.resourceServer.audience, scope: token.scope },
        introspectionEndpoint,
        MAX_LIST_CLAIM_BYTES,
      );
      return { ...signIn, [GRANT_DIGEST_CLAIM]: sha256Base64Url(token.grantId), ...roles };
    },
    // Disabled, deleted and signed-out-everywhere accounts are not found, which makes the provider
    // refuse their codes, refresh tokens and userinfo calls.
    findAccount: async (ctx, sub, token) => {
      const account = await accounts.getActive(sub);
      if (!account) return undefined;
      // A rotated refresh token keeps the issue time of the first one (`iiat`): the sign-in it came from.
      const issuedAt = token && ('iiat' in token && typeof token.iiat === 'number' ? token.iiat : token.iat);
      if (issuedAt !== undefined && !(await accounts.allowsTokenIssuedAt(sub, issuedAt))) return undefined;
      return {
        accountId: account.id,
        // No verification flow exists yet: administrators type the addresses in, so none is proven.
        claims: async (use, scope) => ({
          sub: account.id,
          email: account.email,
          email_verified: false,
          name: account.name,
          ...(scope.split(' ').includes('groups')
            ? await groupsClaim(
                { clients, entitlements: deps.entitlements },
                deps.issuer,
                account.id,
                ctx.oidc.client?.clientId,
                use === 'userinfo' ? 'userinfo' : 'id_token',
              )
            : {}),
        }),
      } satisfies Account;
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage({
        error: String(out.error),
        description: out.error_description === undefined ? undefined : String(out.error_description),
        requestId: requestContext.getStore()?.requestId,
      });
    },
  };

  const provider = new Provider(deps.issuer, configuration);

  checkClientSecretsWith(provider, deps.clientSecretCheck);

  // Every URL the provider builds (discovery, redirects to the pages, cookies' Secure flag) comes from
  // the configured issuer, never from the request's Host header or a client's X-Forwarded-* headers:
  // the provider trusts forwarded headers, and only these, set here, reach it. Behind a TLS-terminating
  // proxy the connection is plain HTTP, and this is also what lets Koa set Secure cookies on it.
  provider.proxy = true;
  provider.use(async (ctx, next) => {
    ctx.req.headers['x-forwarded-proto'] = publicUrl.protocol.slice(0, -1);
    ctx.req.headers['x-forwarded-host'] = publicUrl.host;
    delete ctx.req.headers['x-forwarded-for'];
    await next();
  });
  installProviderPageHeaders(provider);
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === PROTOCOL_ROUTES.authorization) await consentForInternalOfflineAccess(ctx, clients);
    await next();
  });
  installUserCodeLimit(provider, deps.userCodeFailures);
  installDevicePollingLimit(provider, deps.devicePolls);
  installJwtIntrospection(provider, { issuer: deps.issuer, keyRing: deps.keyRing, resourceServers });

  return provider;
}
