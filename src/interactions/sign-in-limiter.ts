/**
 * Sign-in throttling. Two counters, both of failures only:
 * - per email (whether or not an account has it, so the limit reveals nothing): after
 *   {@link EMAIL_FAILURES}.maxFailures failures in a row, the next attempt for that email is refused
 *   for the window, counted from the last failure; a success resets it;
 * - per client address: after {@link ADDRESS_FAILURES}.maxFailures failures within the window, the
 *   next attempt from that address is refused until the window ends.
 * An attempt counts as a failure before its password is hashed (see {@link SignInLimiter.begin}), so
 * parallel attempts cannot outrun the limit, and refused attempts cost no hashing. Refused attempts
 * are not counted, so hammering does not extend the pause for the real person.
 */
import type { FailureCounter, FailurePolicy } from '../limits/failure-counter.js';
import { sha256Base64Url } from '../shared/secrets.js';

/** 10 failures in a row for one email are allowed; the next attempt waits 15 minutes after the last one. */
export const EMAIL_FAILURES: FailurePolicy = { maxFailures: 10, windowSeconds: 15 * 60, restartWindowOnFailure: true };
/** 50 failures from one address within 15 minutes are allowed; the next attempt waits until the 15 minutes are over. */
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

  /**
   * Starts a sign-in attempt for `email` from `address`, counting it as a failure up front.
   * @returns 0 when the password may be checked (call {@link succeeded} if it is right), else the
   *   seconds to wait (the attempt is refused and not counted).
   */
  async begin(email: string, address: string): Promise<number> {
    const byAddress = addressKey(address);
    const addressWait = await this.byAddress.admit(byAddress, true);
    if (addressWait > 0) return addressWait;
    const emailWait = await this.byEmail.admit(emailKey(email), true);
    if (emailWait > 0) {
      // Refused: the attempt counted on the address is taken back.
      await this.byAddress.release(byAddress);
      return emailWait;
    }
    return 0;
  }

  /** The attempt begun with {@link begin} was right: it ends the run of failures for `email` and does not count on the address. */
  async succeeded(email: string, address: string): Promise<void> {
    await Promise.all([this.byEmail.reset(emailKey(email)), this.byAddress.release(addressKey(address))]);
  }
}
