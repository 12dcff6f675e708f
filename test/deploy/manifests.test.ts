/**
 * The Kubernetes manifests, offline: the base and every overlay are rendered by kustomize (`kubectl
 * kustomize`), each object is validated against the JSON schemas of Kubernetes 1.36 that the package
 * kubernetes-models 5.1 ships (and the ServiceMonitor against @kubernetes-models/prometheus-operator's),
 * and the server's own configuration check runs on what the Deployment and the migration Job would
 * get: the settings production requires are there, from the ConfigMap or a Secret reference.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Namespace, Service, ServiceAccount, ConfigMap, type IContainer, type IPodSpec } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { startScriptNodeFlags } from '../helpers/start-flags.js';

const run = promisify(execFile);

const KUSTOMIZATIONS = ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/production'];

/** Every kind the manifests may hold, with the model that validates it. */
const MODELS: Record<string, { validate(object: unknown): void }> = Object.fromEntries(
  [Namespace, Service, ServiceAccount, ConfigMap, Deployment, Job, HorizontalPodAutoscaler, NetworkPolicy, PodDisruptionBudget, ServiceMonitor].map((Model) => [
    `${Model.apiVersion}/${Model.kind}`,
    { validate: (object: unknown) => new Model(object as never).validate() },
  ]),
);

/** A rendered object, as far as these checks read it. */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** Placeholders of the values the Secret holds in a real cluster: shaped as the server requires. */
const SECRET_PLACEHOLDERS: Record<string, string> = {
  DATABASE_URL: 'postgres://login:placeholder@postgres.invalid:5432/login',
  REDIS_URL: 'redis://redis.invalid:6379',
  KEY_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
};

/** Production refuses to start without these (src/config.ts); REDIS_URL may be REDIS_CLUSTER_NODES instead. */
const REQUIRED_IN_PRODUCTION = ['NODE_ENV', 'ISSUER', 'DATABASE_URL', 'KEY_ENCRYPTION_KEY'];
/** Never a literal value in a manifest: a Secret reference. */
const SECRET_VARIABLES = ['DATABASE_URL', 'REDIS_URL', 'KEY_ENCRYPTION_KEY', 'ADMIN_BOOTSTRAP_CLIENT_SECRET'];

async function render(directory: string): Promise<Manifest[]> {
  const { stdout } = await run('kubectl', ['kustomize', directory], { maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(stdout)
    .map((document) => document.toJSON() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

function only(manifests: Manifest[], kind: string, component?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (!component || m.metadata.labels?.['app.kubernetes.io/component'] === component));
  expect(found).toHaveLength(1);
  return found[0];
}

function podSpecOf(workload: Manifest): IPodSpec {
  return (workload.spec as { template: { spec: IPodSpec } }).template.spec;
}

/**
 * The environment the container would get, with Secret references resolved to placeholders. Literal
 * values of secret variables are an error: the manifests must reference a Secret.
 */
function environmentOf(container: IContainer, manifests: Manifest[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    expect(source.secretRef).toBeUndefined();
    const configMap = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === source.configMapRef?.name);
    expect(configMap).toBeDefined();
    Object.assign(env, configMap!.data);
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      expect(SECRET_VARIABLES).not.toContain(variable.name);
      env[variable.name] = variable.value;
      continue;
    }
    const secret = variable.valueFrom?.secretKeyRef;
    expect(secret).toBeDefined();
    if (secret!.optional) continue;
    expect(SECRET_PLACEHOLDERS).toHaveProperty([secret!.key]);
    env[variable.name] = SECRET_PLACEHOLDERS[secret!.key]!;
  }
  return env;
}

/** The Node.js flags of `npm start`, which V8 reads only at start: the image and the pods must pass them too. */
function startFlags(): string[] {
  const flags = startScriptNodeFlags();
  expect(flags).toContainEqual(expect.stringMatching(/^--max-semi-space-size=\d+$/));
  return flags;
}

/** The server's shutdown grace, read from the source so that a change there fails this test. */
function shutdownGraceSeconds(): number {
  const match = /const SHUTDOWN_GRACE_MS = ([\d_]+);/.exec(readFileSync('src/main.ts', 'utf8'));
  expect(match).not.toBeNull();
  return Number(match![1].replaceAll('_', '')) / 1000;
}

describe.each(KUSTOMIZATIONS)('%s', (directory) => {
  let manifests: Manifest[];

  beforeAll(async () => {
    manifests = await render(directory);
  });

  it('renders, and every object is valid against the Kubernetes 1.36 schemas', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(9);
    for (const manifest of manifests) {
      const model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      if (!model) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind} (${manifest.metadata.name})`);
      expect(() => model.validate(manifest)).not.toThrow();
    }
  });

  it('holds no Secret: secrets are referenced, never inlined', () => {
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
  });

  it.each(['server', 'migration'])('the %s gets every setting production requires, and the server accepts them', (component) => {
    const workload = only(manifests, component === 'server' ? 'Deployment' : 'Job', component);
    const [container] = podSpecOf(workload).containers;
    const env = environmentOf(container, manifests);
    for (const variable of REQUIRED_IN_PRODUCTION) expect(env).toHaveProperty([variable]);
    expect(env.REDIS_URL ?? env.REDIS_CLUSTER_NODES).toBeDefined();
    expect(env.NODE_ENV).toBe('production');
    const config = loadConfig(env);
    expect(config.production).toBe(true);
    if (component === 'server') expect(config.migrateOnStart).toBe(false);
  });

  it('runs the server with its probes, ports and shutdown matched to the server', () => {
    const deployment = only(manifests, 'Deployment');
    const pod = podSpecOf(deployment);
    const container = pod.containers[0];
    const config = loadConfig(environmentOf(container, manifests));
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.startupProbe?.httpGet?.path).toBe('/healthz');
    const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: config.port, metrics: config.metricsPort });
    expect(config.metricsHost).toBe('0.0.0.0');

    const preStop = container.lifecycle?.preStop?.exec?.command?.join(' ') ?? '';
    const preStopSeconds = Number(/setTimeout\(\(\) => \{\}, (\d+)\)/.exec(preStop)?.[1]) / 1000;
    expect(preStopSeconds).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds + shutdownGraceSeconds());
  });

  it('runs the server with the young generation of npm start, in NODE_OPTIONS beside the heap ceiling', () => {
    const env = environmentOf(podSpecOf(only(manifests, 'Deployment')).containers[0], manifests);
    const options = (env.NODE_OPTIONS ?? '').split(/\s+/);
    for (const flag of startFlags()) expect(options).toContain(flag);
  });

  it.each(['Deployment', 'Job'])('the %s runs non-root, read-only, without capabilities', (kind) => {
    const pod = podSpecOf(only(manifests, kind));
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const container of pod.containers) {
      expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      expect(container.resources?.requests).toBeDefined();
      expect(container.resources?.limits?.memory).toBeDefined();
    }
  });

  it('selects the server pods from the Service, PDB, HPA and ServiceMonitor', () => {
    const deployment = only(manifests, 'Deployment');
    const podLabels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    expect(matches((only(manifests, 'Service').spec as { selector: Record<string, string> }).selector)).toBe(true);
    expect(matches((only(manifests, 'PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels)).toBe(true);
    expect(matches((only(manifests, 'NetworkPolicy').spec as { podSelector: { matchLabels: Record<string, string> } }).podSelector.matchLabels)).toBe(true);
    expect((only(manifests, 'HorizontalPodAutoscaler').spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name).toBe(deployment.metadata.name);
    const service = only(manifests, 'Service');
    const monitor = only(manifests, 'ServiceMonitor').spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    expect(Object.entries(monitor.selector.matchLabels).every(([k, v]) => service.metadata.labels?.[k] === v)).toBe(true);
    expect((service.spec as { ports: { name: string }[] }).ports.map((p) => p.name)).toContain(monitor.endpoints[0].port);
  });

  it('runs files the build emits, with the pinned Node.js of the image', () => {
    for (const kind of ['Deployment', 'Job']) {
      const [container] = podSpecOf(only(manifests, kind)).containers;
      for (const arg of container.args ?? []) expect(existsSync(arg)).toBe(true);
      expect(existsSync(container.lifecycle?.preStop?.exec?.command?.[0]?.replace(/^\/app\//, '') ?? 'node_modules/node/bin/node')).toBe(true);
    }
  });
});

it('the production overlay names its namespace, image and public issuer', async () => {
  const manifests = await render('deploy/kubernetes/overlays/production');
  const deployment = only(manifests, 'Deployment');
  expect(podSpecOf(deployment).containers[0].image).toMatch(/\/login-server:[\w.-]+$/);
  expect(podSpecOf(only(manifests, 'Job')).containers[0].image).toBe(podSpecOf(deployment).containers[0].image);
  expect(new URL(only(manifests, 'ConfigMap').data!.ISSUER).protocol).toBe('https:');
  for (const manifest of manifests.filter((m) => m.kind !== 'Namespace')) expect(manifest).toMatchObject({ metadata: { namespace: 'login' } });
});

it('builds the image with production dependencies only, as a non-root user', () => {
  const dockerfile = readFileSync('deploy/Dockerfile', 'utf8');
  expect(dockerfile).toMatch(/npm ci --omit=dev/);
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  expect(runtime).toMatch(/\nUSER 65532:65532\n/);
  expect(runtime).not.toMatch(/npm (ci|install)(?! --omit=dev)/);
  expect(runtime).toMatch(/ENTRYPOINT \["\/app\/node_modules\/node\/bin\/node"\]/);
  // A container started without the manifests (docker run) gets npm start's flags too.
  const options = /\nENV NODE_OPTIONS="([^"]*)"\n/.exec(runtime)?.[1].split(/\s+/) ?? [];
  for (const flag of startFlags()) expect(options).toContain(flag);
});
