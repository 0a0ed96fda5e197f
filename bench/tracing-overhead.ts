/**
 * What tracing costs per request, in process (no sockets): the same small Hono app without and
 * with the request-span middleware (observability/http-tracing.ts), spans going through a batch
 * processor to an in-memory exporter (what a real exporter adds is off the request path), best
 * of a few rounds; and, with tracing off, the helpers every log line and create call runs.
 * Run: node --conditions=source --import tsx bench/tracing-overhead.ts
 */
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Hono } from "hono";
import type { AppEnv } from "../packages/server/src/http/context.js";
import { httpTracing } from "../packages/server/src/observability/http-tracing.js";
import { startTracing, traceLogFields, withTraceContext } from "../packages/server/src/observability/tracing.js";

const ROUNDS = 5;
const REQUESTS = 20_000;

// Off first: before any tracing starts, as in a process without an OTLP endpoint.
let bestMixin = Number.POSITIVE_INFINITY;
let bestPayload = Number.POSITIVE_INFINITY;
for (let round = 0; round < ROUNDS; round++) {
  let started = performance.now();
  for (let i = 0; i < 1_000_000; i++) traceLogFields();
  bestMixin = Math.min(bestMixin, (performance.now() - started) / 1000);
  started = performance.now();
  for (let i = 0; i < 1_000_000; i++) withTraceContext({ taskId: "task_x" });
  bestPayload = Math.min(bestPayload, (performance.now() - started) / 1000);
}
console.log(
  `tracing off: log mixin ${(bestMixin * 1000).toFixed(0)} ns, withTraceContext ${(bestPayload * 1000).toFixed(0)} ns (best of ${ROUNDS} × 1,000,000)`,
);

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 100_000, scheduledDelayMillis: 100 })],
});
const tracing = await startTracing({ role: "all", provider });
if (!tracing) throw new Error("tracing did not start");

function app(traced: boolean): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  if (traced && tracing) app.use("*", httpTracing(tracing));
  app.get("/api/v1/generations/:id", (c) => c.json({ id: c.req.param("id") }));
  return app;
}

async function microsPerRequest(target: Hono<AppEnv>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) await target.fetch(new Request(`http://bench/api/v1/generations/task_${i}`));
  exporter.reset();
  return ((performance.now() - started) * 1000) / REQUESTS;
}

const plain = app(false);
const traced = app(true);
await microsPerRequest(plain);
await microsPerRequest(traced);
const best = { plain: Number.POSITIVE_INFINITY, traced: Number.POSITIVE_INFINITY };
for (let round = 0; round < ROUNDS; round++) {
  best.plain = Math.min(best.plain, await microsPerRequest(plain));
  best.traced = Math.min(best.traced, await microsPerRequest(traced));
}
console.log(
  `without a request span ${best.plain.toFixed(2)} µs/request, with ${best.traced.toFixed(2)} µs/request: ` +
    `+${(best.traced - best.plain).toFixed(2)} µs (best of ${ROUNDS} × ${REQUESTS})`,
);
await provider.shutdown();
