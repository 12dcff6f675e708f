/**
 * The dedicated introspection path (docs/dedicated-paths.md): introspection by a client authenticating
 * with its secret (Basic or in the form), answered in front of oidc-provider with the provider's own
 * checks and answer, in a fraction of its time. It handles only requests whose whole course it knows;
 * anything else goes to the provider untouched, with its body given back when it was read.
 *
 * The provider's introspection (lib/actions/introspection.js and lib/shared/client_auth.js of
 * oidc-provider) is what this reproduces, and test/e2e/introspection-differential.test.ts holds the
 * two answers to the same corpus equal. Shared with the provider's path rather than repeated: the
 * client secret check (and its lockout), the visibility rule, the JWT answer and the fields added to
 * opaque answers.
 */
import type { EarlyExchange, EarlyRoute } from './early-dispatch.js';
import {
  answerFailure,
  authenticate,
  authenticateThen,
  dedicatedPath,
  readFormAhead,
  readProviderForm,
  respond,
  secretCredentials,
  type ProviderRoute,
  type SecretCredentials,
} from './dedicated-path.js';
import type { AdapterPayload } from 'oidc-provider';
import type { Logger } from '../observability/logger.js';
import { introspectionDuration, introspections } from '../observability/metrics.js';
import { requestContext } from '../shared/request-context.js';
import { epochSeconds } from '../tokens/token-keys.js';
import type { FoundToken } from '../tokens/token-store.js';
import type { ClientWithSecrets } from '../clients/client.js';
import type { ClientSecretCheck } from './client-authentication.js';
import {
  completeActiveAnswer,
  introspectionAllowed,
  jwtIntrospectionAnswer,
  type IntrospectionAnswer,
  type TokenEndpointDependencies,
} from './introspection.js';
import { addEntitlementClaims } from './entitlements.js';
import { looksLikeJwt, type JwtAccessTokenVerifier } from './jwt-access-token.js';
import { asksForJwtIntrospection } from './jwt-introspection.js';
import { exchangeFactsOf } from './token-exchange-claims.js';

/** What the dedicated path consults: the provider's path's dependencies, and the one secret check. */
export interface DedicatedIntrospectionDependencies extends Omit<TokenEndpointDependencies, 'verifier'> {
  readonly issuer: string;
  readonly introspectionPath: string;
  readonly checkClientSecret: ClientSecretCheck;
  /** The verifier of the provider in force (it remembers verified tokens until the keys change). */
  readonly currentJwtVerifier: () => JwtAccessTokenVerifier;
  readonly logger: Logger;
}

/** The only form parameters handled here; any other (a client assertion, say) is left to the provider. */
const HANDLED_PARAMETERS = new Set(['token', 'token_type_hint', 'client_id', 'client_secret']);

/** The hints handled here (RFC 7662 and RFC 8693 names); they do not change the answer, see `findRecord`. */
const HANDLED_HINTS = new Set([
  'access_token',
  'refresh_token',
  'urn:ietf:params:oauth:token-type:access_token',
  'urn:ietf:params:oauth:token-type:refresh_token',
]);

/**
 * Stored token fields whose presence means an answer this path does not give: a proof-of-possession
 * binding (`cnf`), authorization details, another token format. (A token that expires with its session,
 * `expiresWithSession`, is looked for differently; see `handledPayload`.)
 */
const PROVIDER_ONLY_FIELDS = ['jkt', 'x5t#S256', 'attestationJkt', 'rar', 'nbf', 'format', 'jwt', 'jwt-ietf', 'paseto'];

/** The token models introspection finds a value in, in the provider's order (lib/helpers/token_find.js). */
const INTROSPECTABLE_MODELS = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;

/** A request this path handles, as far as its form and headers tell. */
export interface Candidate extends SecretCredentials {
  readonly token: string;
}

/** Not handled here: the provider answers. */
const LEAVE = undefined;

/** Picks the request this path handles from the form, the provider's way (see readProviderForm). */
function candidateOf(exchange: EarlyExchange, body: Buffer): Candidate | undefined {
  // The provider reads an empty parameter as an absent one.
  const form = readProviderForm(exchange, body, HANDLED_PARAMETERS, 'absent');
  if (!form) return LEAVE;
  const { token, token_type_hint: hint } = form;
  if (token === undefined || (hint !== undefined && !HANDLED_HINTS.has(hint))) return LEAVE;
  const credentials = secretCredentials(exchange, form);
  return credentials && { ...credentials, token };
}

const INTROSPECTION_ROUTE: ProviderRoute = { name: 'introspection', noStore: true };

const activeAnswers = introspections.labels({ active: 'true' });
const inactiveAnswers = introspections.labels({ active: 'false' });

/**
 * Whether a stored payload is one whose whole answer this path knows: written by the provider for an
 * opaque token of `model`, its times numbers, no binding or detail that would change the answer.
 */
function handledPayload(model: string, payload: AdapterPayload, id: string): boolean {
  return (
    payload.kind === model &&
    payload.jti === id &&
    typeof payload.iat === 'number' &&
    typeof payload.exp === 'number' &&
    typeof payload.clientId === 'string' &&
    (payload.aud === undefined || typeof payload.aud === 'string') &&
    (payload.extra === undefined || (typeof payload.extra === 'object' && payload.extra !== null && !Array.isArray(payload.extra))) &&
    PROVIDER_ONLY_FIELDS.every((field) => !(field in payload)) &&
    // The provider finds such a token only while the person's session lasts (a Session lookup).
    !payload.expiresWithSession
  );
}

/**
 * Builds the route of the dedicated path, answered by the early dispatch in front of the Koa
 * application; every request it leaves goes on to the provider.
 */
export function dedicatedIntrospection(deps: DedicatedIntrospectionDependencies): EarlyRoute {
  const grants = deps.tokenStore.adapter('Grant');
  const accessTokenModels = new Set(['AccessToken', 'ClientCredentials']);

  /**
   * The answer for an opaque token, as the provider's introspection action gives it, or `LEAVE` when
   * the token is one whose answer is left to the provider (a refresh token, a bound token...).
   */
  async function opaqueAnswer(callerClientId: string, token: string, found: FoundToken | undefined): Promise<IntrospectionAnswer | undefined> {
    if (!found) return { active: false };
    const { model, payload } = found;
    if (!accessTokenModels.has(model) || !handledPayload(model, payload, token)) return LEAVE;
    const now = epochSeconds();
    if (payload.exp! <= now) return { active: false };
    const clientId = payload.clientId!;
    if ('accountId' in payload && (typeof payload.accountId !== 'string' || payload.accountId === '')) return LEAVE;
    const accountId = payload.accountId;

    if (payload.grantId !== undefined) {
      if (typeof payload.grantId !== 'string') return LEAVE;
      const grant = await grants.find(payload.grantId);
      if (!grant) return { active: false };
      if (grant.kind !== 'Grant' || typeof grant.clientId !== 'string' || typeof grant.iat !== 'number' || typeof grant.exp !== 'number' || 'nbf' in grant) {
        return LEAVE;
      }
      // The provider finds a grant its client no longer allows as none (client-bound-adapter.ts).
      if (!(await deps.clients.allowsTokenIssuedAt(grant.clientId, grant.iat))) return { active: false };
      if (grant.exp <= now || grant.clientId !== clientId || grant.accountId !== payload.accountId) return { active: false };
    }

    // The provider finds a token its client no longer allows as none; introspectionAllowed asks too.
    const audiences = payload.aud === undefined ? [] : [payload.aud as string];
    const exchange = exchangeFactsOf(payload.extra);
    // Awaited only when it is a promise: awaiting a boolean would make one (see introspectionAllowed).
    const allowed = introspectionAllowed(deps, callerClientId, { clientId, audiences, issuedAt: payload.iat!, accountId, exchange, scope: payload.scope });
    if (!(typeof allowed === 'boolean' ? allowed : await allowed)) return { active: false };
    // Built in the provider's order, so the JSON is the provider's byte for byte.
    const body: IntrospectionAnswer = { active: false };
    if (accountId !== undefined) body.sub = accountId;
    Object.assign(body, {
      ...payload.extra,
      active: true,
      client_id: clientId,
      exp: payload.exp,
      iat: payload.iat,
      sid: payload.sid,
      iss: deps.issuer,
      jti: undefined,
      aud: payload.aud,
      authorization_details: undefined,
      scope: payload.scope || undefined,
      cnf: undefined,
      token_type: 'Bearer',
    });
    completeActiveAnswer(body, token, false);
    const entitlementClaims = addEntitlementClaims(deps, deps.issuer, body);
    if (entitlementClaims) await entitlementClaims;
    return body;
  }

  /** The answer for a JWT, or `LEAVE` for a token bound to a key (its `cnf` is the provider's to answer). */
  async function jwtAnswer(callerClientId: string, token: string): Promise<IntrospectionAnswer | undefined> {
    const claims = await deps.currentJwtVerifier().verify(token);
    if (claims !== undefined && 'cnf' in claims) return LEAVE;
    return jwtIntrospectionAnswer(deps, callerClientId, claims);
  }

  return dedicatedPath('introspection', deps.introspectionPath, answer);

  /** Answers the request; or leaves it untouched (but for a body read ahead) and resolves `false`. */
  async function answer(exchange: EarlyExchange): Promise<boolean> {
    const started = performance.now();
    const candidate = await readCandidate(exchange);
    if (!candidate) return false;
    // A resource server that gets signed answers by default (RFC 9701) is answered on the provider's path.
    const found = secretClient(deps, candidate);
    const client = found instanceof Promise ? await found : found;
    if (!client || deps.resourceServers.byIntrospectionClientId(candidate.clientId)?.introspectionResponse === 'jwt') {
      return false;
    }
    const context = requestContext.getStore();
    // Named as the provider names it once it has found the client (traces and logs carry it).
    if (context) context.clientId = candidate.clientId;
    let introspected: IntrospectionAnswer | undefined;
    try {
      if (looksLikeJwt(candidate.token)) {
        if (!(await authenticate(exchange, deps, candidate, INTROSPECTION_ROUTE))) return true;
        introspected = await jwtAnswer(candidate.clientId, candidate.token);
      } else {
        // A right secret's record is read in the step that checks the caller's lockout: one round trip
        // (one command on a standalone Redis). One lookup for every model: token values are 256 random
        // bits, so no value is stored under two models and the order of the provider's search (by hint)
        // cannot matter.
        const found = await authenticateThen(exchange, deps, candidate, INTROSPECTION_ROUTE, (guard) =>
          deps.tokenStore.findIntrospectable(INTROSPECTABLE_MODELS, candidate.token, guard),
        );
        if (!found) return true;
        introspected = await opaqueAnswer(candidate.clientId, candidate.token, found.value);
      }
    } catch (error) {
      answerFailure(exchange, deps.logger, error, INTROSPECTION_ROUTE);
      return true;
    }
    // A token whose answer is the provider's: it authenticates the caller again (a right secret counts
    // no failure) and answers.
    if (introspected === LEAVE) return false;
    respond(exchange, { status: 200, body: introspected }, INTROSPECTION_ROUTE);
    (introspected.active ? activeAnswers : inactiveAnswers).inc();
    introspectionDuration.observe((performance.now() - started) / 1000);
    return true;
  }
}

/**
 * The form of a request a dedicated path may handle, read ahead (and kept on the request for the
 * provider), or `undefined` for one left to the provider as it came.
 */
export function readCandidate(exchange: EarlyExchange): Promise<Candidate | undefined> {
  // RFC 9701 answers are signed on the provider's path (jwt-introspection.ts).
  if (asksForJwtIntrospection(exchange.req.headers.accept)) return Promise.resolve(LEAVE);
  return readFormAhead(exchange).then((body) => (body && candidateOf(exchange, body)) || LEAVE);
}

/**
 * Whether the candidate's client is one a dedicated path authenticates: registered, enabled, with the
 * method `client_secret_basic` or `client_secret_post`. Unknown clients and other methods get the
 * provider's errors (which count no failure); a failed lookup is the provider's to fail again (its
 * answer to a store failure is a 503 as well).
 */
export function secretClient(
  deps: Pick<DedicatedIntrospectionDependencies, 'clients'>,
  candidate: Candidate,
): ClientWithSecrets | undefined | Promise<ClientWithSecrets | undefined> {
  // At once when the cache holds the client fresh: no promise on the hot paths (see ClientRegistry#lookup).
  let client: ClientWithSecrets | undefined | Promise<ClientWithSecrets | undefined>;
  try {
    client = deps.clients.lookupActive(candidate.clientId);
  } catch {
    return undefined;
  }
  return client instanceof Promise ? client.then(withSecretMethod, () => undefined) : withSecretMethod(client);
}

function withSecretMethod(client: ClientWithSecrets | undefined): ClientWithSecrets | undefined {
  const method = client?.metadata.token_endpoint_auth_method;
  return method === 'client_secret_basic' || method === 'client_secret_post' ? client : undefined;
}
