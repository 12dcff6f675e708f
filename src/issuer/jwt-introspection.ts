/**
 * JWT introspection responses (RFC 9701). oidc-provider's `features.jwtIntrospection` is enabled for
 * what it publishes (`introspection_signing_alg_values_supported`), but the answer is signed here,
 * last, because the engine's signer cannot give what RFC 9701 asks: it never sees the JWT access
 * tokens this server answers after it (introspection.ts), and it names the token's audience as `aud`
 * where the RFC wants the caller, on inactive answers too.
 *
 * A caller asks with `Accept: application/token-introspection+jwt`; a resource server registered with
 * `introspection_response: "jwt"` gets signed answers whatever it accepts. The answer is a JWT with
 * header `typ: token-introspection+jwt` and claims `iss`, `aud` (the caller's client id), `iat` and
 * `token_introspection` (the RFC 7662 answer, with the same isolation rules as the JSON one).
 */
import { importJWK, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { KeyRing, SigningAlg } from '../keys/signing-keys.js';
import type { ResourceServerRegistry } from '../resource-servers/resource-server-registry.js';
import { PROTOCOL_ROUTES } from './protocol-routes.js';

/** The media type of RFC 9701 answers, and of the Accept header that asks for one. */
export const INTROSPECTION_JWT_TYPE = 'application/token-introspection+jwt';

const INTROSPECTION_PATH = PROTOCOL_ROUTES.introspection;

/** Whether an Accept header asks for an RFC 9701 answer (the dedicated path leaves those to us). */
export const asksForJwtIntrospection = (accept: string | undefined): boolean =>
  accept !== undefined && accept.split(',').some((part) => part.split(';')[0].trim().toLowerCase() === INTROSPECTION_JWT_TYPE);

/** Signs introspection answers with the current key of each algorithm (keys imported once per ring). */
class IntrospectionSigner {
  readonly #keys = new Map<string, Promise<CryptoKey | KeyObject | Uint8Array>>();

  constructor(
    private readonly issuer: string,
    private readonly keyRing: KeyRing,
  ) {}

  async sign(preferredAlg: SigningAlg, audience: string, answer: Record<string, unknown>): Promise<string> {
    // RS256 is always enabled (OpenID Connect requires it); another algorithm only when configured.
    const alg: SigningAlg = this.keyRing.currentKid[preferredAlg] ? preferredAlg : 'RS256';
    const kid = this.keyRing.currentKid[alg]!;
    let key = this.#keys.get(kid);
    if (!key) {
      const jwk = this.keyRing.privateJwks.find((candidate: JWK) => candidate.kid === kid);
      if (!jwk) throw new Error(`no private key ${kid} for ${alg}`);
      key = importJWK(jwk, alg);
      this.#keys.set(kid, key);
    }
    return new SignJWT({ token_introspection: answer })
      .setProtectedHeader({ alg, kid, typ: 'token-introspection+jwt' })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setIssuedAt()
      .sign(await key);
  }
}

/**
 * Installs the RFC 9701 step. It must run outside every other introspection step (install it before
 * them), so that it signs the final answer.
 */
export function installJwtIntrospection(provider: Provider, deps: { issuer: string; keyRing: KeyRing; resourceServers: ResourceServerRegistry }): void {
  const signer = new IntrospectionSigner(deps.issuer, deps.keyRing);
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== INTROSPECTION_PATH) {
      await next();
      return;
    }
    const asked = asksForJwtIntrospection(ctx.get('accept'));
    // The engine would sign (its way) or refuse on this header: it answers JSON, which is signed below.
    if (asked) ctx.req.headers.accept = 'application/json';
    await next();
    const caller = (ctx as unknown as KoaContextWithOIDC).oidc?.client;
    const answer = ctx.body as Record<string, unknown> | undefined;
    if (ctx.status !== 200 || !caller || !answer || typeof answer !== 'object' || typeof answer.active !== 'boolean') return;
    const resourceServer = deps.resourceServers.byIntrospectionClientId(caller.clientId);
    if (!asked && resourceServer?.introspectionResponse !== 'jwt') return;
    ctx.body = await signer.sign(resourceServer?.signingAlg ?? 'RS256', caller.clientId, answer);
    ctx.type = INTROSPECTION_JWT_TYPE;
    ctx.set('Cache-Control', 'no-store');
  });
}
