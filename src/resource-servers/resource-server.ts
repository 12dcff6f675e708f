/** The resource server (audience) as the rest of the server sees it: never a database row. */
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
  /** The client id the resource server introspects with (and polls its security events with). */
  readonly introspectionClientId: string;
  /** Where its security events are pushed (RFC 8935), or `null`: it polls them (RFC 8936). */
  readonly eventsEndpoint: string | null;
  /** The bearer credential presented at `eventsEndpoint`, sealed under a key-encryption key; never shown. */
  readonly eventsEndpointToken: { readonly sealed: string; readonly kekId: string } | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
