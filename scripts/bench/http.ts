/** The few HTTP calls the orchestrator makes itself: discovery, tokens, and the requests it hands to the generator. */
import type { RequestSpec } from './load-protocol.js';

/** Endpoint paths, found by discovery (never hard-coded). */
export interface Endpoints {
  readonly token: string;
  readonly introspection: string;
  readonly revocation: string;
  readonly jwks: string;
}

/** Client credentials, sent as client_secret_basic. */
export interface Credentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** The endpoints of the issuer at `baseUrl`, from its discovery document. */
export async function discover(baseUrl: string): Promise<Endpoints> {
  const response = await fetch(`${baseUrl}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`discovery at ${baseUrl} answered ${response.status}`);
  const metadata = (await response.json()) as Record<string, string>;
  const path = (name: string) => {
    if (!metadata[name]) throw new Error(`discovery at ${baseUrl} has no ${name}`);
    return new URL(metadata[name]).pathname;
  };
  return { token: path('token_endpoint'), introspection: path('introspection_endpoint'), revocation: path('revocation_endpoint'), jwks: path('jwks_uri') };
}

/** RFC 6749 section 2.3.1: each part form-encoded, then base64. */
export function basicAuthorization({ clientId, clientSecret }: Credentials): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

const FORM = 'application/x-www-form-urlencoded';

/** A form POST authenticated with client_secret_basic. */
export function formPost(path: string, credentials: Credentials, body: string): RequestSpec {
  return { method: 'POST', path, headers: { authorization: basicAuthorization(credentials), 'content-type': FORM }, body };
}

/** A client credentials token request. */
export function tokenRequest(path: string, credentials: Credentials, scope: string): RequestSpec {
  return formPost(path, credentials, new URLSearchParams({ grant_type: 'client_credentials', scope }).toString());
}

/** Sends `request` to `baseUrl` once; the status and the parsed JSON body (if any). */
export async function send(baseUrl: string, request: RequestSpec): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const response = await fetch(baseUrl + request.path, { method: request.method, headers: request.headers, body: request.body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/** Sends a token request; the access token, or an error naming what went wrong. */
export async function fetchToken(baseUrl: string, request: RequestSpec): Promise<string> {
  const { status, body } = await send(baseUrl, request);
  if (status !== 200 || typeof body?.access_token !== 'string') throw new Error(`token request to ${baseUrl} answered ${status}: ${JSON.stringify(body)}`);
  return body.access_token;
}
