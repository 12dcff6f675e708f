/**
 * The fixtures of the entitlements-cost scenario (issue 17): a person signed in through the real pages
 * over HTTP (test/helpers/login.ts, as the end-to-end tests do), before any timed window, and two opaque
 * tokens of theirs for two resource servers alike in everything but `enforce_entitlements`. The
 * entitled one gives its scope to a group the person is in, with two roles, so its introspection
 * answers carry `roles` and every answer runs the entitlement check.
 */
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { authorizationUrl, Browser, createAccount, formAction, signIn } from '../../test/helpers/login.js';
import { adminCall, discover as discoverServer, registerClient, registerResourceServer } from '../../test/helpers/oauth.js';
import { fetchToken, tokenRequest, type Credentials } from './http.js';
import { PROJECT_SCOPE } from './project-server.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
/** Never contacted: the sign-in stops at the redirect (the relying party is the bench itself). */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** A person's opaque token for one resource server, with that resource server's introspection credentials. */
export interface PersonToken {
  readonly token: string;
  readonly resourceServer: Credentials;
}

/** The two sides of the entitlements-cost scenario. */
export interface PersonFixtures {
  /** For a resource server with `enforce_entitlements: false`. */
  readonly plain: PersonToken;
  /** For a resource server with `enforce_entitlements: true`, the person entitled through a group with two roles. */
  readonly entitled: PersonToken;
  /** The app's credentials and the person's refresh token (not rotated: a confidential client's), for the refresh pair. */
  readonly refresh: { readonly app: Credentials; readonly refreshToken: string; readonly plainResource: string; readonly entitledResource: string };
}

/** Registers what the scenario needs through the admin API, signs a person in and gets their two tokens. */
export async function provisionPerson(baseUrl: string, tokenPath: string, admin: Credentials): Promise<PersonFixtures> {
  const adminToken = await fetchToken(baseUrl, tokenRequest(tokenPath, admin, 'admin:read admin:write'));
  const created = async (path: string, body: Record<string, unknown>) => {
    const answer = await adminCall(baseUrl, adminToken, 'POST', path, body);
    if (answer.status !== 201 && answer.status !== 200) throw new Error(`POST /admin${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body as { id: string };
  };
  const suffix = randomBytes(4).toString('hex');
  // Opaque whatever the client's trust: the scenario is about reference tokens.
  const api = (name: string, enforce: boolean) =>
    registerResourceServer(baseUrl, adminToken, {
      identifier: `https://${name}-${suffix}.bench.test/`,
      name: `Bench ${name}`,
      scopes: [PROJECT_SCOPE],
      token_format: 'opaque',
      enforce_entitlements: enforce,
    });
  const plain = await api('person-plain', false);
  const entitled = await api('person-entitled', true);
  const group = await created('/groups', { name: `Bench readers ${suffix}` });
  await created(`/resource-servers/${entitled.id}/entitlements`, { group_id: group.id, scopes: [PROJECT_SCOPE], roles: ['auditor', 'reader'] });
  const person = await createAccount(baseUrl, adminToken);
  await created(`/groups/${group.id}/members`, { account_ids: [person.id] });
  const app = await registerClient(baseUrl, adminToken, {
    client_name: 'Bench intranet',
    trust: 'internal',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT_URI],
    resources: [plain.identifier, entitled.identifier],
    scope: `openid offline_access ${PROJECT_SCOPE}`,
  });
  const client = { client_id: app.client_id, client_secret: app.client_secret, redirect_uri: REDIRECT_URI };

  const as = await discoverServer(baseUrl);
  const browser = new Browser(REDIRECT_URI);
  const start = await authorizationUrl(as, client, { scope: `openid offline_access ${PROJECT_SCOPE}` });
  const url = new URL(start.url);
  for (const resource of [plain.identifier, entitled.identifier]) url.searchParams.append('resource', resource);
  let page = await signIn(browser, await browser.navigate(url.href), person.email, person.password);
  if (page.status === 200 && page.body.includes('>Allow</button>')) page = await browser.navigate(formAction(page, 'Allow'), { form: {} });
  const code = oauth.validateAuthResponse(as, client, new URL(page.url), start.state);
  const auth = oauth.ClientSecretBasic(app.client_secret);
  const first = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, code, REDIRECT_URI, start.verifier, { ...insecure, additionalParameters: { resource: plain.identifier } }),
    { expectedNonce: start.nonce, requireIdToken: true },
  );
  // Both tokens come from a refresh of the same grant, so they differ in their resource server only.
  let refreshToken = first.refresh_token;
  const refreshedFor = async (resource: string) => {
    if (!refreshToken) throw new Error('the person sign-in gave no refresh token');
    const answer = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, { ...insecure, additionalParameters: { resource } }),
    );
    refreshToken = answer.refresh_token ?? refreshToken;
    return answer.access_token;
  };
  const plainToken = await refreshedFor(plain.identifier);
  const entitledToken = await refreshedFor(entitled.identifier);
  const credentials = (rs: typeof plain): Credentials => ({ clientId: rs.introspection.client_id, clientSecret: rs.introspection.client_secret });
  return {
    plain: { token: plainToken, resourceServer: credentials(plain) },
    entitled: { token: entitledToken, resourceServer: credentials(entitled) },
    refresh: {
      app: { clientId: app.client_id, clientSecret: app.client_secret },
      refreshToken: refreshToken!,
      plainResource: plain.identifier,
      entitledResource: entitled.identifier,
    },
  };
}
