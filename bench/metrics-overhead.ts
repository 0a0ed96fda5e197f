/**
 * What the request-duration metric costs per request, in process (no sockets, so the difference
 * is not lost in network noise): the same small Hono app behind the request envelope
 * (http/envelope.ts) with and without metrics, timed over many requests of distinct ids, best
 * of a few rounds; and
 * the recording alone (Metrics.recordHttp), which does not depend on Hono's own cost.
 * Run: node --conditions=source --import tsx bench/metrics-overhead.ts
 */
import { Hono } from "hono";
import { pino } from "pino";
import { requestEnvelope } from "../packages/server/src/http/envelope.js";
import { Metrics } from "../packages/server/src/observability/metrics.js";

const ROUNDS = 5;
const REQUESTS = 50_000;

function app(withMetrics: boolean): Hono {
  const app = new Hono();
  const log = pino({ level: "warn" });
  app.use("*", requestEnvelope(withMetrics ? { log, metrics: new Metrics({ defaultMetrics: false }) } : { log }));
  app.get("/api/v1/generations/:id", (c) => c.json({ id: c.req.param("id") }));
  return app;
}

async function microsPerRequest(target: Hono): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) await target.fetch(new Request(`http://bench/api/v1/generations/task_${i}`));
  return ((performance.now() - started) * 1000) / REQUESTS;
}

const plain = app(false);
const metered = app(true);
await microsPerRequest(plain);
await microsPerRequest(metered);
const best = { plain: Number.POSITIVE_INFINITY, metered: Number.POSITIVE_INFINITY };
for (let round = 0; round < ROUNDS; round++) {
  best.plain = Math.min(best.plain, await microsPerRequest(plain));
  best.metered = Math.min(best.metered, await microsPerRequest(metered));
}
console.log(
  `without metrics ${best.plain.toFixed(2)} µs/request, with ${best.metered.toFixed(2)} µs/request: ` +
    `+${(best.metered - best.plain).toFixed(2)} µs (best of ${ROUNDS} × ${REQUESTS})`,
);

const metrics = new Metrics({ defaultMetrics: false });
let bestRecord = Number.POSITIVE_INFINITY;
for (let round = 0; round < ROUNDS; round++) {
  const started = performance.now();
  for (let i = 0; i < 1_000_000; i++) metrics.recordHttp("/api/v1/generations/:id", "GET", 200, 0.0004);
  bestRecord = Math.min(bestRecord, (performance.now() - started) / 1000);
}
console.log(`recordHttp alone: ${(bestRecord * 1000).toFixed(0)} ns (best of ${ROUNDS} × 1,000,000)`);
