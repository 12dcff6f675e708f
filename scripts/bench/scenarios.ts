/**
 * The scenarios: each hot path, and for each the same work asked of the project, the peer (stock
 * oidc-provider) and the floor (bare node:http and node:crypto). Every contender's job is built fresh
 * for each round (JWTs live 300 s) after one request checks that it answers what the scenario claims
 * to measure: an opaque token, a JWT of the right algorithm, an active introspection, a revocation
 * that takes effect.
 */
import { fetchToken, formPost, send, tokenRequest, type Credentials, type Endpoints } from './http.js';
import type { LoadJob, RequestSpec } from './load-protocol.js';
import { PEER_CLIENTS, PEER_SCOPE } from './peer-fixtures.js';
import type { ServerProcess } from './processes.js';
import { PROJECT_SCOPE, type ProjectFixtures } from './project-server.js';

/** Who is measured. `workers` is the project with several worker processes. */
export type Role = 'project' | 'peer' | 'floor' | 'workers';

/** What every job of a window shares. */
export interface JobBase {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  /** Tokens issued then revoked per cycle of a revocation job. */
  readonly revocationBatch: number;
}

/** One side of a comparison. */
export interface Contender {
  readonly role: Role;
  readonly label: string;
  readonly server: ServerProcess;
  /** Checks the contender once, then builds the job for one window. */
  readonly job: (base: JobBase) => Promise<LoadJob>;
}

/** One scenario: its contenders are measured alternately, round after round. */
export interface Comparison {
  readonly id: string;
  readonly title: string;
  readonly contenders: readonly Contender[];
  /** Why a usual contender is missing, or anything else a reader of the table must know. */
  readonly note?: string;
}

/** A running project with its fixtures. */
export interface ProjectTarget {
  readonly server: ServerProcess;
  readonly endpoints: Endpoints;
  readonly fixtures: ProjectFixtures;
}

/** A running peer. */
export interface PeerTarget {
  readonly server: ServerProcess;
  readonly endpoints: Endpoints;
  readonly clientSecret: string;
}

const fixed = (base: JobBase, request: RequestSpec): LoadJob => ({ kind: 'fixed', url: base.url, connections: base.connections, seconds: base.seconds, request });

function check(condition: boolean, what: string, detail: unknown): void {
  if (!condition) throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

/** The JOSE header of a JWS, or undefined for an opaque value. */
function joseHeader(token: string): { alg?: string; typ?: string } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  return JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as { alg?: string; typ?: string };
}

async function issuance(base: JobBase, request: RequestSpec, alg: 'opaque' | 'RS256' | 'ES256'): Promise<LoadJob> {
  const token = await fetchToken(base.url, request);
  const header = joseHeader(token);
  check(alg === 'opaque' ? header === undefined : header?.alg === alg && header.typ === 'at+jwt', `expected a ${alg} access token`, header ?? token.length);
  return fixed(base, request);
}

async function introspection(base: JobBase, request: RequestSpec): Promise<LoadJob> {
  const { status, body } = await send(base.url, request);
  check(status === 200 && body?.active === true, 'expected an active introspection answer', { status, body });
  return fixed(base, request);
}

async function revocation(base: JobBase, issue: RequestSpec, revoke: RequestSpec, introspect: RequestSpec | undefined): Promise<LoadJob> {
  const token = await fetchToken(base.url, issue);
  const revoked = await send(base.url, { ...revoke, body: revoke.body + encodeURIComponent(token) });
  check(revoked.status === 200, 'expected revocation to answer 200', revoked);
  if (introspect) {
    const after = await send(base.url, { ...introspect, body: introspect.body + encodeURIComponent(token) });
    check(after.body?.active === false, 'expected a revoked token to introspect inactive', after);
  }
  return { kind: 'revocation', url: base.url, connections: base.connections, seconds: base.seconds, batch: base.revocationBatch, issue, revoke };
}

const get = (path: string, headers: Record<string, string> = {}): RequestSpec => ({ method: 'GET', path, headers });

/** Floor requests carry the same headers and bodies as the real ones, so the bytes parsed are alike. */
const floorTwin = (request: RequestSpec, path: string): RequestSpec => ({ ...request, path });

/** Every scenario of the default run. */
export function comparisons(project: ProjectTarget, peer: PeerTarget, floor: ServerProcess): Comparison[] {
  const { endpoints: ep, fixtures: f } = project;
  const pe = peer.endpoints;
  const peerClient = (clientId: string): Credentials => ({ clientId, clientSecret: peer.clientSecret });
  const contender = (role: 'project' | 'peer' | 'floor', job: Contender['job']): Contender => ({
    role,
    label: role,
    server: role === 'project' ? project.server : role === 'peer' ? peer.server : floor,
    job,
  });

  const projectOpaque = tokenRequest(ep.token, f.externalClient, PROJECT_SCOPE);
  const projectRs256 = tokenRequest(ep.token, f.rs256Client, PROJECT_SCOPE);
  const projectEs256 = tokenRequest(ep.token, f.es256Client, PROJECT_SCOPE);
  const peerOpaque = tokenRequest(pe.token, peerClient(PEER_CLIENTS.opaque), PEER_SCOPE);
  const projectIntrospect = formPost(ep.introspection, f.resourceServer, 'token=');
  const peerIntrospect = formPost(pe.introspection, peerClient(PEER_CLIENTS.resourceServer), 'token=');
  const withToken = (request: RequestSpec, token: string): RequestSpec => ({ ...request, body: request.body + encodeURIComponent(token) });

  return [
    {
      id: 'opaque-issuance',
      title: 'Opaque issuance (client_credentials, external client)',
      contenders: [
        contender('project', (base) => issuance(base, projectOpaque, 'opaque')),
        contender('peer', (base) => issuance(base, peerOpaque, 'opaque')),
        contender('floor', async (base) => fixed(base, floorTwin(projectOpaque, '/token'))),
      ],
    },
    {
      id: 'jwt-rs256-issuance',
      title: 'JWT issuance RS256 (internal client)',
      contenders: [
        contender('project', (base) => issuance(base, projectRs256, 'RS256')),
        contender('peer', (base) => issuance(base, tokenRequest(pe.token, peerClient(PEER_CLIENTS.rs256), PEER_SCOPE), 'RS256')),
        contender('floor', (base) => issuance(base, floorTwin(projectRs256, '/jwt/RS256'), 'RS256')),
      ],
    },
    {
      id: 'jwt-es256-issuance',
      title: 'JWT issuance ES256 (internal client)',
      contenders: [
        contender('project', (base) => issuance(base, projectEs256, 'ES256')),
        contender('peer', (base) => issuance(base, tokenRequest(pe.token, peerClient(PEER_CLIENTS.es256), PEER_SCOPE), 'ES256')),
        contender('floor', (base) => issuance(base, floorTwin(projectEs256, '/jwt/ES256'), 'ES256')),
      ],
    },
    {
      id: 'introspection-opaque',
      title: 'Introspection of an opaque token',
      contenders: [
        contender('project', async (base) => introspection(base, withToken(projectIntrospect, await fetchToken(base.url, projectOpaque)))),
        contender('peer', async (base) => introspection(base, withToken(peerIntrospect, await fetchToken(base.url, peerOpaque)))),
        contender('floor', async (base) => fixed(base, floorTwin(withToken(projectIntrospect, 'x'.repeat(43)), '/introspect'))),
      ],
    },
    {
      id: 'introspection-jwt',
      title: 'Introspection of a JWT (RS256)',
      note: 'stock oidc-provider refuses JWT access tokens at introspection (unsupported_token_type): no peer',
      contenders: [
        contender('project', async (base) => introspection(base, withToken(projectIntrospect, await fetchToken(base.url, projectRs256)))),
        contender('floor', async (base) => {
          const token = await fetchToken(base.url, floorTwin(projectRs256, '/jwt/RS256'));
          return introspection(base, floorTwin(withToken(projectIntrospect, token), '/introspect-jwt'));
        }),
      ],
    },
    {
      id: 'revocation',
      title: 'Revocation (a distinct live opaque token per request)',
      contenders: [
        contender('project', (base) => revocation(base, projectOpaque, formPost(ep.revocation, f.externalClient, 'token='), projectIntrospect)),
        contender('peer', (base) => revocation(base, peerOpaque, formPost(pe.revocation, peerClient(PEER_CLIENTS.opaque), 'token='), peerIntrospect)),
        contender('floor', async (base) => ({
          kind: 'revocation',
          url: base.url,
          connections: base.connections,
          seconds: base.seconds,
          batch: base.revocationBatch,
          issue: undefined,
          revoke: floorTwin(formPost(ep.revocation, f.externalClient, 'token='), '/revoke'),
        })),
      ],
    },
    {
      id: 'jwks',
      title: 'JWKS',
      contenders: [
        contender('project', async (base) => fixed(base, get(ep.jwks))),
        contender('peer', async (base) => fixed(base, get(pe.jwks))),
        contender('floor', async (base) => fixed(base, get('/jwks'))),
      ],
    },
    {
      id: 'admin-client-list',
      title: 'Admin client list (GET /admin/clients)',
      note: 'stock oidc-provider has no admin API: no peer',
      contenders: [
        contender('project', async (base) => {
          const token = await fetchToken(base.url, tokenRequest(ep.token, f.admin, 'admin:read'));
          const request = get('/admin/clients', { authorization: `Bearer ${token}` });
          const { status, body } = await send(base.url, request);
          check(status === 200 && Array.isArray(body?.items) && body.items.length > 0, 'expected a list of clients', { status, body });
          return fixed(base, request);
        }),
        contender('floor', async (base) => fixed(base, get('/admin/clients', { authorization: `Bearer ${'x'.repeat(43)}` }))),
      ],
    },
  ];
}

/** The project with one worker against the project with several, on opaque issuance. */
export function scalingComparison(one: ProjectTarget, several: ProjectTarget, workers: number): Comparison {
  const request = tokenRequest(one.endpoints.token, one.fixtures.externalClient, PROJECT_SCOPE);
  return {
    id: 'opaque-issuance-workers',
    title: `Opaque issuance, WORKERS=1 against WORKERS=${workers}`,
    contenders: [
      { role: 'project', label: 'WORKERS=1', server: one.server, job: (base) => issuance(base, request, 'opaque') },
      { role: 'workers', label: `WORKERS=${workers}`, server: several.server, job: (base) => issuance(base, request, 'opaque') },
    ],
  };
}
