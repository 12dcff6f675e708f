/**
 * OpenID Connect Back-Channel Logout 1.0 around oidc-provider's `features.backchannelLogout`: the
 * engine builds and signs the logout tokens and knows a session's clients; this file
 * - delivers them in the background with bounded retries, so a slow or dead client never holds up
 *   the person's logout page (the engine awaits every delivery before answering);
 * - decides where they may go: the engine refuses loopback and private addresses (SSRF guard); outside
 *   production loopback is allowed, in production only public addresses unless the operator allows
 *   private networks (`BACKCHANNEL_LOGOUT_PRIVATE_NETWORKS`);
 * - tells the clients when an account is disabled or deleted, which ends its sessions outside the engine.
 */
import type Provider from 'oidc-provider';
import type { Configuration } from 'oidc-provider';
import type { AccountSessions } from '../accounts/account-service.js';
import type { Logger } from '../observability/logger.js';
import type { EndedSignIn, TokenStore } from '../tokens/token-store.js';

/** Where logout tokens may be delivered. */
export interface LogoutDeliveryPolicy {
  /** Outside production: loopback addresses are allowed (test receivers, local development). */
  readonly allowLoopback: boolean;
  /** The operator allows private and other special-use addresses (an intranet of clients). */
  readonly allowPrivateNetworks: boolean;
}

/** Attempts per logout token, and the pause before each retry (ms): 3 tries within about 6 s. */
export const LOGOUT_RETRY_DELAYS_MS = [1_000, 5_000] as const;
/** How long one delivery may take. */
const DELIVERY_TIMEOUT_MS = 2_500;

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

type Fetch = NonNullable<Configuration['fetch']>;
type FetchOptions = RequestInit & { dispatcher?: unknown };

const isLogoutToken = (options: FetchOptions) => options.method === 'POST' && options.body instanceof URLSearchParams && options.body.has('logout_token');

/**
 * The provider's `fetch`: logout tokens are queued and answered 204 at once (the engine only needs to
 * hear that it went well); every other request (a client's jwks_uri, ...) is made as the engine asks.
 */
export function logoutDeliveringFetch(policy: LogoutDeliveryPolicy, logger: Logger): Fetch {
  return async (url, init) => {
    const options: FetchOptions = init ?? {};
    if (!isLogoutToken(options)) return fetch(url, init);
    const target = new URL(url instanceof Request ? url.url : url);
    // The engine's SSRF guard (a dispatcher that drops special-use addresses) stays unless allowed.
    const unguarded = policy.allowPrivateNetworks || (policy.allowLoopback && LOOPBACK_HOST.test(target.host.replace(/:\d+$/, '')));
    const { signal: _signal, dispatcher, ...rest } = options;
    const request = { ...rest, ...(unguarded ? {} : { dispatcher }) } as RequestInit;
    void deliver(target, request, logger);
    return new Response(null, { status: 204 });
  };
}

async function deliver(target: URL, request: RequestInit, logger: Logger): Promise<void> {
  // The token is never logged: only where it went.
  const where = `${target.origin}${target.pathname}`;
  for (let attempt = 0; ; attempt++) {
    let failure: string;
    let retry = true;
    try {
      const response = await fetch(target, { ...request, redirect: 'manual', signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
      await response.arrayBuffer().catch(() => undefined);
      if (response.status === 200 || response.status === 204) {
        logger.info({ backchannelLogoutUri: where, attempt: attempt + 1 }, 'logout token delivered');
        return;
      }
      failure = `answered ${response.status}`;
      // A 400 is the client refusing this token (it could not validate it): retrying will not help.
      retry = response.status !== 400;
    } catch (error) {
      failure = (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message;
    }
    const delay = retry ? LOGOUT_RETRY_DELAYS_MS[attempt] : undefined;
    if (delay === undefined) {
      logger.warn({ backchannelLogoutUri: where, attempts: attempt + 1, reason: failure }, 'logout token not delivered');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay).unref());
  }
}

/** Sends a logout token to each client of the ended sign-ins that registered a back-channel logout URI. */
export async function notifyEndedSignIns(provider: Provider, accountId: string, signIns: readonly EndedSignIn[], logger: Logger): Promise<void> {
  const seen = new Set<string>();
  await Promise.all(
    signIns.map(async ({ clientId, sid }) => {
      const key = `${clientId} ${sid ?? ''}`;
      if (seen.has(key)) return;
      seen.add(key);
      const client = await provider.Client.find(clientId).catch(() => undefined);
      if (!client?.backchannelLogoutUri) return;
      // Delivery is queued by logoutDeliveringFetch; this only builds and signs the token.
      await (client as unknown as { backchannelLogout(sub: string, sid: string | undefined): Promise<void> })
        .backchannelLogout(accountId, sid)
        .catch((error: Error) => logger.warn({ clientId, reason: error.message }, 'logout token not sent'));
    }),
  );
}

/**
 * The account sessions of the admin API: ending them in the token store also tells their clients.
 * A disabled client is not found by the provider, and hears nothing.
 */
export function sessionsWithBackchannelLogout(store: TokenStore, currentProvider: () => Provider, logger: Logger): AccountSessions {
  return {
    revokeAccount: async (accountId, options) => {
      const ended = await store.revokeAccount(accountId, options);
      await notifyEndedSignIns(currentProvider(), accountId, ended, logger);
    },
  };
}
