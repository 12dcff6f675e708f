/**
 * The alert rules and the Grafana dashboard: the rules pass `promtool check rules` and their unit
 * tests (`promtool test rules`), the dashboard's queries are valid PromQL, and every metric either
 * names is one a running server really exports on /metrics. promtool is Debian's prometheus package
 * (.ci/run installs it): without it this test fails, it is never skipped.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import { startServer, type RunningServer } from '../helpers/server.js';

const run = promisify(execFile);

const ALERTS = 'deploy/prometheus/alerts.yml';
const ALERT_TESTS = 'deploy/prometheus/alerts.test.yml';
const DASHBOARD = 'deploy/grafana/login-server.json';

/** Runs promtool; a missing promtool fails with a message that says how to get it. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args);
    return stdout + stderr;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failure.code === 'ENOENT') throw new Error('promtool is not installed: apt-get install prometheus (Debian)', { cause: error });
    throw new Error(`promtool ${args.join(' ')} failed:\n${failure.stdout ?? ''}${failure.stderr ?? ''}`, { cause: error });
  }
}

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

async function dashboardQueries(): Promise<string[]> {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  return dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
}

/** The dashboard's queries with Grafana's variables replaced by what Prometheus would get. */
const asPromQL = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', '.*');

/** Every metric of ours a PromQL expression names (ours all start with login_). */
const metricNamesIn = (expr: string): string[] => [...expr.matchAll(/\blogin_[a-z0-9_]+\b/g)].map((m) => m[0]);

describe('alert rules', () => {
  it('pass promtool check rules', async () => {
    expect(await promtool('check', 'rules', ALERTS)).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('fire as their unit tests expect', async () => {
    expect(await promtool('test', 'rules', ALERT_TESTS)).toContain('SUCCESS');
  });
});

describe('the dashboard', () => {
  it('has queries that are valid PromQL', async () => {
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(10);
    // promtool checks expressions only inside rule files: each query becomes a recording rule.
    const dir = await mkdtemp(join(tmpdir(), 'dashboard-rules-'));
    try {
      const file = join(dir, 'dashboard.yml');
      const rules = queries.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: asPromQL(expr) }));
      await writeFile(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      expect(await promtool('check', 'rules', file)).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('metric names of the alerts and the dashboard', () => {
  let server: RunningServer;
  /** Metric families on /metrics, by name, with their type. */
  const exported = new Map<string, string>();

  beforeAll(async () => {
    server = await startServer();
    const port = /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(server.output())?.[1];
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) exported.set(name, type);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  /** Whether `name` is a series of an exported family (a histogram's _bucket, _sum and _count too). */
  const isExported = (name: string) => {
    if (exported.has(name)) return true;
    const family = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
    return family !== undefined && exported.get(family) === 'histogram';
  };

  it('are all exported by the server', async () => {
    const alerts = await readFile(ALERTS, 'utf8');
    const names = new Set([...metricNamesIn(alerts), ...(await dashboardQueries()).flatMap(metricNamesIn)]);
    expect(names.size).toBeGreaterThan(10);
    expect([...names].filter((name) => !isExported(name))).toEqual([]);
  });
});
