/**
 * A person's browser, without the browser: fetch with a cookie jar and manual redirects, for end-to-end
 * tests of the sign-in pages. It follows redirects on the server and stops at the client's redirect
 * URI (the relying party is the test itself). The browser test (browser-login.test.ts) drives a real one.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { adminCall } from './oauth.js';

/** One answer of the server, with its body read. */
export interface Page {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/** How a request is sent: `form` fields are encoded; `rawForm` is sent as it is (already encoded). */
export interface RequestOptions {
  method?: string;
  form?: Record<string, string>;
  rawForm?: string;
  /** Sends the form as a stream: chunked, without Content-Length. */
  chunked?: boolean;
}

/** A browser-like client: one cookie jar, one client address (sent as X-Forwarded-For). */
export class Browser {
  readonly #cookies = new Map<string, string>();
  /** A made-up address per browser, so each test has its own sign-in limit (the server trusts its proxy). */
  readonly address = `2001:db8::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
  /** Every Set-Cookie header received, for tests of cookie attributes. */
  readonly setCookies: string[] = [];

  constructor(private readonly stopAt: string) {}

  /** One request, without following redirects. */
  async request(url: string, init: RequestOptions = {}): Promise<Page> {
    const headers: Record<string, string> = { 'x-forwarded-for': this.address };
    if (this.#cookies.size) headers.cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const form = init.form ? new URLSearchParams(init.form).toString() : init.rawForm;
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    // A stream body goes out chunked (Transfer-Encoding: chunked, no Content-Length).
    const body = form !== undefined && init.chunked ? ReadableStream.from([new TextEncoder().encode(form)]) : form;
    const response = await fetch(url, {
      method: init.method ?? (form !== undefined ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
      ...(init.chunked ? { duplex: 'half' } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      this.setCookies.push(cookie);
      const [pair] = cookie.split(';');
      const [name, ...value] = pair.split('=');
      if (/expires=Thu, 01 Jan 1970/i.test(cookie)) this.#cookies.delete(name.trim());
      else this.#cookies.set(name.trim(), value.join('='));
    }
    return { url, status: response.status, headers: response.headers, body: await response.text() };
  }

  /** A request, then its redirects, until a page or a redirect to the client (`stopAt`). */
  async navigate(url: string, init: RequestOptions = {}): Promise<Page> {
    let page = await this.request(url, init);
    while (page.status >= 300 && page.status < 400) {
      const next = new URL(page.headers.get('location')!, page.url).href;
      if (next.startsWith(this.stopAt)) return { ...page, url: next };
      page = await this.request(next);
    }
    return page;
  }
}

/** The action of the form whose submit button says `button` (or of the only form). */
export function formAction(page: Page, button?: string): string {
  const forms = [...page.body.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = button ? forms.find((f) => f[2].includes(`>${button}</button>`)) : forms[0];
  if (!form) throw new Error(`no form${button ? ` with a "${button}" button` : ''} on ${page.url} (${page.status}):\n${page.body}`);
  return new URL(form[1].replace(/&#38;/g, '&'), page.url).href;
}

/** A registered client as the tests use it (a type, not an interface: oauth4webapi wants an index signature). */
export type TestClient = {
  readonly client_id: string;
  readonly client_secret?: string;
  readonly redirect_uri: string;
};

/** An authorization request with PKCE; what the relying party keeps to finish it. */
export interface AuthorizationStart {
  readonly url: string;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

/** Builds an authorization request URL (code flow, S256 PKCE unless `pkce: false`). */
export async function authorizationUrl(
  as: oauth.AuthorizationServer,
  client: TestClient,
  params: Record<string, string> & { pkce?: never } = {},
  options: { pkce?: boolean } = {},
): Promise<AuthorizationStart> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('redirect_uri', client.redirect_uri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', 'openid');
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  if (options.pkce !== false) {
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
  }
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return { url: url.href, verifier, state, nonce };
}

/** Fills in and submits the sign-in form of `page`. */
export function signIn(browser: Browser, page: Page, email: string, password: string): Promise<Page> {
  return browser.navigate(formAction(page), { form: { email, password } });
}

/** Creates an account through the admin API; fails the test unless it was created. */
export async function createAccount(issuer: string, admin: string, fields: { email?: string; password?: string; name?: string } = {}) {
  const body = {
    email: fields.email ?? `person-${randomBytes(6).toString('hex')}@example.test`,
    password: fields.password ?? `pw-${randomBytes(12).toString('base64url')}`,
    name: fields.name ?? 'Ada Lovelace',
  };
  const answer = await adminCall(issuer, admin, 'POST', '/accounts', body);
  if (answer.status !== 201) throw new Error(`account not created: ${answer.status} ${JSON.stringify(answer.body)}`);
  return { ...body, id: answer.body.id as string };
}
