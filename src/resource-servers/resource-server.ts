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
  /** The client id the resource server introspects with. */
  readonly introspectionClientId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
