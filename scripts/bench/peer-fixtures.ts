/** The peer's static clients and resources, known to both the peer process and the orchestrator. */

/** The scope every peer resource offers. */
export const PEER_SCOPE = 'bench:read';

/** One resource per token format. */
export const PEER_RESOURCES = {
  opaque: 'https://opaque.peer.bench.test/',
  rs256: 'https://rs256.peer.bench.test/',
  es256: 'https://es256.peer.bench.test/',
} as const;

/** Static client ids: one per resource, and the resource server that introspects opaque tokens. */
export const PEER_CLIENTS = {
  opaque: 'bench-opaque',
  rs256: 'bench-rs256',
  es256: 'bench-es256',
  resourceServer: 'bench-resource-server',
} as const;
