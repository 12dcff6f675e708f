/**
 * The account page's HTML: the overview (sessions, apps, password, sign-out), the password form and
 * the signed-out page. The same layout, stylesheet and escaping as the sign-in pages. Every action is a
 * form with the page session's anti-forgery token; the one script is the sign-in pages' passkey script
 * (src/interactions/factor-pages.ts), on the page that adds a passkey.
 */
import { passkeyControls } from '../interactions/factor-pages.js';
import { html, type SafeHtml } from '../interactions/html.js';
import { layout } from '../interactions/pages.js';
import { MIN_PASSWORD_LENGTH } from '../accounts/password.js';
import type { AccountFactors, PasskeySummary } from '../factors/factor.js';

/** Where the account page's forms post. */
export const ACCOUNT_ACTIONS = {
  endSession: '/account/sessions/end',
  removeApp: '/account/apps/remove',
  password: '/account/password',
  signOut: '/account/sign-out',
} as const;

/** A signed-in session as the person sees it. */
export interface SessionItem {
  /** The session's digest: what the form sends back. */
  readonly id: string;
  readonly current: boolean;
  readonly signedInAt: Date;
  /** The apps signed in through it, by name. */
  readonly apps: readonly string[];
}

/** An app holding a grant, as the person sees it. */
export interface AppItem {
  readonly clientId: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly grantedAt: Date;
}

/** What the overview shows. */
export interface OverviewPage {
  readonly name: string;
  readonly email: string;
  readonly csrf: string;
  readonly sessions: readonly SessionItem[];
  readonly apps: readonly AppItem[];
  /** What was just done (shown once, after the redirect). */
  readonly notice?: string;
  /**
   * Extension point (issue 14, branch `mfa`): the section of the sign-in methods (passkeys,
   * authenticator app, recovery codes), shown between the password and signing out.
   */
  readonly signInMethods?: SafeHtml;
}

const when = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const time = (date: Date): SafeHtml => html`<time datetime="${date.toISOString()}">${when.format(date)} UTC</time>`;

const csrfField = (csrf: string): SafeHtml => html`<input type="hidden" name="csrf" value="${csrf}" />`;

function sessionItem(session: SessionItem, index: number, csrf: string): SafeHtml {
  const id = `session-${index}`;
  return html`<li>
    <div class="item-text" id="${id}">
      <p><strong>${session.current ? 'This browser' : 'Another browser'}</strong>${session.current ? html`<span class="badge">current</span>` : ''}</p>
      <p class="muted">Signed in ${time(session.signedInAt)}</p>
      ${session.apps.length > 0 ? html`<p class="muted">Apps: ${session.apps.join(', ')}</p>` : ''}
    </div>
    <form method="post" action="${ACCOUNT_ACTIONS.endSession}">
      ${csrfField(csrf)}
      <input type="hidden" name="session" value="${session.id}" />
      <button type="submit" class="inline secondary" aria-describedby="${id}">${session.current ? 'Sign out' : 'End session'}</button>
    </form>
  </li>`;
}

function appItem(app: AppItem, index: number, csrf: string): SafeHtml {
  const id = `app-${index}`;
  return html`<li>
    <div class="item-text" id="${id}">
      <p><strong>${app.name}</strong></p>
      <p class="muted">Can use: ${app.scopes.map((scope, i) => html`${i > 0 ? ', ' : ''}<code>${scope}</code>`)}</p>
      <p class="muted">Allowed ${time(app.grantedAt)}</p>
    </div>
    <form method="post" action="${ACCOUNT_ACTIONS.removeApp}">
      ${csrfField(csrf)}
      <input type="hidden" name="client_id" value="${app.clientId}" />
      <button type="submit" class="inline secondary" aria-describedby="${id}">Remove access</button>
    </form>
  </li>`;
}

/** The overview: who is signed in, where, which apps hold access, and what can be done about it. */
export function overviewPage(page: OverviewPage): string {
  return layout(
    'Your account',
    html`<h1>Your account</h1>
      <p class="muted">Signed in as ${page.name} (${page.email})</p>
      ${page.notice ? html`<p class="notice" role="status">${page.notice}</p>` : ''}
      <section aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Where you are signed in</h2>
        <p class="muted">Ending a session signs that browser out at once, and the apps it signed in to are told.</p>
        <ul class="items">
          ${page.sessions.map((session, index) => sessionItem(session, index, page.csrf))}
        </ul>
      </section>
      <section aria-labelledby="apps-heading">
        <h2 id="apps-heading">Apps with access to your account</h2>
        ${
          page.apps.length === 0
            ? html`<p class="muted">No app holds access to your account.</p>`
            : html`<p class="muted">Removing an app's access ends it at once; the app has to ask again.</p>
                <ul class="items">
                  ${page.apps.map((app, index) => appItem(app, index, page.csrf))}
                </ul>`
        }
      </section>
      <section aria-labelledby="password-heading">
        <h2 id="password-heading">Password</h2>
        <p class="muted">Changing it signs you out everywhere else.</p>
        <a class="button" href="${ACCOUNT_ACTIONS.password}">Change password</a>
      </section>
      ${page.signInMethods ?? ''}
      <section>
        <form method="post" action="${ACCOUNT_ACTIONS.signOut}">
          ${csrfField(page.csrf)}
          <button type="submit" class="secondary">Sign out</button>
        </form>
      </section>`,
    { wide: true },
  );
}

/** What the password form shows. */
export interface PasswordPage {
  readonly email: string;
  readonly csrf: string;
  /** Why the last attempt was refused. */
  readonly alert?: string;
}

/** The password form: the current password, the new one twice. */
export function passwordPage(page: PasswordPage): string {
  return layout(
    'Change password',
    html`<h1>Change your password</h1>
      <p class="muted">For ${page.email}. Every other session is signed out, and every app has to ask for access again.</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      <form method="post" action="${ACCOUNT_ACTIONS.password}" novalidate>
        ${csrfField(page.csrf)}
        <label for="current_password">Current password</label>
        <input id="current_password" name="current_password" type="password" autocomplete="current-password" required autofocus />
        <label for="new_password">New password</label>
        <input
          id="new_password"
          name="new_password"
          type="password"
          autocomplete="new-password"
          required
          minlength="${MIN_PASSWORD_LENGTH}"
          aria-describedby="new_password_hint"
        />
        <p class="hint" id="new_password_hint">At least ${MIN_PASSWORD_LENGTH} characters. A few unrelated words make a good one.</p>
        <label for="repeat_password">New password again</label>
        <input id="repeat_password" name="repeat_password" type="password" autocomplete="new-password" required />
        <button type="submit">Change password</button>
      </form>
      <p><a href="/account">Back to your account</a></p>`,
  );
}

/** After signing out of the account page. */
export function signedOutPage(): string {
  return layout(
    'Signed out',
    html`<h1>You are signed out</h1>
      <p>This browser is signed out of your account.</p>
      <p><a href="/account">Sign in again</a></p>`,
  );
}

/** Where the sign-in methods' forms post (and the enrolment page of the authenticator app). */
export const FACTOR_ACTIONS = {
  totp: '/account/totp',
  removeTotp: '/account/totp/remove',
  recoveryCodes: '/account/recovery-codes',
  addPasskey: '/account/passkeys/add',
  renamePasskey: '/account/passkeys/rename',
  removePasskey: '/account/passkeys/remove',
} as const;

function passkeyItem(passkey: PasskeySummary, index: number, csrf: string): SafeHtml {
  const id = `passkey-${index}`;
  return html`<li>
    <div class="item-text" id="${id}">
      <p><strong>${passkey.name}</strong></p>
      <p class="muted">${passkey.deviceType === 'multiDevice' ? 'Synced passkey' : 'Passkey on one device'}, added ${time(passkey.createdAt)}</p>
      <p class="muted">${passkey.lastUsedAt ? html`Last used ${time(passkey.lastUsedAt)}` : 'Not used yet'}</p>
      <form method="post" action="${FACTOR_ACTIONS.renamePasskey}" class="rename">
        ${csrfField(csrf)}
        <input type="hidden" name="passkey" value="${passkey.id}" />
        <label for="${id}-name">New name</label>
        <input id="${id}-name" name="name" maxlength="100" required value="${passkey.name}" />
        <button type="submit" class="inline secondary">Rename</button>
      </form>
    </div>
    <form method="post" action="${FACTOR_ACTIONS.removePasskey}">
      ${csrfField(csrf)}
      <input type="hidden" name="passkey" value="${passkey.id}" />
      <button type="submit" class="inline secondary" aria-describedby="${id}">Remove</button>
    </form>
  </li>`;
}

/** The overview's section of the sign-in methods beside the password: authenticator app, recovery codes, passkeys. */
export function signInMethodsSection(factors: AccountFactors, csrf: string): SafeHtml {
  const totp = factors.totp?.confirmedAt ? factors.totp : undefined;
  return html`<section aria-labelledby="methods-heading">
    <h2 id="methods-heading">Two-step sign-in</h2>
    <p class="muted">Adding or removing one signs you out everywhere else.</p>
    <ul class="items">
      <li>
        <div class="item-text" id="totp-item">
          <p><strong>Authenticator app</strong></p>
          <p class="muted">${totp?.confirmedAt ? html`Set up ${time(totp.confirmedAt)}` : 'Not set up: codes from an app on your phone.'}</p>
        </div>
        ${
          totp
            ? html`<form method="post" action="${FACTOR_ACTIONS.removeTotp}">
                ${csrfField(csrf)}
                <button type="submit" class="inline secondary" aria-describedby="totp-item">Remove</button>
              </form>`
            : html`<a class="button" href="${FACTOR_ACTIONS.totp}">Set up</a>`
        }
      </li>
      <li>
        <div class="item-text" id="codes-item">
          <p><strong>Recovery codes</strong></p>
          <p class="muted">
            ${factors.recoveryCodes ? `${factors.recoveryCodes.remaining} of ${factors.recoveryCodes.total} left` : 'None yet: for when your phone is lost.'}
          </p>
        </div>
        <form method="post" action="${FACTOR_ACTIONS.recoveryCodes}">
          ${csrfField(csrf)}
          <button type="submit" class="inline secondary" aria-describedby="codes-item">${factors.recoveryCodes ? 'Make new codes' : 'Make codes'}</button>
        </form>
      </li>
    </ul>
    <h3>Passkeys</h3>
    ${
      factors.passkeys.length === 0
        ? html`<p class="muted">No passkey yet: your phone, computer or security key can sign you in without a password.</p>`
        : html`<ul class="items">
            ${factors.passkeys.map((passkey, index) => passkeyItem(passkey, index, csrf))}
          </ul>`
    }
    <p><a class="button" href="${FACTOR_ACTIONS.addPasskey}">Add a passkey</a></p>
  </section>`;
}

/** What the authenticator app's enrolment page shows. */
export interface TotpPage {
  readonly csrf: string;
  /** The secret as text, for typing into an app. */
  readonly secret: string;
  /** The QR code of the enrolment URI: SVG markup drawn by src/factors/totp.ts. */
  readonly qrSvg: SafeHtml;
  readonly alert?: string;
}

/** Setting up an authenticator app: the QR code, the secret as text, and a field for the first code. */
export function totpPage(page: TotpPage): string {
  return layout(
    'Set up an authenticator app',
    html`<h1>Set up an authenticator app</h1>
      <p>Scan this code with your authenticator app, or type the key below into it. Then enter the six-digit code it shows.</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      <figure class="qr">${page.qrSvg}</figure>
      <p>Key: <code class="secret">${page.secret}</code></p>
      <form method="post" action="${FACTOR_ACTIONS.totp}" novalidate>
        ${csrfField(page.csrf)}
        <label for="code">Code from the app</label>
        <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="8" required autofocus />
        <button type="submit">Turn on</button>
      </form>
      <p><a href="/account">Back to your account</a></p>`,
  );
}

/** New recovery codes, shown this once. */
export function recoveryCodesPage(codes: readonly string[]): string {
  return layout(
    'Your recovery codes',
    html`<h1>Your recovery codes</h1>
      <p>
        Each code signs you in once when you cannot use your app or passkey. Keep them somewhere safe: they are shown only this once, and any earlier codes no
        longer work.
      </p>
      <ol class="codes">
        ${codes.map((code) => html`<li><code>${code}</code></li>`)}
      </ol>
      <p><a class="button" href="/account">I have kept them</a></p>`,
  );
}

/** What the page that adds a passkey shows. */
export interface AddPasskeyPage {
  readonly csrf: string;
  /** The WebAuthn registration options (JSON form) made for this page session. */
  readonly options: unknown;
  readonly alert?: string;
}

/** Adding a passkey: the sign-in pages' passkey button, posting the browser's answer with the anti-forgery token. */
export function addPasskeyPage(page: AddPasskeyPage): string {
  return layout(
    'Add a passkey',
    html`<h1>Add a passkey</h1>
      <p>Your device asks you to confirm with your fingerprint, face, PIN or security key. The passkey then signs you in here.</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      ${passkeyControls({ action: FACTOR_ACTIONS.addPasskey, mode: 'create', options: page.options, label: 'Add a passkey', fields: { csrf: page.csrf } })}
      <p><a href="/account">Back to your account</a></p>`,
  );
}
