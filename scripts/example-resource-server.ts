/**
 * A runnable example API protected by the resource-server kit (resource-server-kit/), with Koa:
 * `GET /orders` needs `orders:read`, `POST /orders` needs `orders:write`; JWT and opaque tokens,
 * bearer or DPoP; revocation events by poll (default) or push (`PUSH_TOKEN` set: the issuer pushes to
 * `POST /security-events`). `GET /stats` shows what the metrics hooks counted.
 *
 *   ISSUER=http://localhost:3000 RESOURCE=https://orders.internal/ \
 *   RS_CLIENT_ID=... RS_CLIENT_SECRET=... PORT=4000 npm run example:resource-server
 *
 * (RS_CLIENT_ID and RS_CLIENT_SECRET: the `introspection` credentials of the resource server's registration.)
 */
import Router from '@koa/router';
import Koa from 'koa';
import { createResourceServerKit } from '../resource-server-kit/src/index.js';
import { authOf, protect, pushReceiver } from '../resource-server-kit/src/middleware/koa.js';

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required (see the comment at the top of scripts/example-resource-server.ts)`);
    process.exit(2);
  }
  return value;
};

const stats = { accepted: 0, refused: 0, cached: 0, introspections: 0, events: 0, channel: 'starting' };

const kit = await createResourceServerKit({
  issuer: required('ISSUER'),
  resource: required('RESOURCE'),
  credentials: { clientId: required('RS_CLIENT_ID'), clientSecret: required('RS_CLIENT_SECRET') },
  algorithms: (process.env.SIGNING_ALGS ?? 'RS256').split(','),
  events: process.env.PUSH_TOKEN ? { mode: 'push', pushToken: process.env.PUSH_TOKEN } : { mode: 'poll' },
  realm: 'orders',
  hooks: {
    onVerification: (event) => {
      if (event.outcome === 'accepted') stats.accepted++;
      else stats.refused++;
      if (event.cached) stats.cached++;
    },
    onIntrospection: () => stats.introspections++,
    onSecurityEvent: () => stats.events++,
    onEventChannel: ({ state }) => {
      stats.channel = state;
      console.log(`revocation events: ${state}`);
    },
  },
});

const router = new Router();
router.get('/orders', protect(kit, { scopes: ['orders:read'] }), (ctx) => {
  const access = authOf(ctx);
  ctx.body = { orders: [], for: access.subject, client: access.clientId, token: access.format, bound: access.boundKey !== undefined };
});
router.post('/orders', protect(kit, { scopes: ['orders:write'] }), (ctx) => {
  ctx.status = 201;
  ctx.body = { created: true, by: authOf(ctx).subject };
});
router.post('/security-events', pushReceiver(kit));
router.get('/stats', (ctx) => {
  ctx.body = stats;
});

const app = new Koa();
app.use(router.routes());
const port = Number(process.env.PORT ?? 4000);
const listener = app.listen(port, () =>
  console.log(`example resource server on http://localhost:${port} (events: ${process.env.PUSH_TOKEN ? 'push' : 'poll'})`),
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    listener.close();
    void kit.close().then(() => process.exit(0));
  });
}
