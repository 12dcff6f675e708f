/**
 * The account page is a first-party client of this server: it signs people in through the server's
 * own OpenID Connect flow (authorization code with PKCE), like any app. Its client is registered in
 * PostgreSQL like every other, made sure of at start (as the bootstrap admin client is), so the
 * provider, the token policy and the client checks treat it as they treat any client.
 */
import { SYSTEM_ACTOR } from '../audit/audit.js';
import type { AdminBootstrapDependencies } from '../admin/admin-bootstrap.js';
import type { ClientMetadata } from '../clients/client.js';
import { selectClientWithSecrets } from '../clients/client-repository.js';
import { createClient, updateClient } from '../clients/client-service.js';
import { ConflictError } from '../shared/errors.js';
import { sha256Base64Url } from '../shared/secrets.js';

/** Where the account page lives. */
export const ACCOUNT_PAGE_PATH = '/account';
/** Where the provider sends the browser back with the code. */
export const ACCOUNT_CALLBACK_PATH = `${ACCOUNT_PAGE_PATH}/callback`;

/** The name people see for it (and the admin API lists). */
const ACCOUNT_PAGE_CLIENT_NAME = 'Account page';

/**
 * The account page's client id for `issuer`: `account-page-` and 12 characters of the issuer's
 * digest. One per issuer, as its redirect URI is under the issuer: a new ISSUER gets a client of its
 * own, and servers with different issuers can share one database (the test suite does).
 */
export function accountPageClientId(issuer: string): string {
  return `account-page-${sha256Base64Url(issuer).slice(0, 12)}`;
}

/** The account page's redirect URI under `issuer`. */
export const accountCallbackUrl = (issuer: string): string => `${issuer}${ACCOUNT_CALLBACK_PATH}`;

/**
 * Its metadata: a public client (no secret: nothing would keep one better than its redirect URI under
 * the issuer and PKCE), the code flow, `openid` only, no API. `internal`, so no consent page.
 */
export function accountPageClientMetadata(issuer: string): ClientMetadata {
  return {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [accountCallbackUrl(issuer)],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: 'none',
    scope: 'openid',
    resources: [],
  };
}

/** Metadata as JSON with its keys in order: PostgreSQL's jsonb keeps no key order. */
const canonical = (metadata: ClientMetadata): string => JSON.stringify(Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b))));

/**
 * Makes sure the account page's client of this issuer exists with its metadata (an admin's change to
 * it is put back at the next start; disabling it is kept, and turns the account page off).
 */
export async function ensureAccountPageClient(deps: AdminBootstrapDependencies): Promise<void> {
  const change = { db: deps.db, bus: deps.bus, actor: SYSTEM_ACTOR };
  const clientId = accountPageClientId(deps.issuer);
  const metadata = accountPageClientMetadata(deps.issuer);
  const existing = await selectClientWithSecrets(deps.db, clientId);
  if (existing) {
    if (canonical(existing.metadata) !== canonical(metadata) || existing.trust !== 'internal') {
      await updateClient(change, deps.validateClientMetadata, clientId, {
        clientName: ACCOUNT_PAGE_CLIENT_NAME,
        trust: 'internal',
        metadata,
        disabled: existing.disabled,
      });
    }
    return;
  }
  try {
    await createClient(change, deps.validateClientMetadata, { clientName: ACCOUNT_PAGE_CLIENT_NAME, trust: 'internal', metadata }, { clientId });
    deps.logger.info({ clientId }, 'account page client created');
  } catch (error) {
    // Another instance created it at the same moment.
    if (!(error instanceof ConflictError)) throw error;
  }
}
