/**
 * Fastify: `protect(kit, options)` is a `preHandler` hook that verifies the access token and puts what
 * it says in `request.auth`, or answers the refusal (401/403 with a `WWW-Authenticate` challenge, 400,
 * or 503); `pushReceiver(kit, path)` is a plugin that adds the route receiving the issuer's pushed SETs
 * (RFC 8935) with a parser for `application/secevent+jwt`. The types are structural, so the kit needs
 * no Fastify types of its own.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ResourceServerKit, VerifiedAccess } from '../kit.js';
import { header, PUSH_BODY_LIMIT, publicUrl, type ProtectOptions } from './shared.js';

/** The parts of a Fastify request the kit uses. */
export interface FastifyRequestLike {
  readonly method: string;
  readonly url: string;
  readonly protocol: string;
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: unknown;
  auth?: VerifiedAccess;
}

/** The parts of a Fastify reply the kit uses. */
export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string | string[]): FastifyReplyLike;
  send(body?: unknown): FastifyReplyLike;
}

/** The parts of a Fastify instance the push receiver plugin uses. */
export interface FastifyInstanceLike {
  removeAllContentTypeParsers(): void;
  addContentTypeParser(
    type: string,
    options: { parseAs: 'string'; bodyLimit: number },
    parser: (request: unknown, body: string | Buffer, done: (error: Error | null, body?: unknown) => void) => void,
  ): void;
  post(path: string, handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): void;
}

/** The verified access of a request that went through `protect` (`request.auth`). */
export const authOf = (request: object): VerifiedAccess => (request as { auth: VerifiedAccess }).auth;

/** A `preHandler` hook that admits only requests whose access token the kit accepts (and that holds `options.scopes`). */
export function protect(kit: ResourceServerKit, options: ProtectOptions = {}) {
  return async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<FastifyReplyLike | undefined> => {
    try {
      request.auth = await kit.verify(
        {
          authorization: header(request.headers, 'authorization'),
          dpop: request.headers.dpop,
          method: request.method,
          url: publicUrl(`${request.protocol}://${request.host}`, request.url, options),
        },
        options,
      );
    } catch (error) {
      const refusal = kit.refusal(error);
      reply.code(refusal.status);
      for (const [name, value] of Object.entries(refusal.headers)) reply.header(name, value);
      // An async hook ends the request by returning the reply it sent.
      return reply.send(refusal.body);
    }
    return undefined;
  };
}

/**
 * A plugin adding `POST path` that receives the SETs the issuer pushes (RFC 8935):
 * `app.register(pushReceiver(kit, '/events'))`.
 */
export function pushReceiver(kit: ResourceServerKit, path: string) {
  return async (instance: FastifyInstanceLike): Promise<void> => {
    // Every body reaches the receiver as text, whatever its type: a push of another type is answered
    // 400 with an RFC 8935 error by the receiver, where Fastify would refuse it 415 (or parse it as JSON).
    // The plugin's own scope: the application's parsers are untouched.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', { parseAs: 'string', bodyLimit: PUSH_BODY_LIMIT }, (_request, body, done) => done(null, body.toString()));
    instance.post(path, async (request, reply) => {
      const answer = await kit.receivePush({
        authorization: header(request.headers, 'authorization'),
        contentType: header(request.headers, 'content-type'),
        body: typeof request.body === 'string' ? request.body : '',
      });
      reply.code(answer.status);
      return reply.send(answer.body);
    });
  };
}
