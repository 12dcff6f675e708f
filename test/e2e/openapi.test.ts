/**
 * GET /admin/openapi.json: every admin route of docs/admin-api.md ("Routes") that exists is documented, and
 * every documented operation exists (no route answers "no such route" or 405).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminCall, adminToken } from '../helpers/oauth.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let admin: string;
let document: { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

beforeAll(async () => {
  server = await startServer();
  admin = await adminToken(server.issuer);
  const answer = await adminCall(server.issuer, admin, 'GET', '/openapi.json');
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status: 200 });
  document = answer.body;
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** The admin routes this server has built so far, from docs/admin-api.md ("Routes"). */
const DOCUMENTED_ROUTES = [
  ['post', '/admin/resource-servers'],
  ['get', '/admin/resource-servers'],
  ['get', '/admin/resource-servers/{id}'],
  ['post', '/admin/clients'],
  ['get', '/admin/clients'],
  ['get', '/admin/clients/{client_id}'],
  ['patch', '/admin/resource-servers/{id}'],
  ['delete', '/admin/resource-servers/{id}'],
  ['post', '/admin/resource-servers/{id}/secret'],
  ['patch', '/admin/clients/{client_id}'],
  ['delete', '/admin/clients/{client_id}'],
  ['post', '/admin/clients/{client_id}/secret'],
  ['post', '/admin/clients/{client_id}/revoke-tokens'],
  ['get', '/admin/audit'],
  ['post', '/admin/accounts'],
  ['get', '/admin/accounts'],
  ['get', '/admin/accounts/{id}'],
  ['patch', '/admin/accounts/{id}'],
  ['delete', '/admin/accounts/{id}'],
  ['post', '/admin/accounts/{id}/password'],
  ['get', '/admin/keys'],
  ['post', '/admin/keys/rotate'],
  ['post', '/admin/keys/{kid}/revoke'],
  ['get', '/admin/openapi.json'],
] as const;

const normalise = (path: string) => path.replace(/\{[^}]+\}/g, '{}');

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1', () => {
    expect(document.openapi).toBe('3.1.0');
  });

  it.each(DOCUMENTED_ROUTES)('documents %s %s', (method, path) => {
    const documented = Object.entries(document.paths).find(([p]) => normalise(p) === normalise(path));
    expect(documented?.[1][method]).toBeDefined();
  });

  it('documents every path parameter, with the schema that decides which ids can exist', () => {
    const operations = Object.entries(document.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
    for (const { path, method, op } of operations) {
      const named = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const documented = (
        (op as { parameters?: Array<{ name: string; in: string; required: boolean; schema: Record<string, unknown> }> }).parameters ?? []
      ).filter((p) => p.in === 'path');
      expect({ path, method, names: documented.map((p) => p.name) }).toEqual({ path, method, names: named });
      for (const parameter of documented) {
        expect(parameter.required).toBe(true);
        // Each id is constrained (a format or a pattern), not any string.
        expect({ path, parameter: parameter.name, constrained: 'format' in parameter.schema || 'pattern' in parameter.schema }).toEqual({
          path,
          parameter: parameter.name,
          constrained: true,
        });
      }
    }
  });

  it('documents only operations that exist', async () => {
    const operations = Object.entries(document.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => [method, path] as const));
    expect(operations.length).toBeGreaterThanOrEqual(DOCUMENTED_ROUTES.length);
    for (const [method, path] of operations) {
      const concrete = path.replace(/^\/admin/, '').replace(/\{[^}]+\}/g, 'placeholder-id');
      const answer = await adminCall(server.issuer, admin, method.toUpperCase(), concrete, method === 'get' || method === 'delete' ? undefined : {});
      expect({ method, path, status: answer.status, detail: answer.body?.detail }).not.toMatchObject({ detail: 'no such route' });
      expect(answer.status).not.toBe(405);
    }
  });
});
