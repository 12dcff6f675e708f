/**
 * Jest runs the TypeScript sources as native ESM (oidc-provider is ESM-only), transpiled by SWC.
 * Two projects:
 * - unit: in-process tests (test/unit, test/tokens) against real PostgreSQL and Redis; no build.
 * - e2e: tests that start the compiled server (dist/) as a child process, see test/helpers/server.ts;
 *   the project's global setup builds dist/ once, and only when an e2e test is selected. The
 *   deployment checks (test/deploy) are here too: they start a server or read what the build emits.
 * `npm test` runs both; `npm test -- --selectProjects unit` only the fast one. Either way the
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

export default {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/tokens/**/*.test.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/test/deploy/**/*.test.ts'], globalSetup: '<rootDir>/test/helpers/build-setup.js' },
  ],
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.js',
  testTimeout: 30000,
};
