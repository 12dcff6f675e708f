/**
 * Groups and entitlements through the admin API, and a person's tokens through a real sign-in
 * (code + PKCE, consent approved when shown), as the groups and entitlement-events tests use them.
 */
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, formAction, signIn, type TestClient } from './login.js';
import { adminCall } from './oauth.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** Creates a group; fails the test unless it was created. */
export async function createGroup(issuer: string, admin: string, name: string, parentId?: string): Promise<string> {
  const answer = await adminCall(issuer, admin, 'POST', '/groups', { name, ...(parentId ? { parent_id: parentId } : {}) });
  if (answer.status !== 201) throw new Error(`group not created: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.id as string;
}

/** Creates an entitlement; fails the test unless it was created. */
export async function entitle(issuer: string, admin: string, resourceServerId: string, body: Record<string, unknown>): Promise<{ id: string }> {
  const answer = await adminCall(issuer, admin, 'POST', `/resource-servers/${resourceServerId}/entitlements`, body);
  if (answer.status !== 201) throw new Error(`entitlement not created: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as { id: string };
}

/** Adds accounts to a group: the admin API's answer. */
export function addMembers(issuer: string, admin: string, groupId: string, accountIds: string[]) {
  return adminCall(issuer, admin, 'POST', `/groups/${groupId}/members`, { account_ids: accountIds });
}

/** Signs `person` in through `app` asking `scope` (of `resources`), approving consent when shown; the callback URL. */
export async function authorizePerson(
  as: oauth.AuthorizationServer,
  app: TestClient,
  person: { email: string; password: string },
  scope: string,
  resources: string[],
): Promise<{ callback: URL; start: { verifier: string; state: string; nonce: string } }> {
  const browser = new Browser(app.redirect_uri);
  const start = await authorizationUrl(as, app, { scope });
  const url = new URL(start.url);
  url.searchParams.delete('resource');
  for (const resource of resources) url.searchParams.append('resource', resource);
  let page = await signIn(browser, await browser.navigate(url.href), person.email, person.password);
  if (page.status === 200 && page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
  return { callback: new URL(page.url), start };
}

/** A code exchange for `resource`: the token response as an outside client reads it. */
export async function exchangeCode(
  as: oauth.AuthorizationServer,
  app: TestClient & { client_secret: string },
  callback: URL,
  start: { verifier: string; state: string; nonce: string },
  resource: string,
) {
  const code = oauth.validateAuthResponse(as, app, callback, start.state);
  const response = await oauth.authorizationCodeGrantRequest(as, app, oauth.ClientSecretBasic(app.client_secret), code, app.redirect_uri, start.verifier, {
    ...insecure,
    additionalParameters: { resource },
  });
  return oauth.processAuthorizationCodeResponse(as, app, response, { expectedNonce: start.nonce, requireIdToken: true });
}

/** A refresh for `resource` (narrowed to `scope` when given): the raw answer (status and JSON). */
export async function refreshFor(
  as: oauth.AuthorizationServer,
  app: TestClient & { client_secret: string },
  refreshToken: string,
  resource: string,
  scope?: string,
) {
  const response = await oauth.refreshTokenGrantRequest(as, app, oauth.ClientSecretBasic(app.client_secret), refreshToken, {
    ...insecure,
    additionalParameters: { resource, ...(scope !== undefined ? { scope } : {}) },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
