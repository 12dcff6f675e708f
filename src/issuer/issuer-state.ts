/**
 * The issuer in force: the provider and the JWKS document built from the stored signing keys, rebuilt
 * whenever those keys change. A change is noticed through the change bus at once, or by polling a
 * fingerprint of the keys when an event is lost, so every instance follows within seconds without a
 * restart. The provider is replaced, never mutated: a request in flight finishes on the one it began on.
 */
import type Provider from 'oidc-provider';
import type { Db } from '../db/database.js';
import type { ChangeBus } from '../events/change-bus.js';
import type { KeyEncryptionKey } from '../keys/key-encryption.js';
import { keyRingFingerprint, loadKeyRing, type KeyRing, type SigningAlg } from '../keys/signing-keys.js';
import type { Logger } from '../observability/logger.js';
import { jwksDocument, type JwksDocument } from './jwks-endpoint.js';

/** How often each instance compares the stored keys with the ones it serves. */
export const KEY_POLL_INTERVAL_MS = 1000;

/** What the issuer state is built from. */
export interface IssuerStateOptions {
  readonly db: Db;
  readonly bus: ChangeBus;
  readonly logger: Logger;
  /** Every key-encryption key that may have sealed a stored key, by id. */
  readonly keks: ReadonlyMap<string, KeyEncryptionKey>;
  /** The enabled signing algorithms (`SIGNING_ALGS`). */
  readonly algs: readonly SigningAlg[];
  /** Builds the provider that signs with `keyRing`. */
  readonly buildProvider: (keyRing: KeyRing) => Provider;
  /** Poll for changes, as servers do; one-shot scripts do not. */
  readonly follow: boolean;
}

interface Snapshot {
  readonly keyRing: KeyRing;
  readonly provider: Provider;
  readonly jwks: JwksDocument;
}

/** The provider and JWKS of the key ring in force, following changes of the stored keys. */
export class IssuerState {
  #snapshot: Snapshot;
  #reloading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    private readonly options: IssuerStateOptions,
    snapshot: Snapshot,
  ) {
    this.#snapshot = snapshot;
  }

  /** Loads the keys, builds the provider, and (with `follow`) starts following changes. */
  static async start(options: IssuerStateOptions): Promise<IssuerState> {
    const state = new IssuerState(options, IssuerState.#build(options, await loadKeyRing(options.db, options.keks, options.algs)));
    if (options.follow) {
      options.bus.subscribe((event) => {
        if (event.kind === 'keys') state.#refreshInBackground();
      });
      state.#timer = setInterval(() => state.#refreshInBackground(), KEY_POLL_INTERVAL_MS);
      state.#timer.unref();
    }
    return state;
  }

  static #build(options: IssuerStateOptions, keyRing: KeyRing): Snapshot {
    return { keyRing, provider: options.buildProvider(keyRing), jwks: jwksDocument(keyRing) };
  }

  /** The provider signing with the keys in force. */
  get provider(): Provider {
    return this.#snapshot.provider;
  }

  /** The signing keys in force. */
  get keyRing(): KeyRing {
    return this.#snapshot.keyRing;
  }

  /** The JWKS document of the keys in force. */
  get jwks(): JwksDocument {
    return this.#snapshot.jwks;
  }

  /**
   * Resolves once this process serves the keys stored now (after a change it made, so that its
   * answer is never ahead of its own JWKS). Rejects when the stored keys cannot be loaded; the keys
   * in force stay.
   */
  async refresh(): Promise<void> {
    // A reload under way may have read the keys before the caller's change: one more follows it.
    if (!this.#reloading) {
      this.#reloading = this.#reload().finally(() => {
        this.#reloading = undefined;
      });
      return this.#reloading;
    }
    this.#queued ??= this.#reloading
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.refresh();
      });
    return this.#queued;
  }

  /** Stops following changes; resolves when a reload under way has finished. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const pending = [this.#reloading, this.#queued].filter((reload) => reload !== undefined);
    await Promise.all(pending.map((reload) => reload.catch(() => undefined)));
  }

  #refreshInBackground(): void {
    if (this.#closed) return;
    this.refresh().catch((error: unknown) => this.options.logger.error({ err: error }, 'signing keys could not be reloaded; the previous ones stay in force'));
  }

  async #reload(): Promise<void> {
    const { db, keks, logger, algs } = this.options;
    if ((await keyRingFingerprint(db, algs)) === this.#snapshot.keyRing.fingerprint) return;
    const keyRing = await loadKeyRing(db, keks, algs);
    this.#snapshot = IssuerState.#build(this.options, keyRing);
    logger.info({ currentKids: keyRing.currentKid }, 'signing keys changed');
  }
}
