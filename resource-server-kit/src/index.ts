/**
 * @login-server/resource-server-kit: verify the access tokens of the login server at a resource server.
 * The framework adapters are `@login-server/resource-server-kit/koa`, `/express` and `/fastify`.
 */
export { createResourceServerKit, looksLikeJwt, ResourceServerKit } from './kit.js';
export type { AccessRequest, AccessRequirements, ResourceServerKitOptions, VerifiedAccess } from './kit.js';
export { AccessDenied, refusalOf } from './errors.js';
export type { ChallengeOptions, Refusal, RefusalCode, Scheme } from './errors.js';
export { DEFAULT_DPOP_ALGORITHMS, MemoryReplayCache } from './dpop.js';
export type { DpopOptions, ReplayCache } from './dpop.js';
export type { EventChannelOptions, PushAnswer, PushedRequest } from './events/event-channel.js';
export { EVENT_TYPES } from './events/security-event.js';
export type { IntrospectionCacheOptions } from './introspection-cache.js';
export type { RevocationFacts, RevocationListOptions } from './revocation-list.js';
export type { EventChannelState, IntrospectionEvent, JwksFetchEvent, KitHooks, SecurityEventReceived, VerificationEvent } from './hooks.js';
export type { ProtectOptions } from './middleware/shared.js';
