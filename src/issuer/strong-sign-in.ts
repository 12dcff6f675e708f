/**
 * Strong sign-in at the edges of oidc-provider (docs/strong-sign-in.md), the policy itself being the
 * pure functions of authentication-policy.ts:
 * - what an authorization request requires of the sign-in (its `acr_values`, an essential `acr`
 *   claim, the resource server its token is for, the account), read the same way by the provider's
 *   login prompt and by the sign-in pages;
 * - a login prompt check that asks the person to step up (or sign in again) when the session is
 *   weaker or older than required, instead of the provider's exact-match `acr` checks;
 * - the refusal of a request for levels this server does not have;
 * - at the token endpoint, the refusal of a code exchange or refresh whose sign-in is weaker than the
 *   resource server it names requires (the grant may hold several);
 * - `acr`, `amr` and `auth_time` of the sign-in in every access token of a person (JWT claims, and
 *   the extra fields of an opaque token that both introspection paths answer with).
 */
import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { AccountRegistry } from '../accounts/account-registry.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { epochSeconds } from '../tokens/token-keys.js';
import {
  acrFromValues,
  acrMeets,
  authenticationShortfall,
  requiredAuthentication,
  type AuthenticationRequirement,
  type AuthenticationShortfall,
} from './authentication-policy.js';
import { defaultResourceOf } from './resource-server-info.js';

/** What the requirement of a request is read from. */
export interface StrongSignInDependencies {
  readonly clients: ClientRegistry;
  readonly accounts: AccountRegistry;
  readonly resourceServers: ResourceServerRegistry;
}

/** The login prompt reason under which a session too weak or too old is sent to the pages. */
export const STEP_UP_REASON = 'acr_step_up';

/** The `claims` parameter, parsed (`undefined` when absent or not JSON: the provider refuses that itself). */
function parsedClaims(claims: unknown): Record<string, unknown> | undefined {
  if (typeof claims === 'object' && claims !== null) return claims as Record<string, unknown>;
  if (typeof claims !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(claims);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The values of an essential `acr` claim (of the ID token or userinfo), or `undefined` when none is essential. */
export function essentialAcrValues(claims: unknown): string[] | undefined {
  const parsed = parsedClaims(claims);
  if (!parsed) return undefined;
  const values: string[] = [];
  let essential = false;
  for (const target of ['id_token', 'userinfo']) {
    const requested = parsed[target];
    const acr = requested && typeof requested === 'object' ? (requested as Record<string, unknown>).acr : undefined;
    if (!acr || typeof acr !== 'object' || (acr as { essential?: unknown }).essential !== true) continue;
    essential = true;
    const { value, values: list } = acr as { value?: unknown; values?: unknown };
    if (typeof value === 'string') values.push(value);
    if (Array.isArray(list)) values.push(...list.filter((v): v is string => typeof v === 'string'));
  }
  return essential ? values : undefined;
}

/** The authorization request parameters the requirement depends on (as the provider or an interaction holds them). */
export type RequestParameters = Readonly<Record<string, unknown>>;

const words = (value: unknown): string[] => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);

/**
 * What the request with these parameters requires of a sign-in by `accountId` (absent: before anyone
 * is known, so the account's own flag is left out).
 */
export async function requirementOf(deps: StrongSignInDependencies, params: RequestParameters, accountId?: string): Promise<AuthenticationRequirement> {
  const clientId = typeof params.client_id === 'string' ? params.client_id : undefined;
  const asked = typeof params.resource === 'string' ? params.resource : clientId ? await defaultResourceOf(deps.clients, clientId) : undefined;
  const reloading = deps.resourceServers.settled();
  if (reloading) await reloading;
  const resourceServer = asked === undefined ? undefined : deps.resourceServers.byIdentifier(asked);
  const account = accountId === undefined ? undefined : await deps.accounts.getActive(accountId);
  return requiredAuthentication({
    requested: { acrValues: words(params.acr_values), essentialAcr: essentialAcrValues(params.claims) },
    resourceServer,
    scopes: words(params.scope),
    accountMfaRequired: account?.mfaRequired ?? false,
  });
}

/**
 * Called for each resource a token endpoint request is answered for (the provider's
 * `getResourceServerInfo`). A code exchange or a refresh may name any resource its grant holds, not
 * only the one the authorization request's requirement was read from ({@link requirementOf} reads one),
 * so the sign-in behind it (the code's or refresh token's `acr`) must meet that resource server's level
 * for the scopes asked, or the grant is refused (`invalid_grant`): the client signs the person in again
 * with `acr_values`. Levels only: the age of the sign-in is checked when the person signs in.
 */
export function assertSignInMeetsResource(
  deps: Pick<StrongSignInDependencies, 'resourceServers'>,
  ctx: KoaContextWithOIDC,
  resourceIndicator: string,
  scopes: readonly string[],
): void {
  if (ctx.oidc.route !== 'token') return;
  const grantType = ctx.oidc.params?.grant_type;
  if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
  const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
  if (!source?.accountId) return;
  const resourceServer = deps.resourceServers.byIdentifier(resourceIndicator);
  if (!resourceServer) return;
  const { acr } = requiredAuthentication({ resourceServer, scopes });
  if (acr !== undefined && !acrMeets(source.acr, acr)) {
    const reason = `the sign-in behind this grant is weaker than ${resourceIndicator} requires (${acr}); sign in again with acr_values=${acr}`;
    // The engine's invalid_grant describes itself generically; the client is told what to do instead.
    throw Object.assign(new errors.InvalidGrant(reason), { error_description: reason });
  }
}

/** What the step-up check leaves in the interaction's prompt details for the pages. */
export interface StepUpDetails {
  readonly shortfall: AuthenticationShortfall;
  readonly acr?: string | undefined;
}

/**
 * The interaction policy: the provider's, with its login prompt's exact-match `acr` checks replaced
 * by one that compares levels (a stronger sign-in meets a weaker requirement) and adds the resource
 * server's and the account's requirements.
 */
export function strongSignInPolicy(deps: StrongSignInDependencies): interactionPolicy.Prompt[] {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  login.checks.remove('essential_acrs');
  login.checks.remove('essential_acr');
  const shortfallOf = async (ctx: KoaContextWithOIDC): Promise<{ shortfall: AuthenticationShortfall; requirement: AuthenticationRequirement }> => {
    const { session, params } = ctx.oidc;
    const requirement = await requirementOf(deps, params ?? {}, session?.accountId);
    const shortfall = session?.accountId ? authenticationShortfall({ acr: session.acr, authTime: session.authTime() }, requirement, epochSeconds()) : 'none';
    return { shortfall, requirement };
  };
  login.checks.add(
    new interactionPolicy.Check(
      STEP_UP_REASON,
      'the sign-in is weaker or older than this request requires',
      async (ctx) => (await shortfallOf(ctx)).shortfall !== 'none',
      async (ctx) => {
        const { shortfall, requirement } = await shortfallOf(ctx);
        return { shortfall, acr: requirement.acr } satisfies StepUpDetails;
      },
    ),
  );
  return [...policy];
}

/**
 * The engine's `extraParams` validator of `acr_values`: a request for levels of which this server
 * knows none is refused (`unmet_authentication_requirements`), never answered with less; so is an
 * essential `acr` claim naming none. Known levels are honoured by the step-up check.
 */
export const acrValuesValidator = async (ctx: KoaContextWithOIDC, value: string | undefined): Promise<void> => {
  const body = (ctx.oidc as unknown as { body?: Record<string, unknown> }).body;
  const claims = ctx.method === 'POST' ? body?.claims : ctx.query.claims;
  const asked = words(value);
  if (asked.length > 0 && acrFromValues(asked) === undefined) {
    throw new errors.UnmetAuthenticationRequirements(`none of the requested acr_values is offered here (see acr_values_supported)`);
  }
  const essential = essentialAcrValues(claims);
  if (essential !== undefined && acrFromValues(essential) === undefined) {
    throw new errors.UnmetAuthenticationRequirements('the essential acr claim names no level offered here (see acr_values_supported)');
  }
};

/**
 * The sign-in facts an access token of a person carries (RFC 9068 section 2.2.1): its `acr`, `amr`
 * and `auth_time`, from the code, refresh token or device code it is issued for. `undefined` for a
 * client's own token.
 */
export function authenticationClaims(ctx: KoaContextWithOIDC | undefined, token: { accountId?: unknown }): Record<string, unknown> | undefined {
  // Tokens saved outside a provider request (userinfo-for-api-tokens.ts) have no context to read.
  const entities = ctx?.oidc?.entities;
  if (typeof token.accountId !== 'string' || !entities) return undefined;
  const { AuthorizationCode, RefreshToken, DeviceCode } = entities;
  const source = AuthorizationCode ?? RefreshToken ?? DeviceCode;
  if (!source) return undefined;
  return {
    ...(source.acr ? { acr: source.acr } : {}),
    ...(source.amr?.length ? { amr: source.amr } : {}),
    ...(typeof source.authTime === 'number' ? { auth_time: source.authTime } : {}),
  };
}
