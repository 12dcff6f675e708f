/**
 * A resource server's side of revocation events, written as an outside consumer would: RFC 8936 poll
 * with its introspection credentials, every SET verified with jose against the JWKS that the
 * transmitter metadata (/.well-known/ssf-configuration) names.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { AccessDenied, type ResourceServerKit } from '../../resource-server-kit/src/index.js';
import { sleep } from './keys.js';

/** A resource server as the admin API registered it. */
export interface PollingResourceServer {
  readonly identifier: string;
  readonly introspection: { readonly client_id: string; readonly client_secret: string };
}

/** A verified SET. */
export type VerifiedSet = JWTPayload & { jti: string; events: Record<string, Record<string, unknown>> };

/** One poll; the status and parsed body. */
export async function pollRequest(
  issuer: string,
  credentials: { client_id: string; client_secret: string },
  body: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert the body field by field
): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${issuer}/events/poll`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(credentials.client_id)}:${encodeURIComponent(credentials.client_secret)}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A consumer of one resource server's events: polls, verifies each SET (signature against the
 * published JWKS, `typ`, `iss`, `aud`), remembers it, and acknowledges it on its next poll.
 */
export class EventInbox {
  readonly received: VerifiedSet[] = [];
  #toAck: string[] = [];
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(
    private readonly issuer: string,
    readonly rs: PollingResourceServer,
    jwksUri: string,
  ) {
    this.#jwks = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 0 });
  }

  /** Verifies a compact SET addressed to this resource server. */
  async verify(set: string): Promise<VerifiedSet> {
    const { payload, protectedHeader } = await jwtVerify(set, this.#jwks, { issuer: this.issuer, audience: this.rs.identifier, typ: 'secevent+jwt' });
    if (!protectedHeader.kid) throw new Error('a SET without kid');
    if (typeof payload.iat !== 'number' || typeof payload.jti !== 'string') throw new Error('a SET without iat or jti');
    return payload as VerifiedSet;
  }

  /** One poll (acknowledging what the previous ones got); resolves with the SETs it answered. */
  async poll(options: { returnImmediately?: boolean; maxEvents?: number } = {}): Promise<VerifiedSet[]> {
    const answer = await pollRequest(this.issuer, this.rs.introspection, {
      returnImmediately: options.returnImmediately ?? true,
      maxEvents: options.maxEvents ?? 100,
      ack: this.#toAck,
    });
    if (answer.status !== 200) throw new Error(`poll answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    this.#toAck = [];
    const sets: VerifiedSet[] = [];
    for (const [setId, set] of Object.entries(answer.body.sets as Record<string, string>)) {
      const verified = await this.verify(set);
      if (verified.jti !== setId) throw new Error(`SET ${setId} carries jti ${verified.jti}`);
      sets.push(verified);
      this.#toAck.push(setId);
    }
    this.received.push(...sets);
    return sets;
  }

  /** The first SET received so far whose event of type `type` matches `subject` (field by field). */
  find(type: string, subject: Record<string, unknown>): VerifiedSet | undefined {
    return this.received.find((set) => {
      const event = set.events[type];
      return event !== undefined && Object.entries(subject).every(([field, value]) => event[field] === value);
    });
  }

  /** Polls until a SET of `type` matching `subject` has arrived; rejects after `timeoutMs`. */
  async waitFor(type: string, subject: Record<string, unknown>, timeoutMs = 5_000): Promise<VerifiedSet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.find(type, subject);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${type} event ${JSON.stringify(subject)} reached ${this.rs.identifier}`);
      await this.poll({ returnImmediately: false });
    }
  }

  /** Polls what is waiting now, then whether any SET received so far names `value` in any subject field. */
  async hasAnyMention(value: string): Promise<boolean> {
    await this.poll();
    return this.received.some((set) => Object.values(set.events).some((event) => Object.values(event).includes(value)));
  }
}

/** A request to an API carrying `token` as a bearer token, as the kit reads it. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}`, method: 'GET', url: 'https://api.example.test/' });

/** Milliseconds from `since` (a `performance.now()`) until `kit` refuses `token` as invalid; infinity past `timeoutMs`. */
export async function untilRefused(kit: ResourceServerKit, token: string, since: number, timeoutMs = 10_000): Promise<number> {
  for (;;) {
    try {
      await kit.verify(bearer(token));
    } catch (error) {
      if (error instanceof AccessDenied && error.code === 'invalid_token') return performance.now() - since;
      throw error;
    }
    if (performance.now() - since > timeoutMs) return Number.POSITIVE_INFINITY;
    await sleep(2);
  }
}
