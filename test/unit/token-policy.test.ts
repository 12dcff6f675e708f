/** The token format policy, row by row (docs/protocol.md, "Token format policy"). */
import { describe, expect, it } from '@jest/globals';
import { decideAccessToken, type PolicyResourceServer } from '../../src/issuer/token-policy.js';

const jwtAudience: PolicyResourceServer = { tokenFormat: 'jwt', sensitiveScopes: ['payments:refund'], accessTokenTtl: null, signingAlg: 'RS256' };
const opaqueAudience: PolicyResourceServer = { ...jwtAudience, tokenFormat: 'opaque' };

describe('decideAccessToken', () => {
  it('internal + jwt audience + no sensitive scope -> JWT, 300 s, the audience algorithm', () => {
    expect(decideAccessToken('internal', jwtAudience, ['payments:read'])).toEqual({ format: 'jwt', ttlSeconds: 300, signingAlg: 'RS256' });
    expect(decideAccessToken('internal', { ...jwtAudience, signingAlg: 'EdDSA' }, [])).toMatchObject({ format: 'jwt', signingAlg: 'EdDSA' });
  });

  it('internal + jwt audience + a sensitive scope -> opaque, 3600 s', () => {
    expect(decideAccessToken('internal', jwtAudience, ['payments:read', 'payments:refund'])).toEqual({ format: 'opaque', ttlSeconds: 3600 });
  });

  it('internal + opaque audience -> opaque, whatever the scopes', () => {
    expect(decideAccessToken('internal', opaqueAudience, ['payments:read'])).toEqual({ format: 'opaque', ttlSeconds: 3600 });
    expect(decideAccessToken('internal', opaqueAudience, ['payments:refund'])).toEqual({ format: 'opaque', ttlSeconds: 3600 });
  });

  it('external -> opaque, whatever the audience and scopes', () => {
    for (const audience of [jwtAudience, opaqueAudience]) {
      for (const scopes of [[], ['payments:read'], ['payments:refund']]) {
        expect(decideAccessToken('external', audience, scopes).format).toBe('opaque');
      }
    }
  });

  it("the audience's access_token_ttl overrides the default of either format", () => {
    expect(decideAccessToken('internal', { ...jwtAudience, accessTokenTtl: 60 }, []).ttlSeconds).toBe(60);
    expect(decideAccessToken('external', { ...jwtAudience, accessTokenTtl: 60 }, []).ttlSeconds).toBe(60);
  });
});
