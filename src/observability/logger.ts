/**
 * JSON logs (pino). Anything that could hold a credential is redacted by path, and request logs
 * carry the path only (never the query string, which can hold codes or tokens).
 */
import { pino, type Logger } from 'pino';
import { requestContext } from '../shared/request-context.js';

export type { Logger };

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.client_secret',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.private_jwk',
];

/** Creates the process logger at `level`, writing to file descriptor `fd` (stdout by default). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => {
        const current = requestContext.getStore();
        if (!current) return {};
        return current.traceId ? { requestId: current.requestId, traceId: current.traceId } : { requestId: current.requestId };
      },
    },
    pino.destination(fd),
  );
}
