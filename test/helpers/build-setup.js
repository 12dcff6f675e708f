// The e2e project's global setup: builds the server once, since end-to-end tests start dist/.
// Jest runs it only when the run selects an e2e test, so unit runs never wait for the compiler.
import { execFileSync } from 'node:child_process';

export default function buildSetup() {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
