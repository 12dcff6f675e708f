// The e2e projects' global setup: builds the server once, since end-to-end tests start dist/.
// Jest runs it only when the run selects an e2e test, so unit runs never wait for the compiler; both
// e2e projects name it, and the second finds the build done (global setups share jest's process).
import { execFileSync } from 'node:child_process';

export default function buildSetup() {
  if (process.env.LOGIN_TEST_BUILT === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  process.env.LOGIN_TEST_BUILT = '1';
}
