/**
 * The pages of the device authorization grant (RFC 8628) a person sees on their phone or computer:
 * enter the code shown on the device, confirm the device and what it asks for, done. Same layout,
 * stylesheet and escaping as the sign-in pages, no script. oidc-provider renders its own forms for
 * these steps (with inline handlers our CSP would block); ours post the same fields to the same place.
 */
import { html } from './html.js';
import { layout } from './pages.js';

/** What the code entry page shows. */
export interface UserCodeEntryPage {
  /** Where the form posts (the provider's code verification endpoint). */
  readonly action: string;
  /** The provider's anti-forgery value for this browser session; absent when no form may be shown. */
  readonly xsrf?: string;
  /** What the person typed last time, shown again after an error. */
  readonly userCode?: string;
  /** Shown above the form (a wrong or expired code, a pause after too many wrong codes). */
  readonly alert?: string;
}

/** The code entry page: one field `user_code`, one submit button. */
export function userCodeEntryPage(page: UserCodeEntryPage): string {
  return layout(
    'Connect a device',
    html`<h1>Connect a device</h1>
      <p class="muted">Enter the code shown on your device.</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      ${
        page.xsrf === undefined
          ? ''
          : html`<form method="post" action="${page.action}" novalidate>
              <input type="hidden" name="xsrf" value="${page.xsrf}" />
              <label for="user_code">Code</label>
              <input
                id="user_code"
                name="user_code"
                class="user-code"
                type="text"
                autocomplete="off"
                autocapitalize="characters"
                spellcheck="false"
                required
                autofocus
                value="${page.userCode ?? ''}"
              />
              <button type="submit">Continue</button>
            </form>`
      }`,
  );
}

/** What the confirmation page shows. */
export interface DeviceConfirmPage {
  readonly action: string;
  readonly xsrf: string;
  /** The code as the device shows it (with its dash), for the person to compare. */
  readonly userCode: string;
  readonly clientName: string;
  readonly scopes: readonly string[];
}

/** The confirmation page: the device's app, what it asks for, and the code to compare; continue or cancel. */
export function deviceConfirmPage(page: DeviceConfirmPage): string {
  return layout(
    'Connect this device?',
    html`<h1>Connect ${page.clientName}?</h1>
      <p>Check that your device shows this code:</p>
      <p><code class="user-code">${page.userCode}</code></p>
      ${
        page.scopes.length
          ? html`<p><strong>${page.clientName}</strong> asks for:</p>
              <ul class="asks">
                ${page.scopes.map((scope) => html`<li><code>${scope}</code></li>`)}
              </ul>`
          : ''
      }
      <p class="muted">If you did not start this on a device of yours, or the code differs, cancel.</p>
      <form method="post" action="${page.action}">
        <input type="hidden" name="xsrf" value="${page.xsrf}" />
        <input type="hidden" name="user_code" value="${page.userCode}" />
        <button type="submit" name="confirm" value="yes">Continue</button>
        <button type="submit" name="abort" value="yes" class="secondary">Cancel</button>
      </form>`,
  );
}

/** Shown once the device has been allowed: it gets its tokens at its next poll. */
export function deviceDonePage(clientName: string): string {
  return layout(
    'Device connected',
    html`<h1>Device connected</h1>
      <p>${clientName} on your device is now signed in. You can close this window.</p>`,
  );
}
