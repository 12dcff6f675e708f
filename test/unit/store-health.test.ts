/** Which errors count as a store outage (a 503 and a short log line) rather than a bug (a 500 and a stack). */
import { describe, expect, it } from '@jest/globals';
import { isStoreUnavailableError } from '../../src/observability/store-health.js';

describe('isStoreUnavailableError', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })],
    ['PostgreSQL shutting down', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
    [
      'ioredis after a dropped connection',
      new Error('Reached the max retries per request limit (which is 0). Refer to "maxRetriesPerRequest" option for details.'),
    ],
    ['a Redis Cluster without a master for a slot', new Error('CLUSTERDOWN Hash slot not served')],
    ['a Redis Cluster declared down', new Error('CLUSTERDOWN The cluster is down')],
    ['a multi-key command during resharding', new Error('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['a redirection ioredis gave up on', new Error('MOVED 3999 127.0.0.1:6381')],
    ['a replica promoted mid-write', new Error("READONLY You can't write against a read only replica.")],
    ['ioredis unable to map slots', new Error('Failed to refresh slots cache.')],
    ['ioredis with no seed node', new Error('None of startup nodes is available')],
    ['ioredis redirected in circles', new Error('Too many Cluster redirections. Last error: Error: CLUSTERDOWN The cluster is down')],
    ['a Redis full under noeviction', new Error("OOM command not allowed when used memory > 'maxmemory'.")],
    ["ioredis's cluster client while reconnecting", new Error("Cluster isn't ready and enableOfflineQueue options is false")],
  ])('%s is an outage', (_case, error) => {
    expect(isStoreUnavailableError(error)).toBe(true);
  });

  it.each([
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'kid')")],
    ['a wrong command', new Error("ERR wrong number of arguments for 'set' command")],
    ['a word that merely contains a prefix', new Error('ASKED for something else')],
    ['a constraint violation', Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' })],
    ['not an error', 'CLUSTERDOWN'],
  ])('%s is not', (_case, error) => {
    expect(isStoreUnavailableError(error)).toBe(false);
  });
});
