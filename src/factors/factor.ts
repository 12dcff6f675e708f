/** An account's second factors as the rest of the server sees them: never a row, never a secret. */

/** The authenticator app of an account (one at most). */
export interface TotpSummary {
  /** `null` while the enrolment waits for its first code (it does not count as a factor yet). */
  readonly confirmedAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly createdAt: Date;
}

/** One registered passkey. */
export interface PasskeySummary {
  readonly id: string;
  readonly name: string;
  /** `multiDevice`: a synced passkey (reported as `swk`); `singleDevice`: bound to one device (`hwk`). */
  readonly deviceType: 'singleDevice' | 'multiDevice';
  readonly backedUp: boolean;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
}

/** The account's recovery codes: how many are left of the set. */
export interface RecoveryCodesSummary {
  readonly remaining: number;
  readonly total: number;
  readonly createdAt: Date;
}

/** Every factor of an account. */
export interface AccountFactors {
  readonly totp: TotpSummary | null;
  readonly passkeys: readonly PasskeySummary[];
  readonly recoveryCodes: RecoveryCodesSummary | null;
}

/** Whether the account can prove a second factor at sign-in (a confirmed TOTP or a passkey). */
export const hasSecondFactor = (factors: AccountFactors): boolean => factors.totp?.confirmedAt != null || factors.passkeys.length > 0;

/** Why a factor was refused; logged (never with a secret) and shown as a clear page. */
export type FactorRefusal =
  | 'wrong_code'
  | 'replayed_code'
  | 'wrong_origin'
  | 'wrong_rp_id'
  | 'wrong_challenge'
  | 'unknown_credential'
  | 'cloned_authenticator'
  | 'user_not_verified'
  | 'invalid_response';

/** A factor that did not verify, and why. */
export class FactorRejectedError extends Error {
  override readonly name: string = 'FactorRejectedError';
  constructor(
    readonly reason: FactorRefusal,
    message: string,
  ) {
    super(message);
  }
}
