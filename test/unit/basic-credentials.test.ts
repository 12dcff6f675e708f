/**
 * basicCredentials (src/issuer/dedicated-path.ts): the client id and secret of a Basic header as the
 * dedicated paths read them (RFC 6749 section 2.3.1: form-encoded, then base64), and the headers they
 * leave to the provider (`undefined`), whose own reading then decides.
 */
import { describe, expect, it } from '@jest/globals';
import { basicCredentials } from '../../src/issuer/dedicated-path.js';

const basic = (id: string, secret: string, scheme = 'Basic') => `${scheme} ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('basicCredentials', () => {
  it('reads the id and secret, whatever the case of the scheme', () => {
    expect(basicCredentials(basic('client-1', 's3cr3t'))).toEqual({ clientId: 'client-1', secret: 's3cr3t' });
    expect(basicCredentials(basic('client-1', 's3cr3t', 'basic'))).toEqual({ clientId: 'client-1', secret: 's3cr3t' });
    expect(basicCredentials(basic('client-1', 's3cr3t', 'BASIC'))).toEqual({ clientId: 'client-1', secret: 's3cr3t' });
  });

  it('form-decodes both parts, as clients encode them', () => {
    expect(basicCredentials(basic('my%20client', 'a%2Bb+c%3Ad'))).toEqual({ clientId: 'my client', secret: 'a+b c:d' });
    // A colon in the secret is the secret's: the id ends at the first one.
    expect(basicCredentials(basic('client-1', 'x:y'))).toEqual({ clientId: 'client-1', secret: 'x:y' });
  });

  it('leaves to the provider every header it does not read whole', () => {
    const encoded = Buffer.from('client-1:s3cr3t').toString('base64');
    for (const header of [
      `Bearer ${encoded}`,
      `Basic  ${encoded}`,
      `Basic ${encoded} extra`,
      `Basic`,
      `Basic `,
      `Basicx${encoded}`,
      `Basic ${encoded.replace(/=+$/, '')}x`,
      basic('client-1', ''),
      basic('', 's3cr3t'),
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      basic('client-1', 'bad%ZZ'),
      basic('client-1', 'tab\there'),
      basic('client-é', 's3cr3t'),
    ]) {
      expect({ header, read: basicCredentials(header) }).toEqual({ header, read: undefined });
    }
  });
});
