/** Admin routes for signing keys (CONTRACT.md section 6). */
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import type { AdminRoute } from '../admin/admin-route.js';
import { Problem } from '../admin/problem.js';
import { listQuerySchema, pageOf, parseListQuery, parseOrProblem, timestamp } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import { toPage } from '../shared/pagination.js';
import type { KeyEncryptionKey } from './key-encryption.js';
import {
  KeyAlreadyRevokedError,
  listSigningKeys,
  NextKeyTooYoungError,
  revokeSigningKey,
  rotateSigningKeys,
  UnknownKeyError,
  type KeyPolicy,
  type SigningKeyView,
} from './key-lifecycle.js';
import { SIGNING_ALGS } from './signing-keys.js';

/** What the key routes work with. */
export interface KeyRouteDependencies {
  readonly db: Db;
  readonly bus: ChangeBus;
  /** Seals the keys that a change generates. */
  readonly kek: KeyEncryptionKey;
  readonly policy: KeyPolicy;
  /** Resolves once this process serves the keys stored now, so an answer is never ahead of its JWKS. */
  readonly refresh: () => Promise<void>;
}

/** The JSON form of a published signing key. */
export const signingKeySchema = z.object({
  kid: z.string(),
  alg: z.enum(SIGNING_ALGS),
  state: z.enum(['next', 'current', 'retired']),
  created_at: timestamp,
  activates_at: timestamp.nullable(),
  retires_at: timestamp.nullable(),
  expires_at: timestamp.nullable(),
});

const rotateQuerySchema = z.object({
  force: z.enum(['true', 'false']).optional(),
});

/** Presents a key as `signingKeySchema` describes. */
export function presentSigningKey(key: SigningKeyView): z.output<typeof signingKeySchema> {
  return {
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    created_at: key.createdAt.toISOString(),
    activates_at: key.activatesAt?.toISOString() ?? null,
    retires_at: key.retiresAt?.toISOString() ?? null,
    expires_at: key.expiresAt?.toISOString() ?? null,
  };
}

/** The signing key routes (under /admin). */
export function keyRoutes(deps: KeyRouteDependencies): AdminRoute[] {
  const changeBy = (actor: string) => ({ db: deps.db, bus: deps.bus, actor, kek: deps.kek, policy: deps.policy });
  return [
    {
      method: 'get',
      path: '/keys',
      summary:
        'List the published signing keys. For a next key, activates_at is when the scheduled rotation will promote it; ' +
        'for the current key, retires_at is when it will retire it',
      query: listQuerySchema,
      success: { status: 200, schema: pageOf(signingKeySchema) },
      problems: [422],
      handler: async (ctx) => {
        const { limit, after } = parseListQuery(ctx.query);
        const keys = await listSigningKeys(deps.db, deps.policy, limit, after);
        ctx.body = toPage(keys, limit, (key) => ({ createdAt: key.createdAt.toISOString(), id: key.kid }), presentSigningKey);
      },
    },
    {
      method: 'post',
      path: '/keys/rotate',
      summary:
        'Rotate every algorithm: next becomes current, current becomes retired, a new next is published. ' +
        '409 while a next key is younger than JWKS_MAX_AGE, unless force=true',
      query: rotateQuerySchema,
      success: { status: 204 },
      problems: [409, 422],
      handler: async (ctx) => {
        const { force } = parseOrProblem(rotateQuerySchema, ctx.query, ['query']);
        try {
          await rotateSigningKeys(changeBy(actorOf(ctx)), { force: force === 'true' });
        } catch (error) {
          if (error instanceof NextKeyTooYoungError) {
            throw new Problem(409, error.message, undefined, { 'Retry-After': String(error.retryAfterSeconds) });
          }
          throw error;
        }
        await deps.refresh();
        ctx.status = 204;
      },
    },
    {
      method: 'post',
      path: '/keys/:kid/revoke',
      summary:
        'Revoke a compromised key: it leaves the JWKS at once and its tokens introspect inactive. ' +
        'A revoked current key is replaced by the next one at once',
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx) => {
        try {
          await revokeSigningKey(changeBy(actorOf(ctx)), ctx.params.kid!);
        } catch (error) {
          if (error instanceof UnknownKeyError) throw new Problem(404, error.message);
          if (error instanceof KeyAlreadyRevokedError) throw new Problem(409, error.message);
          throw error;
        }
        await deps.refresh();
        ctx.status = 204;
      },
    },
  ];
}
