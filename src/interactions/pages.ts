/**
 * The pages people see: sign in, consent, sign out, signed out, and errors. Plain server-rendered
 * HTML (escaped by default, see html.ts) with one same-origin stylesheet and no script.
 */
import { html, type SafeHtml } from './html.js';

/** Where the one stylesheet is served (same origin, so the CSP's `style-src 'self'` allows it). */
export const STYLESHEET_PATH = '/assets/login.css';

/** The icon browsers show in the tab (same origin; without it they ask for /favicon.ico, which is no page of ours). */
export const ICON_PATH = '/assets/icon.svg';

/** A plain padlock. */
export const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="6" y="14" width="20" height="15" rx="3" fill="#0b57d0"/><path d="M10 14V10a6 6 0 0 1 12 0v4" fill="none" stroke="#0b57d0" stroke-width="3"/></svg>`;

/** The name people see in titles and headings (and in their authenticator app and passkey manager). */
export const SERVICE_NAME = 'Company login';

/** The stylesheet of every page: readable on a phone, visible keyboard focus, respects dark mode. */
export const STYLESHEET = `
*,*::before,*::after{box-sizing:border-box}
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f4f5f7;--card:#fff;--line:#d0d7de;--accent:#0b57d0;--accent-fg:#fff;--danger:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa4ae;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#8ab4f8;--accent-fg:#0d1117;--danger:#f2b8b5}}
html{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;padding:2rem 1rem}
main{width:100%;max-width:26rem;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.75rem 1.5rem}
.brand{margin:0 0 1rem;font-size:.875rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:var(--muted)}
h1{margin:0 0 .5rem;font-size:1.5rem;line-height:1.25}
p{margin:0 0 1rem}
.muted{color:var(--muted)}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{display:block;width:100%;font:inherit;padding:.7rem .75rem;border:1px solid var(--line);border-radius:8px;background:var(--card);color:var(--fg)}
button{display:block;width:100%;margin-top:1.25rem;font:inherit;font-weight:600;padding:.75rem 1rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-fg);cursor:pointer}
button.secondary{background:transparent;color:var(--accent);margin-top:.75rem}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
a{color:var(--accent)}
.alert{border:1px solid var(--danger);color:var(--danger);border-radius:8px;padding:.75rem;margin:1rem 0}
ul.asks{padding-left:1.25rem;margin:0 0 1rem}
ul.asks li{margin:.35rem 0}
ul.asks ul{padding-left:1.25rem;margin:.25rem 0 0}
main.wide{max-width:44rem}
section{margin-top:1.75rem}
h2{margin:0 0 .5rem;font-size:1.125rem}
ul.items{list-style:none;padding:0;margin:0}
ul.items li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;border:1px solid var(--line);border-radius:8px;padding:.75rem;margin:.5rem 0}
.item-text{flex:1 1 16rem;min-width:0}
.item-text p{margin:0}
button.inline,a.button{display:inline-block;width:auto;margin-top:0;padding:.5rem .9rem}
a.button{font-weight:600;border:1px solid var(--accent);border-radius:8px;text-decoration:none}
.badge{display:inline-block;margin-left:.4rem;padding:0 .5rem;border:1px solid var(--accent);border-radius:999px;font-size:.75rem;font-weight:600;color:var(--accent)}
.notice{border:1px solid var(--accent);border-radius:8px;padding:.75rem;margin:1rem 0}
.hint{margin:.25rem 0 0;font-size:.875rem;color:var(--muted)}
h3{margin:1rem 0 .5rem;font-size:1rem}
form.rename{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-top:.5rem}
form.rename label{margin:0;flex-basis:100%;font-size:.875rem}
form.rename input{flex:1 1 10rem;width:auto;padding:.45rem .6rem}
form+p{margin-top:1rem}
figure.qr{margin:1rem auto;max-width:14rem}
figure.qr svg{display:block;width:100%;height:auto;border-radius:4px}
code.secret{font-size:1rem;letter-spacing:.05em;overflow-wrap:anywhere}
ol.codes{columns:2;column-gap:1.5rem;padding-left:1.5rem;margin:0 0 1rem}
ol.codes li{margin:.2rem 0}
code{font-size:.875em;overflow-wrap:anywhere}
dl{margin:1rem 0 0;font-size:.875rem;color:var(--muted)}
dt{font-weight:600}
dd{margin:0 0 .5rem;overflow-wrap:anywhere}
input.user-code{text-transform:uppercase;letter-spacing:.15em;font-size:1.25rem;text-align:center}
.user-code{font-size:1.5rem;letter-spacing:.15em}
figure.qr{margin:1rem auto;max-width:14rem}
figure.qr svg{display:block;width:100%;height:auto;border-radius:4px}
code.secret{font-size:1rem;letter-spacing:.05em}
summary{cursor:pointer;margin:0 0 1rem;color:var(--accent)}
ol.codes{columns:2;column-gap:1.5rem;padding-left:1.5rem;margin:0 0 1rem}
ol.codes li{margin:.2rem 0}
ol.codes code{white-space:nowrap}
@media (max-width:30rem){ol.codes{columns:1}}
[hidden]{display:none!important}
`;

/** A whole page in the common layout (also used by device-pages.ts, and, `wide`, by the account page). */
export function layout(title: string, body: SafeHtml, options: { readonly wide?: boolean } = {}): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>${title} · ${SERVICE_NAME}</title>
        <link rel="stylesheet" href="${STYLESHEET_PATH}" />
        <link rel="icon" href="${ICON_PATH}" type="image/svg+xml" />
      </head>
      <body>
        <main${options.wide ? html` class="wide"` : ''}>
          <p class="brand">${SERVICE_NAME}</p>
          ${body}
        </main>
      </body>
    </html> `.markup;
}

/** What the sign-in page shows. */
export interface LoginPage {
  readonly action: string;
  readonly clientName: string;
  readonly email?: string;
  /** Shown above the form (a failed attempt, a cooldown). */
  readonly alert?: string;
  /** A passkey sign-in offered below the form (factor-pages.ts `passkeyControls`). */
  readonly passkey?: SafeHtml;
}

/** The sign-in page: fields `email` and `password`, one submit button (and a passkey button when offered). */
export function loginPage(page: LoginPage): string {
  return layout(
    'Sign in',
    html`<h1>Sign in</h1>
      <p class="muted">to continue to ${page.clientName}</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      <form method="post" action="${page.action}" novalidate>
        <label for="email">Email</label>
        <input
          id="email"
          name="email"
          type="email"
          autocomplete="${page.passkey ? 'username webauthn' : 'username'}"
          required
          autofocus
          value="${page.email ?? ''}"
        />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit">Sign in</button>
      </form>
      ${page.passkey ?? ''}`,
  );
}

/** One thing a client asks for, in words. */
export interface ConsentItem {
  readonly text: string;
  /** Scope names behind it, shown for the curious. */
  readonly scopes?: readonly string[];
  /** Each scope as registered, listed one per line with its description when it has one (an API's scopes). */
  readonly details?: readonly { readonly scope: string; readonly description?: string }[];
}

/** What the consent page shows. */
export interface ConsentPage {
  readonly approveAction: string;
  readonly denyAction: string;
  readonly clientName: string;
  readonly accountEmail: string;
  readonly asks: readonly ConsentItem[];
}

/** The consent page: what the client asks for, one button that approves and one that denies. */
export function consentPage(page: ConsentPage): string {
  return layout(
    'Allow access?',
    html`<h1>Allow ${page.clientName} access?</h1>
      <p><strong>${page.clientName}</strong> asks to:</p>
      <ul class="asks">
        ${page.asks.map(
          (ask) =>
            html`<li>
              ${ask.text}${ask.scopes?.length ? html` <span class="muted">(${ask.scopes.map((s, i) => html`${i > 0 ? ', ' : ''}<code>${s}</code>`)})</span>` : ''}
              ${
                ask.details?.length
                  ? html`<ul>
                      ${ask.details.map((d) => html`<li><code>${d.scope}</code>${d.description ? html`: ${d.description}` : ''}</li>`)}
                    </ul>`
                  : ''
              }
            </li>`,
        )}
      </ul>
      <p class="muted">You are signed in as ${page.accountEmail}. Allow only if you trust ${page.clientName}.</p>
      <form method="post" action="${page.approveAction}">
        <button type="submit">Allow</button>
      </form>
      <form method="post" action="${page.denyAction}">
        <button type="submit" class="secondary">Deny</button>
      </form>`,
  );
}

/**
 * The sign-out confirmation. `providerForm` is oidc-provider's hidden form (its anti-forgery field);
 * the buttons submit it, with `logout=yes` only for the one that signs out.
 */
export function logoutPage(providerForm: SafeHtml, clientName: string | undefined): string {
  return layout(
    'Sign out?',
    html`<h1>Sign out?</h1>
      <p>Do you want to sign out of ${SERVICE_NAME}${clientName ? html` and ${clientName}` : ''}?</p>
      ${providerForm}
      <button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
      <button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
  );
}

/** Shown after signing out when the client named no page to return to. */
export function loggedOutPage(clientName: string | undefined): string {
  return layout(
    'Signed out',
    html`<h1>You are signed out</h1>
      <p>You have signed out of ${SERVICE_NAME}${clientName ? html` and ${clientName}` : ''}. You can close this window.</p>`,
  );
}

/** What the error page shows. */
export interface ErrorPage {
  readonly error: string;
  readonly description?: string;
  /** The request id, so support can find the request in the logs. */
  readonly requestId?: string;
}

const ERROR_SUMMARIES: Record<string, string> = {
  invalid_request: 'The application that sent you here made a request this server cannot accept.',
  invalid_client: 'The application that sent you here is not known to this server.',
  invalid_redirect_uri: 'The application that sent you here asked to return to an address it has not registered.',
  unauthorized_client: 'The application that sent you here may not sign people in this way.',
  access_denied: 'Access was denied.',
  invalid_scope: 'The application that sent you here asked for access it may not have.',
  invalid_target: 'The application that sent you here asked for an API it may not use.',
  session_not_found: 'Your sign-in took too long or was started in another browser. Go back to the application and try again.',
  server_error: 'Something went wrong on our side. Try again in a moment.',
};

/** The error page. The description comes from oidc-provider or from us, never from a stack trace. */
export function errorPage(page: ErrorPage): string {
  const summary = ERROR_SUMMARIES[page.error] ?? 'The sign-in could not be completed.';
  return layout(
    'Something went wrong',
    html`<h1>Something went wrong</h1>
      <p>${summary}</p>
      <dl>
        <dt>Error</dt>
        <dd><code>${page.error}</code></dd>
        ${
          page.description
            ? html`<dt>Details</dt>
                <dd>${page.description}</dd>`
            : ''
        }
        ${
          page.requestId
            ? html`<dt>Reference</dt>
                <dd><code>${page.requestId}</code></dd>`
            : ''
        }
      </dl>`,
  );
}
