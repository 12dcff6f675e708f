/**
 * Jest runs the TypeScript sources as native ESM (oidc-provider is ESM-only), transpiled by SWC.
 * End-to-end tests start the compiled server (dist/) as a child process: see test/helpers/server.ts.
 *
 * Two projects: every test as is (dedicated paths on, the default), and the end-to-end files of the
 * protocol endpoints once more against servers with DEDICATED_PATHS=false, so that both the dedicated
 * paths and oidc-provider alone are held to the same expectations (docs/dedicated-paths.md).
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
const PROTOCOL_FILES = ['issuer', 'faults', 'metrics', 'limits', 'fuzz', 'admin-lifecycle', 'login'];

export default {
  projects: [
    { ...shared, displayName: 'default', testMatch: ['<rootDir>/test/**/*.test.ts'] },
    {
      ...shared,
      displayName: 'DEDICATED_PATHS=false',
      testMatch: PROTOCOL_FILES.map((name) => `<rootDir>/test/e2e/${name}.test.ts`),
      setupFiles: ['<rootDir>/test/helpers/dedicated-paths-off.js'],
    },
  ],
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.js',
  testTimeout: 30000,
};
