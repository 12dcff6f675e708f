/**
 * The scenarios: each hot path, and for each the same work asked of the project, the peer (stock
 * oidc-provider) and the floor (bare node:http and node:crypto). Every contender's job is built fresh
 * for each round (JWTs live 300 s) after one request checks that it answers what the scenario claims
 * to measure: an opaque token, a JWT of the right algorithm, an active introspection, a revocation
 * that takes effect.
 */
import { fetchToken, formPost, send, tokenRequest, type Credentials, type Endpoints } from './http.js';
import type { LoadJob, RequestSpec } from './load-protocol.js';
import type { PersonFixtures, PersonToken } from './person-scenario.js';
import { PEER_CLIENTS, PEER_SCOPE } from './peer-fixtures.js';
import type { ServerProcess } from './processes.js';
import { PROJECT_SCOPE, type ProjectFixtures } from './project-server.js';

/**
 * Who is measured. `workers` is the project with several worker processes; `traced` is the project
 * exporting traces (the tracing-cost scenario); `entitled` is the project answering for a resource
 * server that enforces entitlements (the entitlements-cost scenario, same process as `project`); `tuned`
 * is the project run with other Node.js flags (the heap-settings scenario).
 */
export type Role = 'project' | 'peer' | 'floor' | 'workers' | 'traced' | 'entitled' | 'tuned';

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
  /** Names the peer in tables and ratios, e.g. `peer (memory)`. */
  readonly label: string;
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
  return JSON.parse(Buffer.from(parts[0], 'base64url').toString()) as { alg?: string; typ?: string };
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

/** Every scenario of the default run; each peer answers every scenario it can. */
export function comparisons(project: ProjectTarget, peers: readonly PeerTarget[], floor: ServerProcess): Comparison[] {
  const { endpoints: ep, fixtures: f } = project;
  const projectSide = (job: Contender['job']): Contender => ({ role: 'project', label: 'project', server: project.server, job });
  const floorSide = (job: Contender['job']): Contender => ({ role: 'floor', label: 'floor', server: floor, job });
  /** One contender per peer, its job built from what that peer's requests look like. */
  const peerSides = (job: (peer: PeerRequests, base: JobBase) => Promise<LoadJob>): Contender[] =>
    peers.map((peer) => {
      const requests = peerRequests(peer);
      return { role: 'peer', label: peer.label, server: peer.server, job: (base) => job(requests, base) };
    });

  const projectOpaque = tokenRequest(ep.token, f.externalClient, PROJECT_SCOPE);
  const projectRs256 = tokenRequest(ep.token, f.rs256Client, PROJECT_SCOPE);
  const projectEs256 = tokenRequest(ep.token, f.es256Client, PROJECT_SCOPE);
  const projectIntrospect = formPost(ep.introspection, f.resourceServer, 'token=');

  return [
    {
      id: 'opaque-issuance',
      title: 'Opaque issuance (client_credentials, external client)',
      contenders: [
        projectSide((base) => issuance(base, projectOpaque, 'opaque')),
        ...peerSides((p, base) => issuance(base, p.opaque, 'opaque')),
        floorSide(async (base) => fixed(base, floorTwin(projectOpaque, '/token'))),
      ],
    },
    {
      id: 'jwt-rs256-issuance',
      title: 'JWT issuance RS256 (internal client)',
      contenders: [
        projectSide((base) => issuance(base, projectRs256, 'RS256')),
        ...peerSides((p, base) => issuance(base, p.rs256, 'RS256')),
        floorSide((base) => issuance(base, floorTwin(projectRs256, '/jwt/RS256'), 'RS256')),
      ],
    },
    {
      id: 'jwt-es256-issuance',
      title: 'JWT issuance ES256 (internal client)',
      contenders: [
        projectSide((base) => issuance(base, projectEs256, 'ES256')),
        ...peerSides((p, base) => issuance(base, p.es256, 'ES256')),
        floorSide((base) => issuance(base, floorTwin(projectEs256, '/jwt/ES256'), 'ES256')),
      ],
    },
    {
      id: 'introspection-opaque',
      title: 'Introspection of an opaque token',
      contenders: [
        projectSide(async (base) => introspection(base, withToken(projectIntrospect, await fetchToken(base.url, projectOpaque)))),
        ...peerSides(async (p, base) => introspection(base, withToken(p.introspect, await fetchToken(base.url, p.opaque)))),
        floorSide(async (base) => fixed(base, floorTwin(withToken(projectIntrospect, 'x'.repeat(43)), '/introspect'))),
      ],
    },
    {
      id: 'introspection-jwt',
      title: 'Introspection of a JWT (RS256)',
      note: 'stock oidc-provider refuses JWT access tokens at introspection (unsupported_token_type): no peer',
      contenders: [
        projectSide(async (base) => introspection(base, withToken(projectIntrospect, await fetchToken(base.url, projectRs256)))),
        floorSide(async (base) => {
          const token = await fetchToken(base.url, floorTwin(projectRs256, '/jwt/RS256'));
          return introspection(base, floorTwin(withToken(projectIntrospect, token), '/introspect-jwt'));
        }),
      ],
    },
    {
      id: 'revocation',
      title: 'Revocation (a distinct live opaque token per request)',
      contenders: [
        projectSide((base) => revocation(base, projectOpaque, formPost(ep.revocation, f.externalClient, 'token='), projectIntrospect)),
        ...peerSides((p, base) => revocation(base, p.opaque, p.revoke, p.introspect)),
        floorSide(async (base) => ({
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
        projectSide(async (base) => fixed(base, get(ep.jwks))),
        ...peerSides(async (p, base) => fixed(base, get(p.jwks))),
        floorSide(async (base) => fixed(base, get('/jwks'))),
      ],
    },
    {
      id: 'admin-client-list',
      title: 'Admin client list (GET /admin/clients)',
      note: 'stock oidc-provider has no admin API: no peer',
      contenders: [
        projectSide(async (base) => {
          const token = await fetchToken(base.url, tokenRequest(ep.token, f.admin, 'admin:read'));
          const request = get('/admin/clients', { authorization: `Bearer ${token}` });
          const { status, body } = await send(base.url, request);
          check(status === 200 && Array.isArray(body?.items) && body.items.length > 0, 'expected a list of clients', { status, body });
          return fixed(base, request);
        }),
        floorSide(async (base) => fixed(base, get('/admin/clients', { authorization: `Bearer ${'x'.repeat(43)}` }))),
      ],
    },
  ];
}

/** The requests a peer is asked, the same for every peer. */
interface PeerRequests {
  readonly opaque: RequestSpec;
  readonly rs256: RequestSpec;
  readonly es256: RequestSpec;
  readonly introspect: RequestSpec;
  readonly revoke: RequestSpec;
  readonly jwks: string;
}

function peerRequests(peer: PeerTarget): PeerRequests {
  const pe = peer.endpoints;
  const client = (clientId: string): Credentials => ({ clientId, clientSecret: peer.clientSecret });
  return {
    opaque: tokenRequest(pe.token, client(PEER_CLIENTS.opaque), PEER_SCOPE),
    rs256: tokenRequest(pe.token, client(PEER_CLIENTS.rs256), PEER_SCOPE),
    es256: tokenRequest(pe.token, client(PEER_CLIENTS.es256), PEER_SCOPE),
    introspect: formPost(pe.introspection, client(PEER_CLIENTS.resourceServer), 'token='),
    revoke: formPost(pe.revocation, client(PEER_CLIENTS.opaque), 'token='),
    jwks: pe.jwks,
  };
}

const withToken = (request: RequestSpec, token: string): RequestSpec => ({ ...request, body: request.body + encodeURIComponent(token) });

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

/** The ids of the tracing scenarios (not in the default run). */
export const TRACING_SCENARIOS: readonly string[] = ['tracing-cost', 'tracing-cost-introspection'];

/**
 * The project with tracing off (the process every other scenario measures: no OTEL_* variable reaches
 * it) against a second project process exporting every span to the bench's OTLP sink, on opaque
 * issuance and on introspection of an opaque token.
 */
export function tracingComparisons(off: ProjectTarget, on: ProjectTarget): Comparison[] {
  const issue = tokenRequest(off.endpoints.token, off.fixtures.externalClient, PROJECT_SCOPE);
  const introspect = formPost(off.endpoints.introspection, off.fixtures.resourceServer, 'token=');
  const sides = (job: Contender['job']): Contender[] => [
    { role: 'project', label: 'tracing off', server: off.server, job },
    { role: 'traced', label: 'tracing on', server: on.server, job },
  ];
  return [
    {
      id: 'tracing-cost',
      title: 'Opaque issuance, tracing off against tracing on (OTLP/HTTP to a local sink)',
      contenders: sides((base) => issuance(base, issue, 'opaque')),
    },
    {
      id: 'tracing-cost-introspection',
      title: 'Introspection of an opaque token, tracing off against tracing on',
      contenders: sides(async (base) => introspection(base, withToken(introspect, await fetchToken(base.url, issue)))),
    },
  ];
}

/** The ids of the heap-settings scenarios (not in the default run: they need BENCH_COMPARE_FLAGS). */
export const HEAP_SETTINGS_SCENARIOS: readonly string[] = ['heap-settings', 'heap-settings-introspection'];

/**
 * The project with the flags of `npm start` against a second project process started with other
 * Node.js flags (`flags`, e.g. heap sizing), on opaque issuance and on introspection of an opaque token:
 * the same run, rounds alternating, so a setting's cost is measured against the default on the same load.
 */
export function heapSettingsComparisons(standard: ProjectTarget, tuned: ProjectTarget, flags: string): Comparison[] {
  const issue = tokenRequest(standard.endpoints.token, standard.fixtures.externalClient, PROJECT_SCOPE);
  const introspect = formPost(standard.endpoints.introspection, standard.fixtures.resourceServer, 'token=');
  const sides = (job: Contender['job']): Contender[] => [
    { role: 'project', label: 'npm start flags', server: standard.server, job },
    { role: 'tuned', label: flags, server: tuned.server, job },
  ];
  const note = "the CPU ratio is the default's µs over the other flags', so 1 / it is what those flags multiply the CPU per request by";
  return [
    { id: 'heap-settings', title: `Opaque issuance, npm start flags against ${flags}`, note, contenders: sides((base) => issuance(base, issue, 'opaque')) },
    {
      id: 'heap-settings-introspection',
      title: `Introspection of an opaque token, npm start flags against ${flags}`,
      note,
      contenders: sides(async (base) => introspection(base, withToken(introspect, await fetchToken(base.url, issue)))),
    },
  ];
}

/** The ids of the entitlements-cost scenarios (in the default run; `--only` runs either alone). */
export const ENTITLEMENTS_SCENARIOS: readonly string[] = ['introspection-person', 'refresh-person'];

/**
 * What entitlements cost on the hot paths: introspection of a person's opaque token, and a refresh of
 * their grant, for a resource server without `enforce_entitlements` against the same for one with it
 * on (the person entitled through a group with two roles), in the same project process, alternating
 * round after round.
 */
export function entitlementsComparisons(project: ProjectTarget, person: PersonFixtures): Comparison[] {
  const request = ({ token, resourceServer }: PersonToken): RequestSpec => withToken(formPost(project.endpoints.introspection, resourceServer, 'token='), token);
  const { app, refreshToken, plainResource, entitledResource } = person.refresh;
  const refresh = (resource: string): RequestSpec =>
    formPost(project.endpoints.token, app, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, resource }).toString());
  const sides = (job: (entitled: boolean) => Contender['job']): Contender[] => [
    { role: 'project', label: 'entitlements off', server: project.server, job: job(false) },
    { role: 'entitled', label: 'entitlements on', server: project.server, job: job(true) },
  ];
  const introspectionPair: Comparison = {
    id: 'introspection-person',
    title: "Introspection of a person's opaque token, entitlements off against on",
    note: "one project process; the CPU ratio is off's µs over on's, so 1 / it is what enforcing entitlements multiplies the CPU per request by",
    contenders: sides((entitled) => async (base) => {
      if (entitled) {
        const { body } = await send(base.url, request(person.entitled));
        check(Array.isArray(body?.roles) && body.roles.length === 2, 'expected the entitled answer to carry the two roles', body);
      }
      return introspection(base, request(entitled ? person.entitled : person.plain));
    }),
  };
  return [
    introspectionPair,
    {
      id: 'refresh-person',
      title: "Refresh of a person's grant (opaque token), entitlements off against on",
      note: 'one refresh token of a confidential client, not rotated, asked for one resource server or the other',
      contenders: sides((entitled) => (base) => issuance(base, refresh(entitled ? entitledResource : plainResource), 'opaque')),
    },
  ];
}
