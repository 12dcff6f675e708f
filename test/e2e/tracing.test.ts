/**
 * OpenTelemetry traces: the server exports to an in-process OTLP/HTTP receiver (JSON) when
 * OTEL_EXPORTER_OTLP_ENDPOINT points at it. A request that came with a W3C `traceparent` continues
 * that trace; protocol and admin routes get a server span with the route, client id and outcome, and
 * Redis and PostgreSQL calls get child spans; no attribute holds a token or secret; every log line of
 * the request carries the trace id. Without the variable, nothing is exported (the other e2e tests).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { AuthorizationServer } from 'oauth4webapi';
import { adminToken, discover, registerClient, registerResourceServer, uniqueResource } from '../helpers/oauth.js';
import { startServer, TEST_KEY_ENCRYPTION_KEY, testAdmin, type RunningServer } from '../helpers/server.js';

/** A span as OTLP/JSON carries it (the fields checked here). */
interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

let receiver: Server;
const spans: ReceivedSpan[] = [];
let server: RunningServer;
let as: AuthorizationServer;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.startsWith('application/json')) {
        const payload = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: ReceivedSpan[] }[] }[] };
        for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  server = await startServer({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Export within a tenth of a second rather than the default 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      LOG_LEVEL: 'debug',
    },
  });
  as = await discover(server.issuer);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

const attribute = (span: ReceivedSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
};

/** Resolves with the spans of `traceId` once `done` says they are all there (export is batched). */
async function spansOf(traceId: string, done: (found: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = spans.filter((span) => span.traceId === traceId);
    if (done(found)) return found;
    if (Date.now() > deadline) throw new Error(`spans of trace ${traceId} did not arrive: ${JSON.stringify(found.map((s) => s.name))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('continues a W3C traceparent through the token and introspection routes, with store spans, client id and outcome, and never a secret', async () => {
  const admin = await adminToken(server.issuer);
  const api = await registerResourceServer(server.issuer, admin, {
    identifier: uniqueResource('traced'),
    name: 'Traced',
    scopes: ['t:read'],
    token_format: 'opaque',
  });
  const client = await registerClient(server.issuer, admin, { client_name: 'Traced client', trust: 'external', resources: [api.identifier], scope: 't:read' });

  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  const traceparent = `00-${traceId}-${callerSpanId}-01`;
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  const tokenAnswer = await fetch(as.token_endpoint!, {
    method: 'POST',
    headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded', traceparent },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 't:read' }),
  });
  expect(tokenAnswer.status).toBe(200);
  const { access_token: accessToken } = (await tokenAnswer.json()) as { access_token: string };
  const introspection = await fetch(as.introspection_endpoint!, {
    method: 'POST',
    headers: {
      authorization: basic(api.introspection.client_id, api.introspection.client_secret),
      'content-type': 'application/x-www-form-urlencoded',
      traceparent,
    },
    body: new URLSearchParams({ token: accessToken }),
  });
  expect(((await introspection.json()) as { active: boolean }).active).toBe(true);

  const isRoute = (route: string) => (span: ReceivedSpan) => span.kind === SPAN_KIND_SERVER && attribute(span, 'http.route') === route;
  const found = await spansOf(traceId, (all) => all.some(isRoute('token')) && all.some(isRoute('introspection')));

  const token = found.find(isRoute('token'))!;
  expect(token.name).toBe('POST token');
  expect(token.parentSpanId).toBe(callerSpanId);
  expect(attribute(token, 'login.client_id')).toBe(client.client_id);
  expect(attribute(token, 'login.outcome')).toBe('ok');
  expect(Number(attribute(token, 'http.response.status_code'))).toBe(200);

  const introspected = found.find(isRoute('introspection'))!;
  expect(introspected.parentSpanId).toBe(callerSpanId);
  expect(attribute(introspected, 'login.client_id')).toBe(api.introspection.client_id);

  // The token's write to Redis, and the introspection's read, are children of their request's span.
  const redisUnder = (parent: ReceivedSpan) =>
    found.filter((span) => span.parentSpanId === parent.spanId && span.kind === SPAN_KIND_CLIENT && attribute(span, 'db.system.name') === 'redis');
  expect(redisUnder(token).map((span) => span.name)).toContain('redis upsert');
  // (`find` on the provider's path, `findIntrospectable` on the dedicated one.)
  expect(redisUnder(introspected).map((span) => span.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^redis find/)]));

  // Nothing secret in any attribute of any span exported so far.
  const secrets = [client.client_secret, api.introspection.client_secret, accessToken, admin, testAdmin(server.issuer).clientSecret, TEST_KEY_ENCRYPTION_KEY];
  const values = spans.flatMap((span) => span.attributes.map((a) => JSON.stringify(a.value)));
  for (const secret of secrets) expect(values.filter((value) => value.includes(secret))).toEqual([]);

  // Every log line of the token request carries the trace id.
  const tokenLines = server
    .output()
    .split('\n')
    .filter((line) => line.includes('"path":"/token"') && line.includes(`"status":200`));
  expect(tokenLines.some((line) => line.includes(`"traceId":"${traceId}"`))).toBe(true);
});

it('traces admin routes, with PostgreSQL queries as child spans', async () => {
  const admin = await adminToken(server.issuer);
  const traceId = randomBytes(16).toString('hex');
  const answer = await fetch(`${server.issuer}/admin/audit?limit=1`, {
    headers: { authorization: `Bearer ${admin}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
  });
  expect(answer.status).toBe(200);
  const found = await spansOf(traceId, (all) => all.some((span) => span.kind === SPAN_KIND_SERVER));
  const request = found.find((span) => span.kind === SPAN_KIND_SERVER)!;
  expect(attribute(request, 'http.route')).toBe('admin GET /audit');
  const queries = await spansOf(traceId, (all) => all.some((span) => attribute(span, 'db.system.name') === 'postgresql'));
  const query = queries.find((span) => attribute(span, 'db.system.name') === 'postgresql')!;
  expect(query.name).toBe('postgres select');
  expect(query.parentSpanId).toBe(request.spanId);
  expect(JSON.stringify(query.attributes)).not.toMatch(/audit_events|where|\$1/i);
});
