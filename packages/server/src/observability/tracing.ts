/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Off, nothing here runs: no SDK is loaded (it is
 * imported dynamically, only when tracing starts), no wrapper is installed, job payloads are
 * stored as before and no header is added to any request.
 *
 * Spans are explicit rather than from auto-instrumentation (which patches http and undici for
 * the whole process): one per HTTP request (observability/http-tracing.ts), per job run, per
 * provider call. The trace context crosses the queue inside the job payload (TRACE_FIELD), so a
 * task's create, submit, polls, finalize and webhook deliveries form one trace even when the API
 * and the worker are different processes.
 *
 * The tracer comes from this server's own provider (never registered globally), so several
 * servers in one process (the tests) keep their spans apart. Two things are process-wide by the
 * OTel API's design and are set once, on the first start: the context manager (AsyncLocalStorage:
 * what makes a span "active" across awaits) and the W3C propagator (traceparent/tracestate).
 */
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { ConfigError } from "../config.js";
import type { JobClass, JobHandler, NewJob, Queue } from "../queue/queue.js";

/** The payload field that carries a job's trace context: `{ traceparent, tracestate? }`. */
export const TRACE_FIELD = "traceContext";

/** Instrumentation scope of every span Framegate makes. */
const SCOPE = "framegate";

export interface Tracing {
  /** Runs `fn` in a new active span, a child of `parent` (default: the active context); ends it after. */
  withSpan<T>(
    name: string,
    opts: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
    fn: (span: Span) => Promise<T>,
  ): Promise<T>;
  /** Exports what is buffered (the batch processor holds spans for OTEL_BSP_SCHEDULE_DELAY). */
  flush(): Promise<void>;
  /** Flushes and stops the exporter; a provider handed in by the caller is only flushed. */
  shutdown(): Promise<void>;
}

/** What the SDK's providers offer besides the API's TracerProvider. */
type SdkProvider = TracerProvider & { forceFlush?(): Promise<void>; shutdown?(): Promise<void> };

/** Whether the environment asks for tracing: an OTLP endpoint, and the SDK not disabled. */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/** Set once tracing started in this process: until then no span can be active, so the helpers below return at once. */
let globalsInstalled = false;
let installing: Promise<void> | undefined;

/** The process-wide context manager and propagator (see the header); once per process. */
function installGlobals(): Promise<void> {
  installing ??= (async () => {
    const [{ AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }] = await Promise.all([
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/core"),
    ]);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    globalsInstalled = true;
  })();
  return installing;
}

/**
 * Starts tracing for one server: with `provider` (tests: an in-memory exporter) always, else only
 * when the environment asks for it (tracingRequested), with an OTLP/HTTP exporter that reads the
 * standard OTEL_EXPORTER_OTLP_* variables and a batch processor that reads OTEL_BSP_*.
 * Resolves to undefined when tracing stays off.
 */
export async function startTracing(opts: {
  env?: NodeJS.ProcessEnv;
  provider?: TracerProvider;
  /** Recorded on the resource as framegate.role: which of api, worker or all made a span. */
  role: string;
  /** Told when the exporter fails (a collector down); at most once a minute. */
  onExportError?: (error: unknown) => void;
}): Promise<Tracing | undefined> {
  const env = opts.env ?? process.env;
  let provider: SdkProvider;
  let owned = false;
  if (opts.provider) {
    provider = opts.provider;
  } else if (tracingRequested(env)) {
    provider = await otlpProvider(tracesUrl(env), opts.role, opts.onExportError);
    owned = true;
  } else {
    return undefined;
  }
  await installGlobals();
  const tracer = provider.getTracer(SCOPE);
  return {
    withSpan(name, spanOpts, fn) {
      const parent = spanOpts.parent ?? context.active();
      const span = tracer.startSpan(
        name,
        {
          kind: spanOpts.kind ?? SpanKind.INTERNAL,
          ...(spanOpts.attributes ? { attributes: spanOpts.attributes } : {}),
        },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          return await fn(span);
        } catch (error) {
          recordError(span, error);
          throw error;
        } finally {
          span.end();
        }
      });
    },
    flush: async () => {
      await provider.forceFlush?.();
    },
    shutdown: async () => {
      if (owned) await provider.shutdown?.();
      else await provider.forceFlush?.();
    },
  };
}

/**
 * Where spans are posted, as the OTLP exporter specification says: the traces endpoint as given,
 * else the base endpoint plus `v1/traces`. Both must be http(s) URLs: the exporter would
 * otherwise fall back, silently, to localhost:4318, and an operator would look for spans that go
 * nowhere.
 */
export function tracesUrl(env: NodeJS.ProcessEnv): string {
  for (const name of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
    const value = env[name]?.trim();
    if (!value) continue;
    let protocol: string | undefined;
    try {
      protocol = new URL(value).protocol;
    } catch {}
    if (protocol !== "http:" && protocol !== "https:") {
      throw new ConfigError(
        `Invalid configuration:\n  ${name}: must be an http:// or https:// URL (an OTLP/HTTP collector, e.g. http://otel-collector:4318)`,
      );
    }
  }
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ?? "";
  return `${base.endsWith("/") ? base : `${base}/`}v1/traces`;
}

const EXPORT_ERROR_INTERVAL_MS = 60_000;

/** The SDK provider with the OTLP/HTTP (JSON) exporter, loaded only now. */
async function otlpProvider(url: string, role: string, onExportError?: (error: unknown) => void): Promise<SdkProvider> {
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, resources, core] = await Promise.all([
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
  ]);
  if (onExportError) {
    // The SDK reports failed exports to its global error handler (silent by default); one line a
    // minute at most, so a collector that is down is seen without a line per batch.
    let last = Number.NEGATIVE_INFINITY;
    core.setGlobalErrorHandler((error) => {
      const now = Date.now();
      if (now - last < EXPORT_ERROR_INTERVAL_MS) return;
      last = now;
      onExportError(error);
    });
  }
  // service.name defaults to "framegate"; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
  const resource = resources
    .resourceFromAttributes({ "service.name": "framegate", "framegate.role": role })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  // The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (BasicTracerProvider reads them).
  return new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
}

/** Marks a span failed with the error's type and message (never a request body or a secret). */
export function recordError(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException({ name: err.name, message: err.message });
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

/**
 * The active trace context as a payload field, or the payload unchanged when no span is active
 * (tracing off: nothing is added). A payload that already carries one keeps it.
 */
export function withTraceContext<P extends Record<string, unknown>>(payload: P): P {
  if (!globalsInstalled || payload[TRACE_FIELD] !== undefined) return payload;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  if (!carrier.traceparent) return payload;
  return { ...payload, [TRACE_FIELD]: carrier };
}

/** The context a job was enqueued in; the root context for payloads without one (jobs from before tracing). */
export function jobParentContext(payload: Record<string, unknown>): Context {
  const carrier = payload[TRACE_FIELD];
  if (!carrier || typeof carrier !== "object") return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier as Record<string, unknown>, {
    get: (c, key) => {
      const value = (c as Record<string, unknown>)[key];
      return typeof value === "string" ? value : undefined;
    },
    keys: (c) => Object.keys(c as object),
  });
}

/** Adds the active trace context (traceparent, tracestate) to outgoing request headers; a no-op when tracing is off. */
export function injectTraceHeaders(headers: Record<string, string>): Record<string, string> {
  if (globalsInstalled) propagation.inject(context.active(), headers);
  return headers;
}

/**
 * The active span's ids for a log line (pino's mixin); nothing outside a span. A new object each
 * time: pino merges the line's own fields into what the mixin returns.
 */
export function traceLogFields(): Record<string, string> {
  // Before any tracing started in this process there can be no active span: skip the lookup.
  if (!globalsInstalled) return {};
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const spanContext = span.spanContext();
  if (!trace.isSpanContextValid(spanContext)) return {};
  const { traceId, spanId, traceFlags } = spanContext;
  return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}`.slice(-2) };
}

/** Adds attributes to the active span (a job's, a request's), when tracing is on and one is active. */
export function annotateActiveSpan(attributes: Attributes): void {
  if (globalsInstalled) trace.getActiveSpan()?.setAttributes(attributes);
}

/** The queue with every added job carrying the active trace context (see withTraceContext). */
export function traceQueue(queue: Queue): Queue {
  const traced = (job: NewJob): NewJob => {
    const payload = withTraceContext(job.payload);
    return payload === job.payload ? job : { ...job, payload };
  };
  const { addJobArgs, problem } = queue;
  return {
    enqueue: (db, job) => queue.enqueue(db, traced(job)),
    ...(addJobArgs ? { addJobArgs: (job: NewJob) => addJobArgs.call(queue, traced(job)) } : {}),
    start: (classes) => queue.start(classes),
    ...(problem ? { problem: () => problem.call(queue) } : {}),
    runNow: (db, key) => queue.runNow(db, key),
    notify: () => queue.notify(),
    stop: (graceMs) => queue.stop(graceMs),
  };
}

/** Payload fields that name what a job works on, copied onto its span (ids only). */
const JOB_ID_FIELDS: Record<string, string> = {
  taskId: "framegate.task_id",
  eventId: "framegate.webhook.event_id",
  endpointId: "framegate.webhook.endpoint_id",
  fileId: "framegate.file_id",
};

function jobAttributes(kind: string, payload: Record<string, unknown>): Attributes {
  const attributes: Attributes = { "framegate.job.kind": kind };
  for (const [field, name] of Object.entries(JOB_ID_FIELDS)) {
    const value = payload[field];
    if (typeof value === "string") attributes[name] = value;
  }
  return attributes;
}

/**
 * Each handler's runs in a span `job <kind>`, a child of the span that enqueued the job (its
 * payload's trace context), so whatever the run enqueues or calls joins the same trace.
 */
export function traceJobClasses(classes: JobClass[], tracing: Tracing): JobClass[] {
  return classes.map((jobClass) => ({
    ...jobClass,
    handlers: Object.fromEntries(
      Object.entries(jobClass.handlers).map(([kind, handler]) => [kind, traceHandler(kind, handler, tracing)]),
    ),
  }));
}

function traceHandler(kind: string, handler: JobHandler, tracing: Tracing): JobHandler {
  const { exhausted } = handler;
  return {
    run: (payload, ctx) =>
      tracing.withSpan(
        `job ${kind}`,
        {
          kind: SpanKind.CONSUMER,
          parent: jobParentContext(payload),
          attributes: {
            ...jobAttributes(kind, payload),
            "framegate.job.id": ctx.jobId,
            "framegate.job.attempt": ctx.attempt,
          },
        },
        async (span) => {
          const result = await handler.run(payload, ctx);
          if (result?.retryAt) span.setAttribute("framegate.job.retry_at", result.retryAt.toISOString());
          return result;
        },
      ),
    ...(exhausted
      ? {
          exhausted: (payload: Record<string, unknown>, error: unknown) =>
            tracing.withSpan(
              `job ${kind} exhausted`,
              { parent: jobParentContext(payload), attributes: jobAttributes(kind, payload) },
              () => exhausted.call(handler, payload, error),
            ),
        }
      : {}),
  };
}
