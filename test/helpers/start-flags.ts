/**
 * The Node.js flags `npm start` runs the server with (the young generation's size, which V8 reads only
 * when the process starts), read from package.json's start script, so that the tests and the
 * benchmark start dist/src/main.js exactly as it is deployed. It lives with the test helpers and
 * depends on nothing else, so the benchmark may import it (tsconfig.build.json compiles it).
 */
import { existsSync, readFileSync } from 'node:fs';

/** The flags between `node` and `dist/src/main.js` in package.json's start script. */
export function startScriptNodeFlags(): string[] {
  // The nearest package.json up from here: the project's, from test/helpers/ and from its build in dist/.
  let dir = new URL('.', import.meta.url);
  while (!existsSync(new URL('package.json', dir))) {
    const parent = new URL('..', dir);
    if (parent.href === dir.href) throw new Error('package.json not found');
    dir = parent;
  }
  const manifest = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { scripts: Record<string, string> };
  const command = /\bnode ((?:--[\w-]+(?:=\S+)? )*)dist\/src\/main\.js/.exec(manifest.scripts.start ?? '');
  if (!command) throw new Error('package.json: the start script does not run node dist/src/main.js');
  return command[1].split(' ').filter(Boolean);
}
