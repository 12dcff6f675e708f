/**
 * Outside clients for end-to-end tests: oauth4webapi for the OAuth side (as a client or resource
 * server written by someone else would call us), and plain fetch for the admin API.
 */
import * as oauth from 'oauth4webapi';
import { testAdmin } from './server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** The authorization server metadata, found by discovery (never by a hard-coded path). */
export async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, insecure));
}

/** The answer to a token request: the parsed success, or the OAuth error with its HTTP status. */
export type TokenOutcome =
  { ok: true; accessToken: string; expiresIn: number; scope: string | undefined; tokenType: string } | { ok: false; status: number; error: string };

/** A client credentials grant with client_secret_basic. */
export async function clientCredentials(
  as: oauth.AuthorizationServer,
  clientId: string,
  clientSecret: string,
  params: { resource?: string; scope?: string } = {},
): Promise<TokenOutcome> {
  const body = new URLSearchParams();
  if (params.resource) body.set('resource', params.resource);
  if (params.scope) body.set('scope', params.scope);
  const response = await oauth.clientCredentialsGrantRequest(as, { client_id: clientId }, oauth.ClientSecretBasic(clientSecret), body, insecure);
  if (!response.ok) {
    // Read the RFC 6749 error body directly: oauth4webapi raises a challenge error, not the body, on 401.
    const error = (await response.json()) as { error: string };
    return { ok: false, status: response.status, error: error.error };
  }
  const result = await oauth.processClientCredentialsResponse(as, { client_id: clientId }, response);
  return { ok: true, accessToken: result.access_token, expiresIn: result.expires_in!, scope: result.scope, tokenType: result.token_type };
}

/** Like `clientCredentials`, but fails the test unless a token was issued. */
export async function issueToken(
  as: oauth.AuthorizationServer,
  clientId: string,
  clientSecret: string,
  params: { resource?: string; scope?: string } = {},
): Promise<{ accessToken: string; expiresIn: number; scope: string | undefined }> {
  const outcome = await clientCredentials(as, clientId, clientSecret, params);
  if (!outcome.ok) throw new Error(`token request failed: ${outcome.status} ${outcome.error}`);
  return outcome;
}

/** RFC 7662 introspection with the resource server's credentials; the raw JSON answer. */
export async function introspect(as: oauth.AuthorizationServer, clientId: string, clientSecret: string, token: string): Promise<Record<string, unknown>> {
  const response = await oauth.introspectionRequest(as, { client_id: clientId }, oauth.ClientSecretBasic(clientSecret), token, insecure);
  if (response.status !== 200) throw new Error(`introspection answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

/**
 * Introspection as the resource server `rs` asks for it (HTTP Basic), answered as is: `accept` names
 * the media type it asks for (RFC 9701's signed answer, or JSON).
 */
export function introspectAsIs(
  as: oauth.AuthorizationServer,
  rs: { readonly introspection: { readonly client_id: string; readonly client_secret: string } },
  token: string,
  accept: string,
): Promise<Response> {
  return fetch(as.introspection_endpoint!, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${rs.introspection.client_id}:${rs.introspection.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept,
    },
    body: new URLSearchParams({ token }),
  });
}

/** RFC 7009 revocation with the client's credentials; the HTTP status. */
export async function revoke(as: oauth.AuthorizationServer, clientId: string, clientSecret: string, token: string): Promise<number> {
  const response = await oauth.revocationRequest(as, { client_id: clientId }, oauth.ClientSecretBasic(clientSecret), token, insecure);
  await response.arrayBuffer();
  return response.status;
}

/** An admin access token for the test admin client (both admin scopes). */
export async function adminToken(issuer: string): Promise<string> {
  const as = await discover(issuer);
  const { clientId, clientSecret } = testAdmin(issuer);
  const { accessToken } = await issueToken(as, clientId, clientSecret, { scope: 'admin:read admin:write' });
  return accessToken;
}

/** A call to the admin API; the status, headers and parsed JSON body. */
export async function adminCall(
  issuer: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert the body field by field
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${issuer}/admin${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** Registers a resource server through the admin API; fails the test unless it was created. */
export async function registerResourceServer(issuer: string, token: string, body: Record<string, unknown>) {
  const answer = await adminCall(issuer, token, 'POST', '/resource-servers', body);
  if (answer.status !== 201) throw new Error(`resource server not created: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as { id: string; identifier: string; introspection: { client_id: string; client_secret: string } };
}

/** Registers a client through the admin API; fails the test unless it was created. */
export async function registerClient(issuer: string, token: string, body: Record<string, unknown>) {
  const answer = await adminCall(issuer, token, 'POST', '/clients', body);
  if (answer.status !== 201) throw new Error(`client not created: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as { client_id: string; client_secret: string };
}

/** A resource identifier unique to this test run. */
export const uniqueResource = (name: string) => `https://${name}.${Math.random().toString(36).slice(2, 10)}.example.test/`;

/** The registered resource server with this identifier, read page after page (every file of a run shares the database). */
export async function findResourceServer(issuer: string, token: string, identifier: string): Promise<{ id: string; identifier: string } | undefined> {
  let cursor: string | null = null;
  do {
    const page = await adminCall(issuer, token, 'GET', `/resource-servers?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    const match = (page.body.items as Array<{ id: string; identifier: string }>).find((rs) => rs.identifier === identifier);
    if (match) return match;
    cursor = page.body.next_cursor as string | null;
  } while (cursor);
  return undefined;
}

/** An entry of the audit trail, as `GET /admin/audit` lists it. */
export interface AuditEntry {
  readonly action: string;
  readonly target: string;
  readonly actor: string;
  readonly details: Record<string, unknown>;
}

/**
 * The audit trail, page after page (every file of a run shares the database and writes to it),
 * narrowed by the API's own filters when given.
 */
export async function auditTrail(
  issuer: string,
  token: string,
  filters: { readonly target?: string; readonly actor?: string; readonly action?: string } = {},
): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  const query = new URLSearchParams({ limit: '100', ...filters });
  let cursor: string | null = null;
  do {
    if (cursor) query.set('cursor', cursor);
    const page = await adminCall(issuer, token, 'GET', `/audit?${query.toString()}`);
    if (page.status !== 200) throw new Error(`audit trail: ${page.status} ${JSON.stringify(page.body)}`);
    entries.push(...(page.body.items as AuditEntry[]));
    cursor = page.body.next_cursor as string | null;
  } while (cursor);
  return entries;
}
