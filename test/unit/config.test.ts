/** Configuration: defaults, validation naming the variable, and production refusing embedded defaults. */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config.js';

const production = {
  NODE_ENV: 'production',
  ISSUER: 'https://login.example.com',
  DATABASE_URL: 'postgres://db.internal/login',
  REDIS_URL: 'redis://cache.internal:6379',
  KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
};

function errorOf(env: Record<string, string>, cores?: number): ConfigError {
  try {
    loadConfig(env, cores);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a configuration error');
}

describe('loadConfig', () => {
  it('runs on embedded defaults with nothing configured', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      issuer: 'http://localhost:3000',
      databaseUrl: undefined,
      pgliteDir: './data/pglite',
      redisUrl: undefined,
      keyEncryptionKey: undefined,
      workers: 1,
      migrateOnStart: true,
      adminBootstrap: undefined,
      previousKeyEncryptionKey: undefined,
      jwksMaxAgeSeconds: 600,
      keyRotationIntervalSeconds: 30 * 86_400,
      dedicatedPaths: true,
    });
  });

  it('DEDICATED_PATHS=false turns the dedicated paths off', () => {
    expect(loadConfig({ DEDICATED_PATHS: 'false' }).dedicatedPaths).toBe(false);
    expect(loadConfig({ DEDICATED_PATHS: 'true' }).dedicatedPaths).toBe(true);
  });

  it('reads the key settings', () => {
    const previous = Buffer.alloc(32, 3).toString('base64');
    expect(loadConfig({ JWKS_MAX_AGE: '60', KEY_ROTATION_INTERVAL: '86400', KEY_ENCRYPTION_KEY_PREVIOUS: previous })).toMatchObject({
      jwksMaxAgeSeconds: 60,
      keyRotationIntervalSeconds: 86_400,
      previousKeyEncryptionKey: previous,
    });
  });

  it('reads the device code lifetime (10 minutes unless DEVICE_CODE_TTL says otherwise)', () => {
    expect(loadConfig({}).deviceCodeTtlSeconds).toBe(600);
    expect(loadConfig({ DEVICE_CODE_TTL: '1800' }).deviceCodeTtlSeconds).toBe(1800);
  });

  it('derives the issuer from PORT', () => {
    expect(loadConfig({ PORT: '8080' }).issuer).toBe('http://localhost:8080');
  });

  it.each(['DATABASE_URL', 'REDIS_URL', 'KEY_ENCRYPTION_KEY', 'ISSUER'])('production refuses to start without %s', (variable) => {
    const env: Record<string, string> = { ...production };
    delete env[variable];
    const error = errorOf(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
  });

  it('production starts when everything is given', () => {
    expect(loadConfig(production).production).toBe(true);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['WORKERS', '0'],
    ['WORKERS', 'all'],
    ['WORKERS', '65'],
    ['ISSUER', 'ftp://login.example.com'],
    ['ISSUER', 'https://login.example.com/'],
    ['DATABASE_URL', 'mysql://db/login'],
    ['REDIS_URL', 'not a url'],
    ['KEY_ENCRYPTION_KEY', Buffer.alloc(16).toString('base64')],
    ['KEY_ENCRYPTION_KEY_PREVIOUS', 'not base64 of 32 bytes'],
    ['JWKS_MAX_AGE', 'ten minutes'],
    ['KEY_ROTATION_INTERVAL', '0'],
    ['MIGRATE_ON_START', 'yes'],
    ['LOG_LEVEL', 'loud'],
    ['METRICS_HOST', 'metrics.internal'],
    ['METRICS_HOST', '0.0.0.0:9464'],
    ['DEDICATED_PATHS', 'off'],
    ['DEVICE_CODE_TTL', '1'],
    ['DEVICE_CODE_TTL', '1801'],
    ['DEVICE_CODE_TTL', '10m'],
  ])('an invalid %s (%s) is refused, naming the variable', (variable, value) => {
    expect(errorOf({ [variable]: value }).variable).toBe(variable);
  });

  it('serves metrics on loopback unless METRICS_HOST says otherwise', () => {
    expect(loadConfig({}).metricsHost).toBe('127.0.0.1');
    expect(loadConfig({ METRICS_HOST: '0.0.0.0' }).metricsHost).toBe('0.0.0.0');
    expect(loadConfig({ METRICS_HOST: '::' }).metricsHost).toBe('::');
    expect(errorOf({ METRICS_HOST: 'everywhere' }).message).toMatch(/^METRICS_HOST: must be an IP address/);
  });

  it('WORKERS=auto runs one worker per available core', () => {
    const shared = { DATABASE_URL: production.DATABASE_URL, REDIS_URL: production.REDIS_URL };
    expect(loadConfig({ ...shared, WORKERS: 'auto' }, 4).workers).toBe(4);
    expect(loadConfig({ WORKERS: 'auto' }, 1).workers).toBe(1);
    expect(loadConfig({ ...shared, WORKERS: 'auto' }, 200).workers).toBe(64);
    expect(loadConfig({ ...shared, WORKERS: 'auto' }).workers).toBe(availableParallelism());
  });

  it('WORKERS=auto on several cores needs the shared stores, as WORKERS > 1 does', () => {
    expect(errorOf({ WORKERS: 'auto' }, 2).variable).toBe('DATABASE_URL');
    const error = errorOf({ WORKERS: 'bogus' });
    expect(error.message).toBe('WORKERS: must be a whole number between 1 and 64, or auto');
  });

  it('the bootstrap admin variables come as a pair', () => {
    expect(errorOf({ ADMIN_BOOTSTRAP_CLIENT_ID: 'ops-admin' }).variable).toBe('ADMIN_BOOTSTRAP_CLIENT_SECRET');
    expect(loadConfig({ ADMIN_BOOTSTRAP_CLIENT_ID: 'ops-admin', ADMIN_BOOTSTRAP_CLIENT_SECRET: 's'.repeat(40) }).adminBootstrap).toEqual({
      clientId: 'ops-admin',
      clientSecret: 's'.repeat(40),
    });
  });
});

describe('SIGNING_ALGS', () => {
  it('defaults to RS256, PS256 and ES256: EdDSA only on request', () => {
    expect(loadConfig({}).signingAlgs).toEqual(['RS256', 'PS256', 'ES256']);
    expect(loadConfig({ SIGNING_ALGS: 'RS256, EdDSA' }).signingAlgs).toEqual(['RS256', 'EdDSA']);
  });

  it.each([
    ['RS256,HS256', /comma-separated list of RS256, PS256, ES256, EdDSA/],
    ['ES256,EdDSA', /must include RS256/],
    ['RS256,RS256', /twice/],
    ['RS256,', /comma-separated list/],
  ])('refuses %s, naming the variable', (value, message) => {
    const error = errorOf({ SIGNING_ALGS: value });
    expect(error.variable).toBe('SIGNING_ALGS');
    expect(error.message).toMatch(message);
  });
});
