/** Admin routes for signing keys (docs/admin-api.md, "Signing keys"). */
import { z } from 'zod';
import { actorOf } from '../admin/admin-auth.js';
import { adminRoute, listRoute, type AdminRoute } from '../admin/admin-route.js';
import { timestamp, urlSafeId } from '../admin/schemas.js';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { KeyEncryptionKey } from './key-encryption.js';
import { listSigningKeys, revokeSigningKey, rotateSigningKeys, type KeyPolicy, type SigningKeyView } from './key-lifecycle.js';
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
    listRoute({
      path: '/keys',
      summary:
        'List the published signing keys. For a next key, activates_at is when the scheduled rotation will promote it; ' +
        'for the current key, retires_at is when it will retire it',
      item: signingKeySchema,
      selectPage: (limit, after) => listSigningKeys(deps.db, deps.policy, limit, after),
      cursorOf: (key) => ({ createdAt: key.createdAt.toISOString(), id: key.kid }),
      present: presentSigningKey,
      cursorId: urlSafeId,
    }),
    adminRoute({
      method: 'post',
      path: '/keys/rotate',
      summary:
        'Rotate every algorithm: next becomes current, current becomes retired, a new next is published. ' +
        '409 while a next key is younger than JWKS_MAX_AGE, unless force=true',
      query: rotateQuerySchema,
      success: { status: 204 },
      problems: [409, 422],
      handler: async (ctx, { query }) => {
        await rotateSigningKeys(changeBy(actorOf(ctx)), { force: query.force === 'true' });
        await deps.refresh();
        ctx.status = 204;
      },
    }),
    adminRoute({
      method: 'post',
      path: '/keys/:kid/revoke',
      summary:
        'Revoke a compromised key: it leaves the JWKS at once and its tokens introspect inactive. ' +
        'A revoked current key is replaced by the next one at once',
      params: z.object({ kid: urlSafeId }),
      success: { status: 204 },
      problems: [404, 409],
      handler: async (ctx, { params }) => {
        await revokeSigningKey(changeBy(actorOf(ctx)), params.kid);
        await deps.refresh();
        ctx.status = 204;
      },
    }),
  ];
}
