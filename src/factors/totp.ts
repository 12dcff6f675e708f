/**
 * Time-based one-time passwords (RFC 6238) through otpauth: 30-second steps, six digits, HMAC-SHA-1
 * (what every authenticator app reads from an `otpauth://` URI), one step either way for clock drift.
 * The QR code of the enrolment URI is drawn here, as SVG markup (uqr): no image leaves the server.
 */
import { Secret, TOTP } from 'otpauth';
import { renderSVG } from 'uqr';

/** Seconds per step. */
export const TOTP_PERIOD_SECONDS = 30;
/** Digits of a code. */
export const TOTP_DIGITS = 6;
/** Steps accepted on either side of the current one (RFC 6238 section 5.2). */
const WINDOW_STEPS = 1;

const totp = (base32Secret: string, issuer = '', label = '') =>
  new TOTP({ issuer, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(base32Secret) });

/** A new secret: 160 random bits (RFC 4226's recommended length), base32 as apps expect it. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The `otpauth://totp/...` URI that apps enrol from (shown as text and as a QR code). */
export function totpUri(base32Secret: string, issuer: string, accountLabel: string): string {
  return totp(base32Secret, issuer, accountLabel).toString();
}

/** Whether the input has the shape of a code (six digits; spaces people type are ignored). */
export const normaliseTotpCode = (input: string): string | undefined => {
  const code = input.replace(/\s+/g, '');
  return /^\d{6}$/.test(code) ? code : undefined;
};

/**
 * The time step at which `code` is right for the secret at `nowMs` (within one step either way), or
 * `undefined`. The caller refuses a step at or before the last one accepted (a replayed code).
 */
export function totpStepOf(base32Secret: string, code: string, nowMs: number): number | undefined {
  const normalised = normaliseTotpCode(code);
  if (normalised === undefined) return undefined;
  const delta = totp(base32Secret).validate({ token: normalised, timestamp: nowMs, window: WINDOW_STEPS });
  return delta === null ? undefined : Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS) + delta;
}

/** The code for the secret at `nowMs` (tests and tools; sign-in never needs it). */
export function totpCodeAt(base32Secret: string, nowMs: number): string {
  return totp(base32Secret).generate({ timestamp: nowMs });
}

/** An SVG drawing of `text` as a QR code, with a text alternative for screen readers. */
export function qrCodeSvg(text: string, title: string): string {
  const svg = renderSVG(text, { border: 2, pixelSize: 6, whiteColor: '#ffffff', blackColor: '#000000' });
  return svg.replace(/^<svg /, `<svg role="img" aria-label="${title.replace(/[&<>"']/g, '')}" `);
}
