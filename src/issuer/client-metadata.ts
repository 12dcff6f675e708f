/**
 * Client metadata is validated by oidc-provider itself before it is stored, so nothing an admin saves
 * can fail when the provider reads it at request time.
 */
import type Provider from 'oidc-provider';
import { OPENID_SCOPES, type ClientMetadata } from '../clients/client.js';
import type { ProviderMetadataValidator } from '../clients/client-service.js';
import { InvalidInputError } from '../shared/errors.js';

const usesSecret = (metadata: ClientMetadata) => metadata.token_endpoint_auth_method.startsWith('client_secret');

/** A validator that checks client metadata with the provider in force (`currentProvider`). */
export function providerMetadataValidator(currentProvider: () => Provider): ProviderMetadataValidator {
  return async (clientId, metadata) => {
    const { resources: _resources, scope, ...rfc7591 } = metadata;
    // Validated as the adapter will serve it: with only the OpenID scopes (see client-registry.ts).
    const openidScope = scope
      .split(' ')
      .filter((s) => (OPENID_SCOPES as readonly string[]).includes(s))
      .join(' ');
    const probe = usesSecret(metadata) ? { client_secret: 'x'.repeat(43) } : {};
    try {
      await (currentProvider().Client as unknown as { validate(m: unknown): Promise<unknown> }).validate({
        client_id: clientId,
        ...rfc7591,
        ...(openidScope ? { scope: openidScope } : {}),
        ...probe,
      });
    } catch (error) {
      const description = (error as { error_description?: string }).error_description ?? 'invalid client metadata';
      throw new InvalidInputError('(body)', description);
    }
  };
}
