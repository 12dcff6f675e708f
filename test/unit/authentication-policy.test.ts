/** The authentication policy (src/issuer/authentication-policy.ts): levels, requirements, shortfalls. */
import { describe, expect, it } from '@jest/globals';
import {
  ACR_MFA,
  ACR_PASSWORD,
  acrForMethods,
  acrFromValues,
  amrFor,
  authenticationShortfall,
  requiredAuthentication,
  type ResourceServerAuthentication,
} from '../../src/issuer/authentication-policy.js';

const api: ResourceServerAuthentication = {
  requiredAcr: null,
  sensitiveScopes: ['ledger:write'],
  sensitiveScopesAcr: ACR_MFA,
  sensitiveScopesAcrMaxAge: 300,
};

describe('what a sign-in is worth', () => {
  it.each([
    [['pwd'], ['pwd'], ACR_PASSWORD],
    [['pwd', 'otp'], ['pwd', 'otp', 'mfa'], ACR_MFA],
    [['pwd', 'hwk', 'user'], ['pwd', 'hwk', 'user', 'mfa'], ACR_MFA],
    [['swk', 'user'], ['swk', 'user', 'mfa'], ACR_MFA],
    [['swk'], ['swk'], ACR_PASSWORD],
    [['otp'], ['otp'], ACR_PASSWORD],
  ] as const)('%j reports amr %j and acr %s', (methods, amr, acr) => {
    expect(amrFor(methods)).toEqual(amr);
    expect(acrForMethods(amrFor(methods))).toBe(acr);
  });
});

describe('what a request needs', () => {
  it('takes the weakest known level a client lists, ignoring unknown ones', () => {
    expect(acrFromValues([ACR_MFA, ACR_PASSWORD])).toBe(ACR_PASSWORD);
    expect(acrFromValues(['urn:other', ACR_MFA])).toBe(ACR_MFA);
    expect(acrFromValues(['urn:other'])).toBeUndefined();
  });

  it('is the strongest of client, API and account; a client cannot lower the others', () => {
    expect(requiredAuthentication({})).toEqual({ acr: undefined, maxAgeSeconds: undefined });
    expect(requiredAuthentication({ requested: { acrValues: [ACR_PASSWORD] }, accountMfaRequired: true }).acr).toBe(ACR_MFA);
    expect(requiredAuthentication({ requested: { essentialAcr: [ACR_MFA] } }).acr).toBe(ACR_MFA);
    expect(requiredAuthentication({ resourceServer: { ...api, requiredAcr: ACR_MFA }, requested: { acrValues: [ACR_PASSWORD] } }).acr).toBe(ACR_MFA);
  });

  it('asks more only when a sensitive scope is asked for', () => {
    expect(requiredAuthentication({ resourceServer: api, scopes: ['ledger:read'] })).toEqual({ acr: undefined, maxAgeSeconds: undefined });
    expect(requiredAuthentication({ resourceServer: api, scopes: ['ledger:read', 'ledger:write'] })).toEqual({ acr: ACR_MFA, maxAgeSeconds: 300 });
  });
});

describe('whether a session is enough', () => {
  const now = 1_000_000;
  it('steps up a weak sign-in, signs an old one in again, lets a strong recent one through', () => {
    const requirement = { acr: ACR_MFA, maxAgeSeconds: 300 } as const;
    expect(authenticationShortfall({ acr: ACR_PASSWORD, authTime: now - 10 }, requirement, now)).toBe('step_up');
    expect(authenticationShortfall({ acr: ACR_MFA, authTime: now - 301 }, requirement, now)).toBe('reauthenticate');
    expect(authenticationShortfall({ acr: ACR_MFA, authTime: now - 300 }, requirement, now)).toBe('none');
    expect(authenticationShortfall({ acr: undefined, authTime: now }, { acr: ACR_PASSWORD, maxAgeSeconds: undefined }, now)).toBe('step_up');
    expect(authenticationShortfall({ acr: ACR_PASSWORD, authTime: now }, { acr: undefined, maxAgeSeconds: undefined }, now)).toBe('none');
  });
});
