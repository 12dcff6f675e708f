/**
 * Client authentication with secrets: the server keeps only SHA-256 digests of client secrets, so the
 * comparison oidc-provider would make against a plaintext is replaced by one against the digests (in
 * the client registry, constant time), and failed attempts are counted toward a lockout.
 */
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { FailureCounter } from '../limits/failure-counter.js';
import { requestContext } from '../shared/request-context.js';

/** Answered when a client has failed authentication too often from one address. */
export class TooManyFailedAttempts extends errors.OIDCProviderError {
  constructor(retryAfterSeconds: number) {
    super(429, 'too_many_requests');
    this.error_description = 'too many failed client authentication attempts; retry later';
    const context = requestContext.getStore();
    if (context) context.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Routes `provider`'s client secret comparison to the stored digests, through the maintainers'
 * suggested extension point (node-oidc-provider#631). Failed attempts are counted per client and
 * address in `failures`; successes cost nothing extra. Once over the limit the caller gets 429, and
 * this instance refuses even a right secret until the block ends.
 */
export function checkClientSecretsAgainstDigests(provider: Provider, clients: ClientRegistry, failures: FailureCounter): void {
  const blockedUntil = new Map<string, number>();
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    const key = `client-auth:${this.clientId}:${requestContext.getStore()?.ip ?? ''}`;
    const until = blockedUntil.get(key);
    if (until !== undefined) {
      if (until > Date.now()) throw new TooManyFailedAttempts(Math.ceil((until - Date.now()) / 1000));
      blockedUntil.delete(key);
    }
    if (await clients.verifySecret(this.clientId, actual)) return true;
    const retryAfter = await failures.recordFailure(key);
    if (retryAfter > 0) {
      if (blockedUntil.size > 10_000) blockedUntil.clear();
      blockedUntil.set(key, Date.now() + retryAfter * 1000);
      throw new TooManyFailedAttempts(retryAfter);
    }
    return false;
  } as unknown as (actual: string) => boolean;
}
