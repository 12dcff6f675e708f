/**
 * Tells every instance that registry data changed (a client, a resource server, the signing keys, an account),
 * so in-process caches drop the stale entry at once instead of waiting for their TTL.
 * Redis pub/sub in production; an in-process emitter when embedded (one instance only).
 */
import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';

/**
 * What changed. `id` is the client id, the resource server id, the account id, or `*` for everything
 * of a kind; for `security-events`, the id of a resource server whose event queue has new events (its
 * waiting polls answer: src/security-events).
 */
export interface ChangeEvent {
  readonly kind: 'client' | 'resource-server' | 'keys' | 'account' | 'security-events';
  readonly id: string;
}

/** Publishes and delivers change events to every instance, including the publisher. */
export interface ChangeBus {
  publish(event: ChangeEvent): Promise<void>;
  subscribe(listener: (event: ChangeEvent) => void): void;
  close(): Promise<void>;
}

/** In-process bus for the embedded single-instance mode. */
export class MemoryChangeBus implements ChangeBus {
  readonly #emitter = new EventEmitter();

  async publish(event: ChangeEvent): Promise<void> {
    this.#emitter.emit('change', event);
  }

  subscribe(listener: (event: ChangeEvent) => void): void {
    this.#emitter.on('change', listener);
  }

  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}

/** Redis pub/sub bus. Subscribing needs a connection of its own, duplicated from `redis`. */
export class RedisChangeBus implements ChangeBus {
  readonly #channel: string;
  readonly #subscriber: Redis | Cluster;
  readonly #listeners: Array<(event: ChangeEvent) => void> = [];

  private constructor(
    private readonly redis: Redis | Cluster,
    keyPrefix: string,
  ) {
    this.#channel = `${keyPrefix}changes`;
    // A subscribed connection can run no other command: the bus needs one of its own.
    this.#subscriber = (redis as Redis).duplicate() as Redis | Cluster;
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      let event: ChangeEvent;
      try {
        event = JSON.parse(message) as ChangeEvent;
      } catch {
        return;
      }
      for (const listener of this.#listeners) listener(event);
    });
  }

  /**
   * Connects the subscriber; resolves once subscribed so no event published afterwards is missed.
   * ioredis subscribes again by itself after a reconnection.
   */
  static async connect(redis: Redis | Cluster, keyPrefix: string): Promise<RedisChangeBus> {
    const bus = new RedisChangeBus(redis, keyPrefix);
    bus.#subscriber.on('error', () => {
      // Reported by the main connection's listener; the subscriber reconnects on its own.
    });
    if (bus.#subscriber.status === 'wait') await bus.#subscriber.connect();
    await bus.#subscriber.subscribe(bus.#channel);
    return bus;
  }

  async publish(event: ChangeEvent): Promise<void> {
    await this.redis.publish(this.#channel, JSON.stringify(event));
  }

  subscribe(listener: (event: ChangeEvent) => void): void {
    this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    this.#subscriber.disconnect();
  }
}
