/**
 * The device authorization grant (RFC 8628), as oidc-provider's `features.deviceFlow` with our pages,
 * plus a limit on wrong user codes: the engine looks every submitted code up and has no limit of its
 * own, so without one a user code (20^8 values, alive 10 minutes) could be guessed by brute force.
 */
import type Provider from 'oidc-provider';
import type { Adapter, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { deviceConfirmPage, deviceDonePage, userCodeEntryPage } from '../interactions/device-pages.js';
import type { FailureCounter, FailurePolicy } from '../limits/failure-counter.js';
import { requestContext } from '../shared/request-context.js';
import { sha256Base64Url } from '../shared/secrets.js';
import { PROTOCOL_ROUTES } from './protocol-routes.js';

/** Where people enter the code (`verification_uri`); the device asks at DEVICE_AUTHORIZATION_PATH. */
const CODE_VERIFICATION_PATH = PROTOCOL_ROUTES.code_verification;
const DEVICE_AUTHORIZATION_PATH = PROTOCOL_ROUTES.device_authorization;
const TOKEN_PATH = PROTOCOL_ROUTES.token;

/** The grant type a client registers to use the device flow. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * 10 wrong codes from one address within 15 minutes pause code entry from it until the window ends.
 * A guesser then gets 10 tries per 10-minute code life among 20^8 codes.
 */
export const USER_CODE_FAILURES: FailurePolicy = { maxFailures: 10, windowSeconds: 15 * 60 };

const addressKey = () => sha256Base64Url(requestContext.getStore()?.ip ?? 'unknown');

/** The anti-forgery value the provider keeps in the browser session for its device forms. */
const xsrfOf = (ctx: KoaContextWithOIDC): string | undefined => (ctx.oidc.session as unknown as { state?: { secret?: string } } | undefined)?.state?.secret;

const ALERTS: Record<string, string> = {
  NoCodeError: 'Enter the code shown on your device.',
  NotFoundError: 'That code is not right. Check it and try again.',
  ExpiredError: 'That code has expired. Start again on your device to get a new one.',
  AlreadyUsedError: 'That code has already been used. Start again on your device to get a new one.',
  AbortedError: 'The device was not connected.',
};

/**
 * How long a device code is kept after it expired, so that a device polling late hears RFC 8628's
 * `expired_token` (the provider finds an expired code and says so) rather than `invalid_grant` (a
 * code it has never seen): the store would otherwise drop the record the second it expires.
 */
export const EXPIRED_DEVICE_CODE_KEPT_SECONDS = 10 * 60;

/** Wraps the DeviceCode adapter so stored codes outlive their expiry by EXPIRED_DEVICE_CODE_KEPT_SECONDS (they are still refused). */
export function keepingExpiredDeviceCodes(adapter: Adapter): Adapter {
  return {
    ...adapter,
    upsert: (id, payload, expiresIn) => adapter.upsert(id, payload, expiresIn === undefined ? undefined : expiresIn + EXPIRED_DEVICE_CODE_KEPT_SECONDS),
  };
}

/** `features.deviceFlow`: user codes of 8 letters from a set without look-alikes; our pages. */
export function deviceFlowFeature(): NonNullable<Configuration['features']>['deviceFlow'] {
  return {
    enabled: true,
    charset: 'base-20',
    mask: '****-****',
    userCodeInputSource: async (ctx, _form, _out, err) => {
      // The attempt was counted up front (installUserCodeLimit); only a wrong code keeps its count.
      if (err?.name === 'NotFoundError') ctx.state.wrongUserCode = true;
      const typed = err && 'userCode' in err && typeof err.userCode === 'string' ? err.userCode : undefined;
      ctx.type = 'html';
      ctx.body = userCodeEntryPage({
        action: CODE_VERIFICATION_PATH,
        xsrf: xsrfOf(ctx),
        userCode: typed,
        alert: err ? (ALERTS[err.name] ?? 'Something went wrong. Start again on your device.') : undefined,
      });
    },
    userCodeConfirmSource: async (ctx, _form, client, _deviceInfo, userCode) => {
      const requested = ctx.oidc.entities.DeviceCode?.params?.scope;
      ctx.type = 'html';
      ctx.body = deviceConfirmPage({
        action: CODE_VERIFICATION_PATH,
        xsrf: xsrfOf(ctx) ?? '',
        userCode,
        clientName: client.clientName ?? client.clientId,
        scopes: typeof requested === 'string' ? requested.split(' ').filter(Boolean) : [],
      });
    },
    successSource: async (ctx) => {
      ctx.type = 'html';
      ctx.body = deviceDonePage(ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? 'The app');
    },
  };
}

/**
 * Refuses code submissions from an address that entered too many wrong codes, before the provider
 * looks the code up: 429 with Retry-After and a page that says how long to wait. Each submission is
 * counted as wrong up front (so parallel guesses cannot slip past the limit) and released unless the
 * provider found no such code.
 */
export function installUserCodeLimit(provider: Provider, wrongCodes: FailureCounter): void {
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== CODE_VERIFICATION_PATH) {
      await next();
      return;
    }
    const key = addressKey();
    const retryAfter = await wrongCodes.admit(key, true);
    if (retryAfter === 0) {
      try {
        await next();
      } finally {
        if (!ctx.state.wrongUserCode) await wrongCodes.release(key);
      }
      return;
    }
    const minutes = Math.ceil(retryAfter / 60);
    ctx.status = 429;
    ctx.set('Retry-After', String(retryAfter));
    ctx.type = 'html';
    ctx.body = userCodeEntryPage({
      action: CODE_VERIFICATION_PATH,
      alert: `Too many wrong codes. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
    });
  });
}

/** The polling interval the device is told (RFC 8628 §3.2), in seconds. */
export const DEVICE_POLL_INTERVAL_SECONDS = 5;

/** One poll of a device code per interval; another within it is one too many: slow_down. */
export const DEVICE_POLLS: FailurePolicy = { maxFailures: 1, windowSeconds: DEVICE_POLL_INTERVAL_SECONDS };

/**
 * RFC 8628's polling rules, which oidc-provider leaves out: the device authorization answer names the
 * interval, and a device that polls a pending code faster than that hears `slow_down` instead of
 * `authorization_pending` (§3.5); a client without the grant hears `unauthorized_client`. Only answers the provider already made pending are rewritten, so a
 * slow-down never hides an approval, a denial or an expiry.
 */
export function installDevicePollingLimit(provider: Provider, polls: FailureCounter): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST') return;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.path === DEVICE_AUTHORIZATION_PATH) {
      if (ctx.status === 200 && body && typeof body.device_code === 'string') body.interval = DEVICE_POLL_INTERVAL_SECONDS;
      // The engine calls a client without the grant an invalid_request; RFC 6749 §5.2 (which RFC 8628
      // §3.2 refers to) has the precise word for it.
      if (body?.error === 'invalid_request' && String(body.error_description).startsWith(`${DEVICE_CODE_GRANT} is not allowed`)) {
        body.error = 'unauthorized_client';
      }
      return;
    }
    if (ctx.path !== TOKEN_PATH || body?.error !== 'authorization_pending') return;
    const deviceCode = (ctx as unknown as KoaContextWithOIDC).oidc?.params?.device_code;
    if (typeof deviceCode !== 'string') return;
    if ((await polls.admit(sha256Base64Url(deviceCode), true)) > 0) {
      ctx.body = { error: 'slow_down', error_description: `poll at most every ${DEVICE_POLL_INTERVAL_SECONDS} seconds` };
    }
  });
}
