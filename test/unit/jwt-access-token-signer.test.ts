/**
 * The JWT access token signer of the dedicated client_credentials path (src/issuer/jwt-access-token.ts):
 * for every algorithm the server can sign with, what it signs verifies with jose against the published
 * keys, carries the provider's header, and (RS256, whose signatures are deterministic) is byte for byte
 * what jose, the provider's signer, makes of the same header and claims. Only current keys sign.
 */
import { describe, expect, it } from '@jest/globals';
import { calculateJwkThumbprint, CompactSign, createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { JwtAccessTokenSigner, signAccessToken } from '../../src/issuer/jwt-access-token.js';
import { SIGNING_ALGS, type KeyRing, type SigningAlg } from '../../src/keys/signing-keys.js';

/** A key of `alg` as signing-keys.ts stores it: private and public JWKs stamped with kid, alg and use. */
async function keyOf(alg: SigningAlg): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const stamp = { kid, alg, use: 'sig' };
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), ...stamp }, publicJwk: { ...publicJwk, ...stamp } };
}

/** A key ring with a current and a next key for every algorithm. */
async function keyRing(): Promise<{ ring: KeyRing; next: Record<SigningAlg, string>; privateJwks: Record<string, JWK> }> {
  const current: Partial<Record<SigningAlg, string>> = {};
  const next = {} as Record<SigningAlg, string>;
  const keys = [];
  for (const alg of SIGNING_ALGS) {
    const [now, later] = [await keyOf(alg), await keyOf(alg)];
    current[alg] = now.kid;
    next[alg] = later.kid;
    keys.push(now, later);
  }
  const ring: KeyRing = {
    algs: SIGNING_ALGS,
    privateJwks: keys.map((k) => k.privateJwk),
    publicJwks: keys.map((k) => k.publicJwk),
    currentKid: current,
    fingerprint: 'test',
  };
  return { ring, next, privateJwks: Object.fromEntries(keys.map((k) => [k.kid, k.privateJwk])) };
}

const ISSUER = 'https://login.example.com';
const claims = (audience: string) => ({
  jti: 'a'.repeat(43),
  sub: 'client-1',
  iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 300,
  scope: 'orders:read',
  client_id: 'client-1',
  iss: ISSUER,
  aud: audience,
});

describe('JwtAccessTokenSigner', () => {
  it.each(SIGNING_ALGS)('%s: verifies against the published keys, with the provider header', async (alg) => {
    const { ring } = await keyRing();
    const key = new JwtAccessTokenSigner(ring).key(alg, ring.currentKid[alg]!);
    expect(key).toBeDefined();
    const token = await signAccessToken(key!, claims('https://api.example.com'));
    expect(Object.entries(decodeProtectedHeader(token))).toEqual([
      ['alg', alg],
      ['typ', 'at+jwt'],
      ['kid', ring.currentKid[alg]],
    ]);
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: ring.publicJwks }), {
      issuer: ISSUER,
      audience: 'https://api.example.com',
      typ: 'at+jwt',
      algorithms: [alg],
    });
    // The claims in the order given (the provider's order).
    expect(Object.keys(payload)).toEqual(Object.keys(claims('x')));
    expect(payload).toEqual(claims('https://api.example.com'));
  });

  it('RS256: byte for byte what jose makes of the same header and claims', async () => {
    const { ring, privateJwks } = await keyRing();
    const kid = ring.currentKid.RS256!;
    const payload = claims('https://api.example.com');
    const ours = await signAccessToken(new JwtAccessTokenSigner(ring).key('RS256', kid)!, payload);
    const jose = await new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateJwks[kid]);
    expect(ours).toBe(jose);
  });

  it('only the current key of each algorithm signs; a kid of another algorithm is no key', async () => {
    const { ring, next } = await keyRing();
    const signer = new JwtAccessTokenSigner(ring);
    for (const alg of SIGNING_ALGS) expect(signer.key(alg, next[alg])).toBeUndefined();
    expect(signer.key('ES256', ring.currentKid.RS256!)).toBeUndefined();
  });

  it('signs only with the enabled algorithms', async () => {
    const { ring } = await keyRing();
    const signer = new JwtAccessTokenSigner({ ...ring, algs: ['RS256'] });
    expect(signer.key('RS256', ring.currentKid.RS256!)).toBeDefined();
    expect(signer.key('ES256', ring.currentKid.ES256!)).toBeUndefined();
  });
});
