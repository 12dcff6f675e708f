/**
 * Saying no clearly to what this server cannot do, instead of ignoring it (the engine ignores both):
 * - an authentication context class (`acr_values`, or `acr` asked for in the `claims` parameter):
 *   every sign-in here is one password, with no levels to choose from, until strong sign-in gives
 *   `acr` a meaning; the answer is OpenID Connect's `unmet_authentication_requirements`;
 * - RFC 9396 `authorization_details`: not supported; the answer is its `invalid_authorization_details`.
 * Both are engine `extraParams` validators, so they apply to the authorization endpoint, pushed
 * authorization requests and device authorization alike, after the redirect URI is checked (errors
 * go back to the client as RFC 6749 errors).
 */
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

/** The raw `claims` parameter: the engine does not parse it (the claims parameter is not supported). */
function rawClaimsParameter(ctx: KoaContextWithOIDC): unknown {
  const body = (ctx.oidc as unknown as { body?: Record<string, unknown> }).body;
  const raw = ctx.method === 'POST' ? body?.claims : ctx.query.claims;
  if (typeof raw !== 'string') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Whether a `claims` parameter asks for `acr` (a requirement on the sign-in, essential or not). */
function asksForAcr(claims: unknown): boolean {
  if (!claims || typeof claims !== 'object') return false;
  return ['id_token', 'userinfo'].some((target) => {
    const requested = (claims as Record<string, unknown>)[target];
    const acr = requested && typeof requested === 'object' ? (requested as Record<string, unknown>).acr : undefined;
    return (
      acr !== undefined && acr !== null && typeof acr === 'object' && ((acr as { essential?: unknown }).essential === true || 'value' in acr || 'values' in acr)
    );
  });
}

/** The engine's `extraParams`: validators that refuse what is not supported. */
export const refuseUnsupportedParameters: NonNullable<Configuration['extraParams']> = {
  acr_values: async (ctx, value) => {
    if ((value !== undefined && value.trim() !== '') || asksForAcr(rawClaimsParameter(ctx))) {
      throw new errors.UnmetAuthenticationRequirements('no authentication context class can be requested: sign-in has a single level');
    }
  },
  authorization_details: async (_ctx, value) => {
    if (value !== undefined) throw new errors.InvalidAuthorizationDetails('authorization_details (RFC 9396) is not supported');
  },
};
