/**
 * The project under test: dist/src/main.js on a PostgreSQL database and a Redis key prefix of its own
 * (created here and removed afterwards), with the resource servers and clients the scenarios need,
 * registered through the admin API as an operator would.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { fetchToken, send, tokenRequest, type Credentials } from './http.js';
import { freePort } from '../../test/helpers/free-port.js';
import { startScriptNodeFlags } from '../../test/helpers/start-flags.js';
import { startServerProcess, type ServerProcess } from './processes.js';

/** Where the project keeps its state for one benchmark run. */
export interface ProjectStores {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly redisKeyPrefix: string;
  readonly keyEncryptionKey: string;
  readonly admin: Credentials;
  /** Drops the database and deletes every Redis key under the prefix. */
  remove(): Promise<void>;
}

/** Creates a fresh database next to `databaseUrl`'s and picks a fresh Redis key prefix. */
export async function createProjectStores(databaseUrl: string, redisUrl: string): Promise<ProjectStores> {
  const runId = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const database = `login_bench_${runId}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  const url = new URL(databaseUrl);
  url.pathname = `/${database}`;
  const redisKeyPrefix = `bench:${runId}:`;

  return {
    databaseUrl: url.toString(),
    redisUrl,
    redisKeyPrefix,
    keyEncryptionKey: randomBytes(32).toString('base64'),
    admin: { clientId: 'bench-admin', clientSecret: randomBytes(32).toString('base64url') },
    remove: async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query(`drop database if exists ${database} with (force)`);
      await client.end();
      const redis = new Redis(redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisKeyPrefix}*`, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

const SERVER_ENTRY = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/**
 * The Node.js flags `npm start` runs the server with (heap sizing), so the project is measured as it
 * is deployed. BENCH_NODE_FLAGS replaces them, to compare settings.
 */
export function startFlags(): string[] {
  if (process.env.BENCH_NODE_FLAGS !== undefined) return process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean);
  return startScriptNodeFlags();
}

/**
 * Starts the project with `workers` processes. Logs at `warn`: an info line per request would measure
 * pino rather than the server.
 */
export async function startProject(
  stores: ProjectStores,
  workers: number,
  nodeFlags: readonly string[] = [],
  extra: { readonly name?: string; readonly env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  return startServerProcess({
    name: extra.name ?? (workers === 1 ? 'project' : `project (WORKERS=${workers})`),
    entry: SERVER_ENTRY,
    port,
    nodeFlags: [...startFlags(), ...nodeFlags],
    forks: workers === 1 ? 0 : workers,
    ready: /listening on port/,
    env: {
      NODE_ENV: 'production',
      PORT: String(port),
      ISSUER: `http://127.0.0.1:${port}`,
      DATABASE_URL: stores.databaseUrl,
      REDIS_URL: stores.redisUrl,
      REDIS_KEY_PREFIX: stores.redisKeyPrefix,
      KEY_ENCRYPTION_KEY: stores.keyEncryptionKey,
      ADMIN_BOOTSTRAP_CLIENT_ID: stores.admin.clientId,
      ADMIN_BOOTSTRAP_CLIENT_SECRET: stores.admin.clientSecret,
      WORKERS: String(workers),
      LOG_LEVEL: 'warn',
      // Two project processes run side by side in the scaling and tracing scenarios: any free metrics port each.
      METRICS_PORT: '0',
      // Empty unless asked for (the tracing-cost scenario): the child gets no other environment.
      ...extra.env,
    },
  });
}

/** The scope every benchmark resource server offers. */
export const PROJECT_SCOPE = 'bench:read';

/** What the scenarios use on the project. */
export interface ProjectFixtures {
  /** The bootstrap admin client, for the admin list scenario. */
  readonly admin: Credentials;
  /** Trust `external`: always gets opaque tokens. */
  readonly externalClient: Credentials;
  /** Trust `internal`, for a JWT resource server signing RS256. */
  readonly rs256Client: Credentials;
  /** Trust `internal`, for a JWT resource server signing ES256. */
  readonly es256Client: Credentials;
  /** The introspection credentials of the RS256 resource server, the audience of both clients above. */
  readonly resourceServer: Credentials;
}

/** Registers the resource servers and clients of the scenarios through the admin API. */
export async function provisionProject(baseUrl: string, tokenPath: string, admin: Credentials): Promise<ProjectFixtures> {
  const adminToken = await fetchToken(baseUrl, tokenRequest(tokenPath, admin, 'admin:read admin:write'));
  const call = async (path: string, body: unknown) => {
    const answer = await send(baseUrl, {
      method: 'POST',
      path: `/admin${path}`,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (answer.status !== 201) throw new Error(`POST /admin${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body as Record<string, unknown>;
  };
  const resourceServer = async (identifier: string, signingAlg: string) => {
    const created = await call('/resource-servers', { identifier, name: `Bench ${signingAlg}`, scopes: [PROJECT_SCOPE], signing_alg: signingAlg });
    const { client_id, client_secret } = created.introspection as { client_id: string; client_secret: string };
    return { clientId: client_id, clientSecret: client_secret };
  };
  const client = async (name: string, trust: string, resource: string) => {
    const created = await call('/clients', { client_name: name, trust, resources: [resource], scope: PROJECT_SCOPE });
    return { clientId: created.client_id as string, clientSecret: created.client_secret as string };
  };

  const rs256 = 'https://rs256.project.bench.test/';
  const es256 = 'https://es256.project.bench.test/';
  const introspector = await resourceServer(rs256, 'RS256');
  await resourceServer(es256, 'ES256');
  return {
    admin,
    externalClient: await client('Bench partner', 'external', rs256),
    rs256Client: await client('Bench job RS256', 'internal', rs256),
    es256Client: await client('Bench job ES256', 'internal', es256),
    resourceServer: introspector,
  };
}
