/**
 * Token exchange (RFC 8693) as an oidc-provider grant (`provider.registerGrantType`): a client that
 * holds an access token of this server (the subject token, for instance the one a caller sent its
 * API) gets a new access token for another API, for the same subject, with no more scope, naming
 * itself in `act`. What a client may exchange is its `token_exchange` allowance (admin API); nothing
 * is exchangeable without one. The subject token is checked as introspection checks it; the new token
 * goes through the token policy like any other, and dies with the subject's grant, client or account
 * (token-exchange-claims.ts). docs/grants.md ("Token exchange") is the user's view.
 */
import type Provider from 'oidc-provider';
import { errors, type AccessToken, type ClientCredentials, type KoaContextWithOIDC } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { TokenExchangeAllowance } from '../clients/client.js';
import { sha256Base64Url } from '../shared/secrets.js';
import { GRANT_DIGEST_CLAIM, introspectionAllowed, jwtIntrospectionAnswer, type TokenEndpointDependencies } from './introspection.js';
import { looksLikeJwt, type JwtAccessTokenVerifier } from './jwt-access-token.js';
import { resolveResourceServer, type ResourceServerInfoDependencies } from './resource-server-info.js';
import { actorChainOf, exchangeFactsOf, MAX_ACTOR_CHAIN, SUBJECT_CLIENT_CLAIM, TOKEN_EXCHANGE_GRANT, type ActorClaim } from './token-exchange-claims.js';

/** RFC 8693 section 3 token type identifiers handled here. */
export const TOKEN_TYPES = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

/** The parameters of the grant (section 2.1); `resource` and `audience` may repeat (and are refused when they name two audiences). */
const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'resource', 'audience', 'scope', 'requested_token_type'] as const;

/** What the exchange consults. */
export interface TokenExchangeDependencies extends ResourceServerInfoDependencies, Omit<TokenEndpointDependencies, 'verifier'> {
  readonly clients: ClientRegistry;
  /** The verifier of the provider this grant is installed on (the same as its introspection's). */
  readonly verifier: JwtAccessTokenVerifier;
}

/** A subject (or actor) token found alive, as the exchange reads it. */
interface LiveToken {
  readonly clientId: string;
  /** The token's `sub`: an account id, or a client id for a client's own token. */
  readonly sub: string;
  readonly scopes: readonly string[];
  readonly audiences: readonly string[];
  /** The client of the subject's first token (itself, unless it was exchanged already). */
  readonly subjectClientId: string;
  readonly grantDigest: string | undefined;
  readonly act: ActorClaim | undefined;
  readonly mayAct: Readonly<Record<string, unknown>> | undefined;
}

/** The claims each token being issued by an exchange gets, read by the provider's `extraTokenClaims` (provider.ts). */
const claimsOfTokenInIssue = new WeakMap<object, Record<string, unknown>>();

/** The extra claims of `token` when it is being issued by token exchange; `undefined` for any other token. */
export function exchangeClaimsOf(token: object): Record<string, unknown> | undefined {
  return claimsOfTokenInIssue.get(token);
}

const single = (value: unknown, name: string): string | undefined => {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new errors.InvalidRequest(`${name} must be given once`);
  return value;
};

const asList = (value: unknown): string[] => (value === undefined ? [] : ([] as unknown[]).concat(value).filter((v): v is string => typeof v === 'string'));

/**
 * The token `value` of type `type` when it is an access token of this server that introspection would
 * call active for its own client; `undefined` otherwise. Bound (DPoP) tokens are refused: the
 * exchanging client cannot prove their key.
 */
async function liveToken(ctx: KoaContextWithOIDC, deps: TokenExchangeDependencies, value: string, type: string): Promise<LiveToken | undefined> {
  if (type !== TOKEN_TYPES.accessToken && type !== TOKEN_TYPES.jwt) return undefined;
  if (looksLikeJwt(value)) {
    const claims = await deps.verifier.verify(value);
    if (!claims || 'cnf' in claims || typeof claims.sub !== 'string') return undefined;
    if (!(await jwtIntrospectionAnswer(deps, claims.client_id, claims)).active) return undefined;
    const facts = exchangeFactsOf(claims);
    return {
      clientId: claims.client_id,
      sub: claims.sub,
      scopes: typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [],
      audiences: ([] as string[]).concat(claims.aud ?? []),
      subjectClientId: facts?.subjectClientId ?? claims.client_id,
      grantDigest: typeof claims[GRANT_DIGEST_CLAIM] === 'string' ? claims[GRANT_DIGEST_CLAIM] : undefined,
      act: claims.act as ActorClaim | undefined,
      mayAct: typeof claims.may_act === 'object' && claims.may_act !== null ? (claims.may_act as Record<string, unknown>) : undefined,
    };
  }
  if (type !== TOKEN_TYPES.accessToken) return undefined;
  const { provider } = ctx.oidc;
  // Looked up as introspection does (lib/actions/introspection.js of oidc-provider): the model, then its grant.
  const token: AccessToken | ClientCredentials | undefined = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token?.isValid || token.clientId === undefined || token.isSenderConstrained()) return undefined;
  const accountId = token.kind === 'AccessToken' ? token.accountId : undefined;
  const grantId = token.kind === 'AccessToken' ? token.grantId : undefined;
  if (grantId) {
    const grant = await provider.Grant.find(grantId, { ignoreExpiration: true });
    if (!grant || grant.isExpired || grant.clientId !== token.clientId || grant.accountId !== accountId) return undefined;
  }
  const extra = token.extra;
  const facts = exchangeFactsOf(extra);
  const audiences = ([] as string[]).concat(token.aud ?? []);
  if (!(await introspectionAllowed(deps, token.clientId, { clientId: token.clientId, audiences, issuedAt: token.iat, accountId, exchange: facts }))) {
    return undefined;
  }
  return {
    clientId: token.clientId,
    sub: accountId ?? token.clientId,
    scopes: token.scope?.split(' ').filter(Boolean) ?? [],
    audiences,
    subjectClientId: facts?.subjectClientId ?? token.clientId,
    grantDigest: facts?.grantDigest ?? (grantId ? sha256Base64Url(grantId) : undefined),
    act: extra?.act as ActorClaim | undefined,
    mayAct: typeof extra?.may_act === 'object' && extra.may_act !== null ? (extra.may_act as Record<string, unknown>) : undefined,
  };
}

/** Whether `allowance` lets its client exchange `subject`: its client, or one of its audiences, is listed. */
const covers = (allowance: TokenExchangeAllowance, subject: LiveToken): boolean =>
  allowance.subject_client_ids.includes(subject.clientId) || subject.audiences.some((audience) => allowance.subject_audiences.includes(audience));

/** Whether the subject's `may_act` (RFC 8693 section 4.4), when it has one, names `clientId`. */
const mayActAs = (mayAct: Readonly<Record<string, unknown>> | undefined, clientId: string): boolean =>
  mayAct === undefined || mayAct.sub === clientId || mayAct.client_id === clientId;

/** The grant's handler: checks the request, the subject token and the allowance, then issues the token. */
async function exchangeToken(ctx: KoaContextWithOIDC, deps: TokenExchangeDependencies): Promise<void> {
  // The exchanged token would not be bound to the proof's key: refused, rather than handing a bearer
  // token to a client that asked for a bound one.
  if (ctx.get('dpop') !== '') throw new errors.InvalidRequest('token exchange issues no DPoP-bound token: send the request without a DPoP proof');
  const params = ctx.oidc.params!;
  const clientId = ctx.oidc.client!.clientId;
  const subjectToken = single(params.subject_token, 'subject_token');
  const subjectTokenType = single(params.subject_token_type, 'subject_token_type');
  if (!subjectToken || !subjectTokenType) throw new errors.InvalidRequest('subject_token and subject_token_type are required');
  const requestedType = single(params.requested_token_type, 'requested_token_type');
  if (requestedType !== undefined && requestedType !== TOKEN_TYPES.accessToken) {
    throw new errors.InvalidRequest(`requested_token_type must be ${TOKEN_TYPES.accessToken}: the token policy decides its format`);
  }
  const actorToken = single(params.actor_token, 'actor_token');
  const actorTokenType = single(params.actor_token_type, 'actor_token_type');
  if ((actorToken === undefined) !== (actorTokenType === undefined)) throw new errors.InvalidRequest('actor_token and actor_token_type go together');

  const subject = await liveToken(ctx, deps, subjectToken, subjectTokenType);
  if (!subject) throw new errors.InvalidRequest('subject_token is not an active access token of this server of the type given');
  if (actorToken !== undefined) {
    // The actor is the exchanging client itself: `act` names it, so its own token is the only proof accepted.
    const actor = await liveToken(ctx, deps, actorToken, actorTokenType!);
    if (!actor || actor.sub !== clientId || actor.clientId !== clientId) {
      throw new errors.InvalidRequest("actor_token must be an active access token of the exchanging client's own (client credentials)");
    }
  }
  const previousActors = actorChainOf(subject.act);
  if (previousActors === undefined || previousActors.length >= MAX_ACTOR_CHAIN - 1) {
    throw new errors.InvalidRequest(`subject_token comes from too long a chain of exchanges (at most ${MAX_ACTOR_CHAIN})`);
  }

  const registered = await deps.clients.lookupActive(clientId);
  const allowance = registered?.metadata.token_exchange;
  if (!registered || !allowance) throw new errors.UnauthorizedClient('this client may not exchange tokens');
  if (!covers(allowance, subject))
    throw new errors.UnauthorizedClient("this client may not exchange this subject token (its client or audience is not in the client's token_exchange)");
  if (!mayActAs(subject.mayAct, clientId)) throw new errors.AccessDenied("the subject token's may_act names another party");

  const targets = [...new Set([...asList(params.resource), ...asList(params.audience)])];
  if (targets.length > 1) throw new errors.InvalidTarget('only one audience (resource or audience) may be asked for per exchange');
  const target = targets[0] ?? allowance.audiences[0];
  if (!allowance.audiences.includes(target)) throw new errors.InvalidTarget(`this client may not exchange tokens for ${target}`);
  await deps.resourceServers.settled();
  const rs = deps.resourceServers.byIdentifier(target);
  if (!rs) throw new errors.InvalidTarget(`resource ${target} is unknown`);

  // Never wider than the subject token's scopes, nor than the client's (resolveResourceServer refuses those).
  const subjectScopes = new Set(subject.scopes);
  const offered = new Set(rs.scopes);
  let scopes: string[];
  if (typeof params.scope === 'string' && params.scope !== '') {
    const requested = params.scope.split(' ').filter(Boolean);
    const wider = requested.find((scope) => !subjectScopes.has(scope));
    if (wider !== undefined) throw new errors.InvalidScope("requested scope exceeds the subject token's", wider);
    scopes = requested.filter((scope) => offered.has(scope));
  } else {
    const clientScopes = new Set(registered.metadata.scope.split(' '));
    scopes = subject.scopes.filter((scope) => offered.has(scope) && clientScopes.has(scope));
  }
  if (scopes.length === 0)
    throw new errors.InvalidScope(`no scope of the subject token is offered by ${target} to this client`, typeof params.scope === 'string' ? params.scope : '');
  // A person's subject token is exchanged for no more than the person is entitled to at the target
  // (docs/groups-and-entitlements.md): an exchange is never a way around entitlements.
  const person = subject.sub === subject.subjectClientId ? undefined : subject.sub;
  const { decision: _decision, ...info } = await resolveResourceServer(deps, clientId, target, scopes, person);
  const entitled = new Set(info.scope.split(' '));
  scopes = scopes.filter((scope) => entitled.has(scope));

  const { provider } = ctx.oidc;
  const token = new provider.AccessToken({
    client: ctx.oidc.client!,
    accountId: subject.sub,
    gty: TOKEN_EXCHANGE_GRANT,
    scope: scopes.join(' '),
    resourceServer: new provider.ResourceServer(info.audience, info),
  } as ConstructorParameters<Provider['AccessToken']>[0]);
  const act: ActorClaim = { sub: clientId, client_id: clientId, ...(subject.act ? { act: subject.act } : {}) };
  claimsOfTokenInIssue.set(token, {
    act,
    ...(allowance.may_act_client_id ? { may_act: { sub: allowance.may_act_client_id, client_id: allowance.may_act_client_id } } : {}),
    [SUBJECT_CLIENT_CLAIM]: subject.subjectClientId,
    ...(subject.grantDigest !== undefined ? { [GRANT_DIGEST_CLAIM]: subject.grantDigest } : {}),
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: TOKEN_TYPES.accessToken,
    token_type: token.tokenType,
    expires_in: token.expiration,
    scope: token.scope,
  };
}

/**
 * Registers the token exchange grant on `provider` (discovery then lists it in
 * `grant_types_supported`) and names a client without the grant as RFC 6749 section 5.2 does.
 */
export function installTokenExchange(provider: Provider, deps: TokenExchangeDependencies): void {
  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, (ctx) => exchangeToken(ctx, deps), PARAMETERS, ['resource', 'audience']);
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = ctx as KoaContextWithOIDC;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    // The engine calls a client without the grant an invalid_request; RFC 6749 section 5.2 has the precise word.
    if (
      oidcCtx.oidc?.route === 'token' &&
      oidcCtx.oidc.params?.grant_type === TOKEN_EXCHANGE_GRANT &&
      body?.error === 'invalid_request' &&
      body.error_description === 'requested grant type is not allowed for this client'
    ) {
      body.error = 'unauthorized_client';
    }
  });
}
