/**
 * OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
 * is set: then every request is a server span (continuing a W3C `traceparent` it came with), with a
 * child span for each Redis and PostgreSQL call, exported over OTLP/HTTP as the standard OTEL_*
 * variables say. Attributes are route names, client ids, store operations and outcomes, never a
 * token, secret or query parameter. When off, every hook below is a no-op costing a boolean test.
 */
import { context, propagation, trace, SpanKind, SpanStatusCode, ROOT_CONTEXT, type Span, type Tracer } from '@opentelemetry/api';
import type { TracerProvider } from '@opentelemetry/sdk-trace';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogEvent } from 'kysely';
import type Koa from 'koa';
import { requestContext, type RequestContext } from '../shared/request-context.js';

let tracer: Tracer | undefined;
let provider: TracerProvider | undefined;

/** Whether traces are exported: the OTLP endpoint is configured. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== 'true';
}

/**
 * Starts tracing if configured (call it before anything else is built). The exporter reads the
 * standard variables itself (endpoint, headers, timeout); the service name is OTEL_SERVICE_NAME or
 * `login-server`, and spans are sent every OTEL_BSP_SCHEDULE_DELAY ms (5000 by default).
 *
 * The SDK is imported only here, when tracing is on: with its exporter and semantic conventions it is
 * about 4 MiB of heap that a server with tracing off would hold for nothing (docs/performance.md, Memory).
 */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!tracingConfigured(env) || provider) return;
  const [
    { AsyncLocalStorageContextManager },
    { W3CTraceContextPropagator },
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { BatchSpanProcessor, TracerProvider },
  ] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace'),
  ]);
  if (provider) return;
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'login-server' }),
    spanProcessors: [
      new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...(Number.isInteger(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {}) }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer('login-server');
}

/** Exports the spans still buffered and stops tracing (at shutdown). */
export async function stopTracing(): Promise<void> {
  await provider?.shutdown();
}

/** The server span of each request; empty when tracing is off. Install it right after the request context is set. */
export function requestTracing(): Koa.Middleware[] {
  if (!tracer) return [];
  return [(ctx, next) => traceServerRequest(ctx.req, ctx.res, next)];
}

/**
 * Runs `serve` in the server span of the request (continuing its `traceparent`), inside its request
 * context; just runs it when tracing is off, or when the request has its span already (one the early
 * dispatch left to the Koa application).
 */
export function traceServerRequest(req: IncomingMessage, res: ServerResponse, serve: () => Promise<void>): Promise<void> {
  const request = requestContext.getStore();
  if (!tracer || request?.traceId !== undefined) return serve();
  const method = req.method ?? 'GET';
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method } }, parent);
  if (request) request.traceId = span.spanContext().traceId;
  // Read when the answer is sent: 'finish' fires outside the request's async context.
  res.once('finish', () => endRequestSpan(span, request, method, res.statusCode));
  res.once('close', () => endRequestSpan(span, request, method, res.writableFinished ? res.statusCode : 499));
  return context.with(trace.setSpan(parent, span), serve);
}

const ended = new WeakSet<Span>();

function endRequestSpan(span: Span, request: RequestContext | undefined, method: string, status: number): void {
  if (ended.has(span)) return;
  ended.add(span);
  const route = request?.route ?? 'other';
  // Admin route names already start with their method.
  span.updateName(route.startsWith(`admin ${method} `) ? route : `${method} ${route}`);
  span.setAttributes({
    'http.route': route,
    'http.response.status_code': status,
    'login.outcome': status >= 500 ? (request?.storeUnavailable ? 'unavailable' : 'error') : status >= 400 ? 'refused' : 'ok',
    ...(request?.clientId ? { 'login.client_id': request.clientId } : {}),
  });
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** Runs a store call in a client span named after the store and the operation (never its arguments). */
export function traceStoreCall<T>(store: 'redis' | 'postgres', operation: string, call: () => Promise<T>): Promise<T> {
  if (!tracer) return call();
  return tracer.startActiveSpan(
    `${store} ${operation}`,
    { kind: SpanKind.CLIENT, attributes: { 'db.system.name': dbSystem(store), 'db.operation.name': operation } },
    async (span) => {
      try {
        return await call();
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute('login.outcome', 'error');
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

const dbSystem = (store: 'redis' | 'postgres') => (store === 'redis' ? 'redis' : 'postgresql');

/**
 * A kysely `log` hook making a span of each PostgreSQL query after it ran (kysely reports its
 * duration), under the request's span. The statement's first word names it; its text and parameters
 * stay out. Undefined when tracing is off: kysely then logs nothing.
 */
export function postgresQueryTracing(): ((event: LogEvent) => void) | undefined {
  if (!tracer) return undefined;
  const queryTracer = tracer;
  return (event) => {
    const operation = /^\s*(\w+)/.exec(event.query.sql)?.[1]?.toLowerCase() ?? 'query';
    const endTime = Date.now();
    const span = queryTracer.startSpan(`postgres ${operation}`, {
      kind: SpanKind.CLIENT,
      startTime: endTime - event.queryDurationMillis,
      attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation },
    });
    if (event.level === 'error') {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('login.outcome', 'error');
    }
    span.end(endTime);
  };
}
