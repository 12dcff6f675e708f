/**
 * The OpenAPI 3.1 document of the admin API, generated from the same route declarations that the
 * router serves (see admin-route.ts), so the two cannot drift apart.
 */
import { z } from 'zod';
import type { AdminRoute } from './admin-route.js';

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

/** The OpenAPI parameters a params or query schema declares (each property one parameter). */
function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): Record<string, unknown>[] {
  if (!schema) return [];
  const { properties = {}, required = [] } = jsonSchema(schema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(properties).map(([name, { description, ...rest }]) => ({
    name,
    in: where,
    required: where === 'path' || required.includes(name),
    ...(description ? { description } : {}),
    schema: rest,
  }));
}

/** `/clients/:clientId` -> `/clients/{clientId}` */
export const openApiPath = (koaPath: string): string => `/admin${koaPath.replace(/:([A-Za-z_]+)/g, '{$1}')}`;

/** Builds the document for `routes`. */
export function buildOpenApiDocument(routes: readonly AdminRoute[], issuer: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters = [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')];
    const responses: Record<string, unknown> = {
      [route.success.status]: route.success.schema
        ? { description: 'Success', content: { 'application/json': { schema: jsonSchema(route.success.schema, 'output') } } }
        : { description: 'Success, no content' },
    };
    for (const status of [401, 403, ...route.problems]) {
      responses[status] = { description: 'Problem', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    }
    paths[openApiPath(route.path)] ??= {};
    paths[openApiPath(route.path)][route.method] = {
      summary: route.summary,
      security: [{ bearer: [route.method === 'get' ? 'admin:read' : 'admin:write'] }],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Login server admin API', version: '1' },
    servers: [{ url: issuer }],
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        bearer: {
          type: 'oauth2',
          description: `Access token for the audience ${issuer}/admin (client credentials)`,
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { 'admin:read': 'read', 'admin:write': 'change' } } },
        },
      },
    },
  };
}
