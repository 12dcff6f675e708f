/**
 * Client authentication with secrets: the server keeps only SHA-256 digests of client secrets, so the
 * comparison oidc-provider would make against a plaintext is replaced by one against the digests (in
 * the client registry, constant time), and failed attempts are counted toward a lockout.
 */
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { isPossibleClientId } from '../clients/client.js';
import type { ClientRegistry } from '../clients/client-registry.js';
import { LOCKED_OUT, type FailureCounter, type LockedOut, type LockoutGuard } from '../limits/failure-counter.js';
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
export interface ClientSecretCheck {
  (clientId: string, secret: string, address: string): Promise<boolean>;
  /**
   * The same check, for a caller whose next step is a store step able to check the lockout itself
   * (`step`, given the key's {@link LockoutGuard}): a right secret's failure count is then read in that
   * step, one round trip in all on a standalone Redis. Resolves `{ right: false }` for a wrong secret
   * (counted, as the check counts it), else `{ right: true }` with the step's result.
   * @throws TooManyFailedAttempts as the check does (the step did nothing then).
   */
  thenStep<T>(clientId: string, secret: string, address: string, step: (guard: LockoutGuard) => Promise<T | LockedOut>): Promise<CheckedStep<T>>;
}

/** What {@link ClientSecretCheck.thenStep} resolves: a wrong secret, or a right one and its step's result. */
export type CheckedStep<T> = { readonly right: false } | { readonly right: true; readonly value: T };

const WRONG_SECRET = { right: false } as const;

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
  /**
   * The check's local part: the counter's key and whether the secret is right, or `undefined` for an id
   * no client can have (never right; nothing to count, nor to store per made-up id).
   * @throws TooManyFailedAttempts while the key is blocked here.
   */
  const verify = (clientId: string, secret: string, address: string) => {
    if (!isPossibleClientId(clientId)) return undefined;
    const key = `client-auth:${clientId}:${address}`;
    const until = blockedUntil.get(key);
    if (until !== undefined) {
      if (until > Date.now()) throw new TooManyFailedAttempts(Math.ceil((until - Date.now()) / 1000));
      blockedUntil.delete(key);
    }
    return { key, right: deps.clients.verifySecret(clientId, secret) };
  };
  /** Admits the attempt (counting a wrong secret); a store failure throws: refused (503), never let through uncounted. */
  const admit = async (key: string, right: boolean): Promise<boolean> => {
    const retryAfter = await deps.failures.admit(key, !right);
    if (retryAfter > 0) return block(key, retryAfter);
    return right;
  };
  const check = async (clientId: string, secret: string, address: string): Promise<boolean> => {
    const verified = verify(clientId, secret, address);
    if (!verified) return false;
    // Awaited only when the client had to be read: awaiting a boolean would make a promise.
    const right = typeof verified.right === 'boolean' ? verified.right : await verified.right;
    return admit(verified.key, right);
  };
  const thenStep = async <T>(
    clientId: string,
    secret: string,
    address: string,
    step: (guard: LockoutGuard) => Promise<T | LockedOut>,
  ): Promise<CheckedStep<T>> => {
    const verified = verify(clientId, secret, address);
    if (!verified) return WRONG_SECRET;
    const right = typeof verified.right === 'boolean' ? verified.right : await verified.right;
    if (!right) return admit(verified.key, false).then(() => WRONG_SECRET);
    const value = await step(deps.failures.guard(verified.key));
    if (value !== LOCKED_OUT) return { right: true, value };
    // At the limit: the counter's own step answers the wait (and gives the key its expiry back if it lost it).
    await admit(verified.key, true);
    // The window ended between the two: the attempt goes on, its step checked once more.
    const again = await step(deps.failures.guard(verified.key));
    if (again === LOCKED_OUT) return block(verified.key, 1);
    return { right: true, value: again };
  };
  return Object.assign(check, { thenStep });
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
