/**
 * What a token issued by token exchange (RFC 8693, token-exchange.ts) carries beyond an ordinary
 * access token, and the one reading of it that introspection (both paths) and the exchange itself use
 * to tell whether such a token is still alive. In a JWT these are claims; an opaque token keeps them
 * in its stored `extra`.
 */
import type { ClientRegistry } from '../clients/client-registry.js';
import type { TokenStore } from '../tokens/token-store.js';

/** The grant type of RFC 8693. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/**
 * The claim naming the client the subject's first token was issued to (the client of the person's
 * sign-in, or the client of a client credentials token). The exchanged token dies with that client
 * (disabled, deleted, tokens revoked in bulk), as the subject token does. Kept out of introspection
 * answers (see `EXCHANGE_INTERNAL_CLAIMS`); resource servers reading a JWT see it, as they see `gid`.
 */
export const SUBJECT_CLIENT_CLAIM = 'subject_client_id';

/** Claims of an exchanged token that are for this server's own checks, never part of an introspection answer. */
export const EXCHANGE_INTERNAL_CLAIMS = [SUBJECT_CLIENT_CLAIM, 'gid'] as const;

/** Deepest `act` nesting read (a chain of exchanges longer than this is refused, see token-exchange.ts). */
export const MAX_ACTOR_CHAIN = 8;

/** RFC 8693 section 4.1 `act`: the acting client, and the actors before it. */
export interface ActorClaim {
  readonly sub: string;
  readonly client_id: string;
  readonly act?: ActorClaim;
}

/** What decides whether an exchanged token is alive, besides what any token is checked for. */
export interface ExchangeFacts {
  /** The client of the subject's first token (see SUBJECT_CLIENT_CLAIM). */
  readonly subjectClientId: string;
  /** Every client of the chain of exchanges, the latest first (the `act` chain). */
  readonly actorClientIds: readonly string[];
  /** The SHA-256 digest of the grant (person's sign-in) the subject token came from, when it had one. */
  readonly grantDigest: string | undefined;
}

/** The actors of an `act` claim, latest first; `undefined` when it is not one (or nests too deep). */
export function actorChainOf(act: unknown): string[] | undefined {
  const actors: string[] = [];
  for (let at: unknown = act; at !== undefined; at = (at as { act?: unknown }).act) {
    if (typeof at !== 'object' || at === null || typeof (at as { sub?: unknown }).sub !== 'string' || actors.length >= MAX_ACTOR_CHAIN) return undefined;
    actors.push((at as { sub: string }).sub);
  }
  return actors;
}

/** The exchange facts of a token's claims (or stored `extra`); `undefined` for a token not issued by exchange. */
export function exchangeFactsOf(claims: Readonly<Record<string, unknown>> | undefined): ExchangeFacts | undefined {
  const subjectClientId = claims?.[SUBJECT_CLIENT_CLAIM];
  if (typeof subjectClientId !== 'string') return undefined;
  // Written by this server only (signed, or stored); an unreadable chain is treated as one that names nobody alive.
  const actorClientIds = actorChainOf(claims!.act) ?? [''];
  const grantDigest = typeof claims!.gid === 'string' ? claims!.gid : undefined;
  return { subjectClientId, actorClientIds, grantDigest };
}

/**
 * Whether an exchanged token issued at `issuedAt` is still alive as far as its chain goes: the
 * subject's client and every acting client allow a token issued then, and the subject's grant (when
 * it had one) still exists. The reads go out together.
 */
export async function exchangeChainAlive(
  deps: { readonly clients: ClientRegistry; readonly tokenStore: TokenStore },
  facts: ExchangeFacts,
  issuedAt: number,
): Promise<boolean> {
  const checks: Promise<boolean>[] = [facts.subjectClientId, ...facts.actorClientIds].map((clientId) => deps.clients.allowsTokenIssuedAt(clientId, issuedAt));
  if (facts.grantDigest !== undefined) checks.push(deps.tokenStore.isGrantActive(facts.grantDigest));
  return (await Promise.all(checks)).every(Boolean);
}
