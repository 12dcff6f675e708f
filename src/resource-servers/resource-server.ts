/** The resource server (audience) as the rest of the server sees it: never a database row. */
import type { Acr } from '../issuer/authentication-policy.js';
import type { SigningAlg } from '../keys/signing-keys.js';

/** An API that tokens are issued for, identified by its RFC 8707 resource indicator. */
export interface ResourceServer {
  readonly id: string;
  readonly identifier: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly sensitiveScopes: readonly string[];
  readonly tokenFormat: 'jwt' | 'opaque';
  /** Seconds; `null` means the default for the token format. */
  readonly accessTokenTtl: number | null;
  readonly signingAlg: SigningAlg;
  /** How introspection answers it by default: RFC 7662 JSON, or an RFC 9701 signed JWT. */
  readonly introspectionResponse: 'json' | 'jwt';
  /** The `acr` every person-held token for it needs (docs/strong-sign-in.md); `null`: none. */
  readonly requiredAcr: Acr | null;
  /** The `acr` a person-held token asking for a sensitive scope needs; `null`: none beyond `requiredAcr`. */
  readonly sensitiveScopesAcr: Acr | null;
  /** The oldest sign-in (seconds) a person-held token asking for a sensitive scope may come from; `null`: any. */
  readonly sensitiveScopesAcrMaxAge: number | null;
  /** The client id the resource server introspects with (and polls its security events with). */
  readonly introspectionClientId: string;
  /** Where its security events are pushed (RFC 8935), or `null`: it polls them (RFC 8936). */
  readonly eventsEndpoint: string | null;
  /** The bearer credential presented at `eventsEndpoint`, sealed under a key-encryption key; never shown. */
  readonly eventsEndpointToken: { readonly sealed: string; readonly kekId: string } | null;
  /**
   * Whether a person's tokens for it carry only the scopes the person is entitled to (docs/groups-and-entitlements.md).
   * Off for resource servers registered before entitlements existed; always on for the admin audience.
   */
  readonly enforceEntitlements: boolean;
  /** Scope name -> what it allows, in words (shown on the consent page). */
  readonly scopeDescriptions: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
