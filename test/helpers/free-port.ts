/**
 * A free loopback port, for servers that tests and the benchmark start. It lives with the test
 * helpers and depends on nothing else, so the benchmark may import it (tsconfig.build.json compiles
 * it) while the test helpers import nothing from the benchmark.
 */
import { createServer } from 'node:net';

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
