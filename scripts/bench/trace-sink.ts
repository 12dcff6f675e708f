/**
 * A minimal OTLP/HTTP (JSON) trace receiver for the tracing-cost scenario: accepts POST /v1/traces on
 * a loopback port, answers 200 at once and counts the spans, so that the bench can tell how many spans
 * a traced request produced (and whether the exporter dropped any). It runs in the bench's own process,
 * which is idle while the load generator (a process of its own) drives the load, so it is never the
 * measured bottleneck; its CPU is not counted in the project's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface OtlpTraces {
  resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
}

export interface TraceSink {
  /** The value of OTEL_EXPORTER_OTLP_ENDPOINT for the traced process. */
  readonly endpoint: string;
  /** Spans received so far. */
  spans(): number;
  /** Export requests received so far, and how many of them could not be read. */
  exports(): { received: number; unreadable: number };
  close(): Promise<void>;
}

export async function startTraceSink(): Promise<TraceSink> {
  let spans = 0;
  let received = 0;
  let unreadable = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      received++;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpTraces;
        for (const resource of body.resourceSpans ?? []) for (const scope of resource.scopeSpans ?? []) spans += scope.spans?.length ?? 0;
      } catch {
        unreadable++;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => spans,
    exports: () => ({ received, unreadable }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
