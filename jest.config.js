/**
 * Jest runs the TypeScript sources as native ESM (oidc-provider is ESM-only), transpiled by SWC.
 * Three projects:
 * - unit: in-process tests (test/unit, test/tokens) against real PostgreSQL and Redis; no build.
 * - e2e: tests that start the compiled server (dist/) as a child process, see test/helpers/server.ts;
 *   the project's global setup builds dist/ once, and only when an e2e test is selected. The
 *   deployment checks (test/deploy) are here too: they start a server or read what the build emits.
 * - e2e, DEDICATED_PATHS=false: the end-to-end files of the protocol endpoints once more against
 *   servers with the dedicated paths off, so that both the dedicated paths and oidc-provider alone are
 *   held to the same expectations (docs/dedicated-paths.md).
 * `npm test` runs all; `npm test -- --selectProjects unit` only the fast one. Either way the
 * global setup creates this run's PostgreSQL database and Redis key prefix, and the teardown removes them.
 */
const shared = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/**
 * The end-to-end files of the protocol endpoints that a dedicated path answers (introspection): what
 * they expect must hold with the provider alone too. Key rotation and the embedded mode are left out
 * to keep the suite within its time (the differential test covers the provider's JWT answers).
 */
const PROTOCOL_FILES = ['issuer', 'faults', 'metrics', 'limits', 'fuzz', 'admin-lifecycle', 'login', 'jwt-introspection', 'token-exchange'];
const buildOnce = '<rootDir>/test/helpers/build-setup.js';

export default {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/tokens/**/*.test.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/test/deploy/**/*.test.ts'], globalSetup: buildOnce },
    {
      ...shared,
      displayName: 'e2e, DEDICATED_PATHS=false',
      testMatch: PROTOCOL_FILES.map((name) => `<rootDir>/test/e2e/${name}.test.ts`),
      setupFiles: ['<rootDir>/test/helpers/dedicated-paths-off.js'],
      globalSetup: buildOnce,
    },
  ],
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.js',
  testTimeout: 30000,
};
