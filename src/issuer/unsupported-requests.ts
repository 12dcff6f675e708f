/**
 * Saying no clearly to what this server cannot do, instead of ignoring it (the engine ignores both):
 * - an authentication context class it does not offer (`acr_values`, or an essential `acr` claim,
 *   naming none of `acr_values_supported`): OpenID Connect's `unmet_authentication_requirements`
 *   (strong-sign-in.ts; the levels it offers are honoured by stepping up, see docs/strong-sign-in.md);
 * - RFC 9396 `authorization_details`: not supported; the answer is its `invalid_authorization_details`.
 * Both are engine `extraParams` validators, so they apply to the authorization endpoint, pushed
 * authorization requests and device authorization alike, after the redirect URI is checked (errors
 * go back to the client as RFC 6749 errors).
 */
import { errors, type Configuration } from 'oidc-provider';
import { acrValuesValidator } from './strong-sign-in.js';

/** The engine's `extraParams`: validators that refuse what is not supported. */
export const refuseUnsupportedParameters: NonNullable<Configuration['extraParams']> = {
  acr_values: acrValuesValidator,
  authorization_details: async (_ctx, value) => {
    if (value !== undefined) throw new errors.InvalidAuthorizationDetails('authorization_details (RFC 9396) is not supported');
  },
};
