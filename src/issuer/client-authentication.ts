/**
 * Client authentication with secrets: the server keeps only SHA-256 digests of client secrets, so the
 * comparison oidc-provider would make against a plaintext is replaced by one against the digests (in
 * the client registry, constant time), and failed attempts are counted toward a lockout.
 */
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { isPossibleClientId } from '../clients/client.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import type { FailureCounter } from '../limits/failure-counter.js';
import { requestContext } from '../shared/request-context.js';

/**
 * Client authentication: 20 failures per client and address within a minute (from the first) are
 * allowed; the next attempt, right or wrong, answers 429 until the minute is over.
 */
export const CLIENT_AUTH_FAILURES = { maxFailures: 20, windowSeconds: 60 } as const;

/** Answered when a client has failed authentication too often from one address. */
export class TooManyFailedAttempts extends errors.OIDCProviderError {
  constructor(retryAfterSeconds: number) {
    super(429, 'too_many_requests');
    this.error_description = 'too many failed client authentication attempts; retry later';
    const context = requestContext.getStore();
    if (context) context.retryAfterSeconds = retryAfterSeconds;
  }
}

/** What checking a client secret consults. */
export interface ClientSecretCheckDependencies {
  readonly clients: ClientRegistry;
  /** Failed client authentications, per client and address. */
  readonly failures: FailureCounter;
}

/**
 * Checks a client's secret against the stored digests, counting failures per client and address.
 * The one check every path that authenticates clients with a secret goes through (the provider's, and
 * any dedicated path in front of it), so that lockout is the same everywhere.
 * @returns whether the secret is right.
 * @throws TooManyFailedAttempts once the client has failed too often from `address` (then even for
 *   the right secret).
 */
export type ClientSecretCheck = (clientId: string, secret: string, address: string) => Promise<boolean>;

/**
 * Makes the client secret check (see `ClientSecretCheck`).
 *
 * The comparison is local and cheap (SHA-256, constant time), so the secret is compared first and
 * its outcome is then decided and counted in one atomic step of the shared counter: refused when the
 * limit is already reached (whatever the secret), else counted when wrong. Parallel wrong secrets
 * therefore get exactly `maxFailures` 401s, the rest 429, and a right secret after them 429 on every
 * instance. Nothing is learned from a comparison made past the limit: its answer is 429 either way.
 * (Counting up front and taking the count back on success, as sign-in does before its argon2 check,
 * would make a busy client's concurrent requests look like failures and lock it out.)
 */
export function clientSecretCheck(deps: ClientSecretCheckDependencies): ClientSecretCheck {
  // A blocked caller is refused here without asking the shared store again until the block ends.
  const blockedUntil = new Map<string, number>();
  const block = (key: string, retryAfter: number): never => {
    if (blockedUntil.size > 10_000) blockedUntil.clear();
    blockedUntil.set(key, Date.now() + retryAfter * 1000);
    throw new TooManyFailedAttempts(retryAfter);
  };
  return async (clientId, secret, address) => {
    // An id no client can have is never right; nothing to count (and nothing to store per made-up id).
    if (!isPossibleClientId(clientId)) return false;
    const key = `client-auth:${clientId}:${address}`;
    const until = blockedUntil.get(key);
    if (until !== undefined) {
      if (until > Date.now()) throw new TooManyFailedAttempts(Math.ceil((until - Date.now()) / 1000));
      blockedUntil.delete(key);
    }
    // Awaited only when the client had to be read: awaiting a boolean would make a promise.
    const verified = deps.clients.verifySecret(clientId, secret);
    const right = typeof verified === 'boolean' ? verified : await verified;
    // A store failure here throws: the attempt is refused (503), never let through uncounted.
    const retryAfter = await deps.failures.admit(key, !right);
    if (retryAfter > 0) return block(key, retryAfter);
    return right;
  };
}

/**
 * Routes `provider`'s client secret comparison to `check`, through the maintainers' suggested
 * extension point (node-oidc-provider#631): the provider's own comparison would need the plaintext,
 * which we never keep.
 */
export function checkClientSecretsWith(provider: Provider, check: ClientSecretCheck): void {
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    return check(this.clientId, actual, requestContext.getStore()?.ip ?? '');
  };
}
