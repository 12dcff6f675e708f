/**
 * The pages of the second sign-in step (docs/strong-sign-in.md): the one-time code or passkey of a
 * person who has factors, the enrolment of an authenticator app by one who must have one, and the
 * recovery codes shown once. Same layout, stylesheet and escaping as pages.ts. Passkeys need the
 * WebAuthn browser API: one constant inline script, allowed by its hash in the page's CSP
 * ({@link PASSKEY_SCRIPT}), reads its options from a JSON data block and submits an ordinary form.
 */
import { html, SafeHtml } from './html.js';
import { layout } from './pages.js';

/**
 * The script of every page with a passkey button. Constant, so the CSP allows it by hash; it does
 * nothing without the `passkey-options` block. Modes: `get` (button), `conditional` (the browser's
 * autofill offers passkeys on the email field, and the button still works), `create` (register).
 */
export const PASSKEY_SCRIPT = `(() => {
  const data = document.getElementById('passkey-options');
  const button = document.getElementById('passkey-button');
  const form = document.getElementById('passkey-form');
  if (!data || !button || !form) return;
  if (!window.PublicKeyCredential) { button.hidden = true; return; }
  const { mode, options } = JSON.parse(data.textContent);
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
  const text = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
  const ids = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));
  const submit = (credential) => {
    const r = credential.response;
    const response = r.attestationObject
      ? { clientDataJSON: text(r.clientDataJSON), attestationObject: text(r.attestationObject), transports: r.getTransports ? r.getTransports() : [] }
      : { clientDataJSON: text(r.clientDataJSON), authenticatorData: text(r.authenticatorData), signature: text(r.signature), userHandle: r.userHandle ? text(r.userHandle) : undefined };
    form.elements.response.value = JSON.stringify({ id: credential.id, rawId: text(credential.rawId), type: credential.type, response, clientExtensionResults: credential.getClientExtensionResults(), authenticatorAttachment: credential.authenticatorAttachment || undefined });
    form.submit();
  };
  const failed = (error) => {
    if (error && error.name === 'AbortError') return;
    const alert = document.getElementById('passkey-alert');
    alert.textContent = 'The passkey did not work (' + (error && error.name ? error.name : 'error') + '). Try again, or use another way.';
    alert.hidden = false;
  };
  let pending;
  const get = (mediation) => {
    if (pending) pending.abort();
    pending = new AbortController();
    const publicKey = { ...options, challenge: bytes(options.challenge), allowCredentials: ids(options.allowCredentials) };
    // A conditional request fails quietly (no passkey here, another request took over): only a person's click hears of failure.
    return navigator.credentials.get({ publicKey, signal: pending.signal, ...(mediation ? { mediation } : {}) }).then((c) => c && submit(c), mediation ? () => {} : failed);
  };
  if (mode === 'create') {
    button.addEventListener('click', () => {
      const publicKey = { ...options, challenge: bytes(options.challenge), user: { ...options.user, id: bytes(options.user.id) }, excludeCredentials: ids(options.excludeCredentials) };
      navigator.credentials.create({ publicKey }).then(submit, failed);
    });
  } else {
    button.addEventListener('click', () => get());
    if (mode === 'conditional' && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => available && get('conditional'));
    }
  }
})();`;

/** The script element, built outside any template a formatter could touch: its content must be byte for byte the hashed script. */
const SCRIPT_ELEMENT = new SafeHtml(`<script>${PASSKEY_SCRIPT}</script>`);

/** What a page needs to offer a passkey. */
export interface PasskeyOffer {
  /** Where the form with the browser's answer (field `response`) is posted. */
  readonly action: string;
  readonly mode: 'get' | 'conditional' | 'create';
  /** The WebAuthn options (JSON form) the server made for this page. */
  readonly options: unknown;
  readonly label: string;
  /** More hidden fields of the form (the account page's anti-forgery token). */
  readonly fields?: Readonly<Record<string, string>>;
}

/** JSON inside a `<script type="application/json">` block: `<` escaped, so no text can close the block. */
const jsonBlock = (value: unknown) => new SafeHtml(JSON.stringify(value).replace(/</g, '\\u003c'));

/** The passkey button, its hidden form, its failure alert, its options and the script. */
export function passkeyControls(offer: PasskeyOffer): SafeHtml {
  return html`<p id="passkey-alert" class="alert" role="alert" hidden></p>
    <form id="passkey-form" method="post" action="${offer.action}">
      <input type="hidden" name="response" value="" />
      ${Object.entries(offer.fields ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
    </form>
    <button type="button" id="passkey-button" class="secondary">${offer.label}</button>
    <script type="application/json" id="passkey-options">
      ${jsonBlock({ mode: offer.mode, options: offer.options })}
    </script>
    ${SCRIPT_ELEMENT}`;
}

/** The browser's answer the passkey form posted (field `response`): a JSON object, or `undefined`. */
export function passkeyResponseOf(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** What the second-factor page shows. */
export interface SecondFactorPage {
  readonly action: string;
  readonly accountEmail: string;
  readonly hasTotp: boolean;
  readonly passkey?: PasskeyOffer | undefined;
  readonly alert?: string | undefined;
}

/** The second step: a code (from the app, or a recovery code), or a passkey. */
export function secondFactorPage(page: SecondFactorPage): string {
  return layout(
    'Confirm it is you',
    html`<h1>Confirm it is you</h1>
      <p class="muted">Signing in as ${page.accountEmail}</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      <form method="post" action="${page.action}" novalidate>
        <label for="code">${page.hasTotp ? 'Code from your authenticator app, or a recovery code' : 'A recovery code'}</label>
        <input id="code" name="code" type="text" autocomplete="one-time-code" spellcheck="false" autocapitalize="off" required autofocus />
        <button type="submit">Continue</button>
      </form>
      ${page.passkey ? passkeyControls(page.passkey) : ''}`,
  );
}

/** What the enrolment page shows. */
export interface TotpEnrolmentPage {
  readonly action: string;
  readonly accountEmail: string;
  readonly secret: string;
  readonly uri: string;
  /** SVG markup drawn by the server (factors/totp.ts). */
  readonly qrSvg: string;
  readonly passkey?: PasskeyOffer | undefined;
  readonly alert?: string | undefined;
}

/** Groups of four, so people can type the secret without losing their place. */
const grouped = (secret: string) => secret.replace(/(.{4})(?=.)/g, '$1 ');

/** Setting up an authenticator app: the QR code, the secret as text and as a URI, and a code field. */
export function totpEnrolmentPage(page: TotpEnrolmentPage): string {
  return layout(
    'Set up two-step sign-in',
    html`<h1>Set up two-step sign-in</h1>
      <p>${page.accountEmail} must confirm each sign-in with a second step. Scan this code with an authenticator app, then type the code it shows.</p>
      ${page.alert ? html`<p class="alert" role="alert">${page.alert}</p>` : ''}
      <figure class="qr">${new SafeHtml(page.qrSvg)}</figure>
      <p class="muted">Cannot scan it? Enter this key in the app:</p>
      <p><code class="secret" id="totp-secret">${grouped(page.secret)}</code></p>
      <details>
        <summary>Setup link</summary>
        <p><code id="totp-uri">${page.uri}</code></p>
      </details>
      <form method="post" action="${page.action}" novalidate>
        <label for="code">Code from the app</label>
        <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required />
        <button type="submit">Confirm</button>
      </form>
      ${page.passkey ? passkeyControls(page.passkey) : ''}`,
  );
}

/** The recovery codes, shown once, and the way on. */
export function recoveryCodesPage(page: { readonly codes: readonly string[]; readonly continueAction: string }): string {
  return layout(
    'Save your recovery codes',
    html`<h1>Save your recovery codes</h1>
      <p>If you lose your authenticator, each of these codes signs you in once. Keep them somewhere safe: they are shown only now.</p>
      <ol class="codes">
        ${page.codes.map((code) => html`<li><code>${code}</code></li>`)}
      </ol>
      <form method="post" action="${page.continueAction}">
        <button type="submit">I have saved them, continue</button>
      </form>`,
  );
}
