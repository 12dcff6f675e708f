/**
 * The in-process cache in front of PostgreSQL that the token and introspection paths read clients
 * (and accounts) through, exercised through ClientRegistry on a real database: what it keeps, for how
 * long, what it serves while PostgreSQL is down, and how much it holds. The clock is moved forward by
 * shifting Date.now; PostgreSQL going down is a real database refusing connections.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { ClientRegistry } from '../../src/clients/client-registry.js';
import { insertClient } from '../../src/clients/client-repository.js';
import { migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';
import { MemoryChangeBus } from '../../src/events/change-bus.js';
import { storeErrors } from '../../src/observability/metrics.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/databases.js';

const TTL_SECONDS = 30;
// How long RegistryCache serves a known record while PostgreSQL cannot be reached.
const STALE_WHILE_DOWN_SECONDS = 5 * 60;
// RegistryCache's bound on entries.
const MAX_ENTRIES = 10_000;

let database: ScratchDatabase;
let db: Db;
let warnings: string[];
let logger: pino.Logger;

beforeAll(async () => {
  database = await createScratchDatabase('registry_cache');
  db = await openDatabase(database.url, '');
  await migrateToLatest(db);
});

afterAll(async () => {
  jest.restoreAllMocks();
  await db?.destroy();
  await database?.drop();
});

let clockOffsetMs = 0;
const realNow = Date.now.bind(Date);

beforeAll(() => {
  jest.spyOn(Date, 'now').mockImplementation(() => realNow() + clockOffsetMs);
});

afterEach(async () => {
  clockOffsetMs = 0;
  await database.setReachable(true);
});

/** Moves the clock the cache reads forward. */
function advance(seconds: number): void {
  clockOffsetMs += seconds * 1000;
}

function newRegistry(): ClientRegistry {
  warnings = [];
  logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
  return new ClientRegistry(db, TTL_SECONDS, logger);
}

async function createClient(name: string, clientId = `client-${randomUUID()}`): Promise<string> {
  await insertClient(db, {
    clientId,
    clientName: name,
    trust: 'internal',
    metadata: {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      post_logout_redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: '',
      resources: [],
    },
    resourceServerId: null,
    secretDigest: null,
  });
  return clientId;
}

/** Renames a client in PostgreSQL behind the cache's back (no change event). */
async function renameInDatabase(clientId: string, name: string): Promise<void> {
  await db.updateTable('clients').set({ client_name: name }).where('client_id', '=', clientId).execute();
}

/** What `read` answers once it answers something new or truthy, within a second (a background read landing). */
async function eventually<T>(read: () => Promise<T>): Promise<T> {
  const first = await read();
  let value = first;
  for (let waited = 0; (value === first || !value) && waited < 100; waited++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await read();
  }
  return value;
}

async function postgresErrors(): Promise<number> {
  const { values } = await storeErrors.get();
  return values.find((v) => v.labels.store === 'postgres')?.value ?? 0;
}

describe('RegistryCache (through ClientRegistry)', () => {
  it('serves a record from the cache until its TTL is over, then reads PostgreSQL again without making a lookup wait', async () => {
    const registry = newRegistry();
    const id = await createClient('Before');
    expect((await registry.get(id))?.clientName).toBe('Before');

    await renameInDatabase(id, 'After');
    expect((await registry.get(id))?.clientName).toBe('Before');
    advance(TTL_SECONDS - 1);
    expect((await registry.get(id))?.clientName).toBe('Before');
    advance(2);
    // Past the TTL: the entry is answered at once (no promise: nothing waits on PostgreSQL) while it is
    // read again; a later lookup gets what that read found.
    const answered = registry.lookup(id);
    expect(answered).not.toBeInstanceOf(Promise);
    expect((answered as Awaited<typeof answered>)?.clientName).toBe('Before');
    expect(await eventually(async () => (await registry.get(id))?.clientName)).toBe('After');
  });

  it('makes a lookup wait for PostgreSQL once an entry is older than 5 minutes', async () => {
    const registry = newRegistry();
    const id = await createClient('Before');
    await registry.get(id);
    await renameInDatabase(id, 'After');
    advance(STALE_WHILE_DOWN_SECONDS + 1);
    const answered = registry.lookup(id);
    expect(answered).toBeInstanceOf(Promise);
    expect((await answered)?.clientName).toBe('After');
  });

  it('drops an entry at once when a change of its kind is published, and ignores other kinds and ids', async () => {
    const registry = newRegistry();
    const bus = new MemoryChangeBus();
    registry.follow(bus);
    const id = await createClient('Before');
    await registry.get(id);
    await renameInDatabase(id, 'After');

    await bus.publish({ kind: 'account', id });
    await bus.publish({ kind: 'client', id: 'someone-else' });
    expect((await registry.get(id))?.clientName).toBe('Before');

    await bus.publish({ kind: 'client', id });
    expect((await registry.get(id))?.clientName).toBe('After');

    await renameInDatabase(id, 'Again');
    await bus.publish({ kind: 'client', id: '*' });
    expect((await registry.get(id))?.clientName).toBe('Again');
  });

  it('remembers that an id is unknown for the TTL too, so a flood of made-up ids does not reach PostgreSQL', async () => {
    const registry = newRegistry();
    const id = `client-${randomUUID()}`;
    expect(await registry.get(id)).toBeUndefined();

    await createClient('Late', id);
    expect(await registry.get(id)).toBeUndefined();
    advance(TTL_SECONDS + 1);
    expect(await eventually(async () => (await registry.get(id))?.clientName)).toBe('Late');
  });

  it('while PostgreSQL is down, serves a record loaded in the last 5 minutes past its TTL, and fails for anything else', async () => {
    const registry = newRegistry();
    const id = await createClient('Cached');
    const unseen = await createClient('Never looked up');
    expect((await registry.get(id))?.clientName).toBe('Cached');
    await renameInDatabase(id, 'Renamed');

    await database.setReachable(false);
    const errorsBefore = await postgresErrors();
    advance(TTL_SECONDS + 1);
    expect((await registry.get(id))?.clientName).toBe('Cached');
    expect(await eventually(async () => warnings.join('').includes('lookup failed; serving the cached entry'))).toBe(true);
    expect(await postgresErrors()).toBeGreaterThan(errorsBefore);
    await expect(registry.get(unseen)).rejects.toThrow();

    advance(STALE_WHILE_DOWN_SECONDS - TTL_SECONDS - 2);
    expect((await registry.get(id))?.clientName).toBe('Cached');
    advance(2);
    await expect(registry.get(id)).rejects.toThrow();

    // Back up: the next lookup reads the current record.
    await database.setReachable(true);
    expect((await registry.get(id))?.clientName).toBe('Renamed');
    expect((await registry.get(unseen))?.clientName).toBe('Never looked up');
  });

  it('holds at most 10,000 entries: a flood of ids evicts the oldest entry first, not the newer ones', async () => {
    const registry = newRegistry();
    const oldest = await createClient('Oldest');
    await registry.get(oldest);
    // MAX_ENTRIES - 1 more fill the cache; the last of the flood makes it evict one entry.
    const flood = Array.from({ length: MAX_ENTRIES }, (_, i) => `made-up-${i}-${randomUUID()}`);
    for (let i = 0; i < flood.length; i += 50) await Promise.all(flood.slice(i, i + 50).map((id) => registry.get(id)));

    await renameInDatabase(oldest, 'Oldest, renamed');
    const newest = flood.at(-1)!;
    const secondOldest = flood[0];
    await createClient('Now exists', newest);
    await createClient('Now exists too', secondOldest);

    // Still cached as unknown: served without asking PostgreSQL.
    expect(await registry.get(newest)).toBeUndefined();
    expect(await registry.get(secondOldest)).toBeUndefined();
    // Evicted: read again from PostgreSQL.
    expect((await registry.get(oldest))?.clientName).toBe('Oldest, renamed');
  });
});
