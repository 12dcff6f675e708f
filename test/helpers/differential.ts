/**
 * What the differential tests of the dedicated paths share (docs/dedicated-paths.md): two servers on
 * one issuer, one with the dedicated paths and one without, the same raw request sent to both, what
 * must be equal in their answers, and the first server's count of requests its dedicated path answered.
 */
import { startServer, type RunningServer } from './server.js';

/** A client id and secret (a type, not an interface: oauth4webapi's Client wants an index signature). */
export type Credentials = { client_id: string; client_secret: string };

/** One request, sent as is to both servers. */
export interface DifferentialRequest {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** What must be the same on both paths: the status, every header but Date, the body byte for byte. */
export interface Observed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The two servers: `dedicated` with the dedicated paths, `stock` with oidc-provider alone, one issuer. */
export interface DifferentialServers {
  readonly dedicated: RunningServer;
  readonly stock: RunningServer;
  /** The dedicated server's metrics. */
  readonly metricsUrl: string;
  /** How many requests of `route` the dedicated server's dedicated path answered (`answered`) or left to the provider. */
  dedicatedPathCount(route: 'introspection' | 'token' | 'revocation', outcome?: 'answered' | 'provider'): Promise<number>;
}

/** Starts the two servers. */
export async function startDifferentialServers(): Promise<DifferentialServers> {
  const dedicated = await startServer({ env: { DEDICATED_PATHS: 'true' } });
  const stock = await startServer({ issuerPort: dedicated.port, env: { DEDICATED_PATHS: 'false' } });
  const metricsUrl = `http://127.0.0.1:${/Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(dedicated.output())![1]}/metrics`;
  return {
    dedicated,
    stock,
    metricsUrl,
    dedicatedPathCount: async (route, outcome = 'answered') =>
      metricValue(metricsUrl, 'login_dedicated_path_requests_total{', `route="${route}"`, `outcome="${outcome}"`),
  };
}

/** The value of the first sample of `metricsUrl` whose line starts with `prefix` and holds every one of `labels`; 0 when none. */
export async function metricValue(metricsUrl: string, prefix: string, ...labels: string[]): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(prefix) && labels.every((label) => l.includes(label)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Sends `request` to `path` of `server` under `requestId` (echoed, and shown on HTML error pages: the same on both). */
export async function sendRaw(server: RunningServer, path: string, request: DifferentialRequest, requestId: string): Promise<Observed> {
  const response = await fetch(`http://localhost:${server.port}${path}`, {
    method: 'POST',
    headers: { ...request.headers, 'x-request-id': requestId },
    body: request.body,
  });
  const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== 'date'));
  return { status: response.status, headers, body: await response.text() };
}

/** HTTP Basic as most clients send it. */
export const basic = (c: Credentials) => ({ authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` });
/** RFC 6749 section 2.3.1: Basic credentials are form-encoded first, `-` and `_` included (as oauth4webapi does). */
const formEncoded = (value: string) => encodeURIComponent(value).replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
/** HTTP Basic with form-encoded credentials. */
export const encodedBasic = (c: Credentials) => ({
  authorization: `Basic ${Buffer.from(`${formEncoded(c.client_id)}:${formEncoded(c.client_secret)}`).toString('base64')}`,
});
/** A form body. */
export const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
/** The form's content type. */
export const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };
