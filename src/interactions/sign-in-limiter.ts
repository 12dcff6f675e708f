/**
 * Sign-in throttling. Two counters, both of failures only:
 * - per email (whether or not an account has it, so the limit reveals nothing): after
 *   {@link EMAIL_FAILURES}.maxFailures failures in a row, sign-in for that email pauses for the
 *   window, counted from the last failure; a success resets it;
 * - per client address: {@link ADDRESS_FAILURES}.maxFailures failures within the window pause that
 *   address until the window ends.
 * Attempts made while paused are not counted (the caller checks first), so hammering does not extend
 * the pause for the real person.
 */
import type { FailureCounter, FailurePolicy } from '../limits/failure-counter.js';
import { sha256Base64Url } from '../shared/secrets.js';

/** 10 failures in a row for one email pause it for 15 minutes after the last one. */
export const EMAIL_FAILURES: FailurePolicy = { maxFailures: 10, windowSeconds: 15 * 60, restartWindowOnFailure: true };
/** 50 failures from one address within 15 minutes pause it until the 15 minutes are over. */
export const ADDRESS_FAILURES: FailurePolicy = { maxFailures: 50, windowSeconds: 15 * 60 };

// Keys hold digests: neither an email nor an address is written to the store in clear.
const emailKey = (email: string) => sha256Base64Url(email.trim().toLowerCase());
const addressKey = (address: string) => sha256Base64Url(address);

/** Counts failed sign-ins and says when to pause. */
export class SignInLimiter {
  /**
   * @param byEmail - counts with {@link EMAIL_FAILURES}.
   * @param byAddress - counts with {@link ADDRESS_FAILURES}.
   */
  constructor(
    private readonly byEmail: FailureCounter,
    private readonly byAddress: FailureCounter,
  ) {}

  /** Seconds until a sign-in for `email` from `address` may be tried, or 0 when it may be now. */
  async retryAfter(email: string, address: string): Promise<number> {
    const waits = await Promise.all([this.byEmail.retryAfter(emailKey(email)), this.byAddress.retryAfter(addressKey(address))]);
    return Math.max(...waits);
  }

  /** Counts a failed sign-in. */
  async recordFailure(email: string, address: string): Promise<void> {
    await Promise.all([this.byEmail.recordFailure(emailKey(email)), this.byAddress.recordFailure(addressKey(address))]);
  }

  /** Ends the run of failures for `email`. */
  async recordSuccess(email: string): Promise<void> {
    await this.byEmail.reset(emailKey(email));
  }
}
