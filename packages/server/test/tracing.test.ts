/**
 * OpenTelemetry tracing (issue 16), with an in-memory exporter handed to the server: one task's
 * create request, submit, polls and webhook delivery form one trace with the expected parent
 * chain; the fake Kling upstream receives that trace's traceparent; a job's log lines carry the
 * trace id; and with tracing off nothing is added anywhere (no spans, no header, job payloads as
 * before).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type Span, SpanKind, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUBMIT_JOB } from "../src/generations/service.js";
import { createLogger } from "../src/logger.js";
import { TRACE_FIELD, withTraceContext } from "../src/observability/tracing.js";
import type { Db } from "../src/store/db.js";
import { startFakeFal } from "./fakes/fake-fal.js";
import { type FakeKling, startFakeKling } from "./fakes/fake-kling.js";
import { startTestServer, type TestServer } from "./harness.js";
import { createGeneration, E2E_ENV, falEnv, klingEnv, until, watchTask } from "./provider-e2e-helpers.js";
import { dropTestDatabase, TEST_STORE } from "./test-store.js";
import { WebhookReceiver } from "./webhook-receiver.js";

const ENV = { ...E2E_ENV, WEBHOOK_ALLOW_INSECURE_URLS: "true", PROVIDERS: "kling", KLING_MODE: "std" };
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

/** Log lines as parsed JSON, written by a logger at info (the tests' default logger is silent). */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger("info", sink, "json"), lines };
}

/**
 * The stored payloads of the pending jobs of `kind`, whichever queue the server uses (the
 * graphile-worker view leaves payloads out: its private table, our envelope's `p`).
 */
async function pendingPayloads(db: Db, kind: string): Promise<Record<string, unknown>[]> {
  const table = await db.selectFrom("jobs").select("payload").where("kind", "=", kind).execute();
  const payloads = table.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  const graphile = await sql<{ payload: { p: Record<string, unknown> } }>`
    select jobs.payload from graphile_worker._private_jobs jobs
    join graphile_worker._private_tasks tasks on tasks.id = jobs.task_id
    where tasks.identifier = ${kind}`
    .execute(db)
    .then((r) => r.rows.map((row) => row.payload.p))
    .catch(() => []);
  return [...payloads, ...graphile];
}

/** The value, or a failed test naming what was missing. */
function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`missing: ${what}`);
  return value;
}

const byId = (spans: ReadableSpan[]) => new Map(spans.map((s) => [s.spanContext().spanId, s]));
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

/** The top of a span's parent chain among `index` (a span whose parent is missing ends it). */
function rootOf(span: ReadableSpan, index: Map<string, ReadableSpan>): ReadableSpan {
  let current = span;
  for (;;) {
    const parentId = parentOf(current);
    const parent = parentId ? index.get(parentId) : undefined;
    if (!parent) return current;
    current = parent;
  }
}

describe("tracing on (in-memory exporter)", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const { log, lines } = capturingLogger();
  let fake: FakeKling;
  let receiver: WebhookReceiver;
  let t: TestServer;

  beforeAll(async () => {
    fake = await startFakeKling();
    receiver = await WebhookReceiver.start();
    t = await startTestServer({ ...ENV, ...klingEnv(fake) }, undefined, { tracerProvider: provider, log });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    await fake?.close();
    await provider.shutdown();
  });

  it("a task's create, submit, upstream calls, polls and webhook delivery form one trace", async () => {
    const { key } = await t.createAccount(1000);
    const hook = await t.request("/api/v1/webhooks", { key, json: { url: receiver.url } });
    expect(hook.status, hook.text).toBe(201);

    const taskId = await createGeneration(t, key, "a lighthouse at dusk, traced");
    const watched = await watchTask(t, key, taskId);
    expect(watched.final.status).toBe("succeeded");
    const deliveredSpan = () =>
      exporter
        .getFinishedSpans()
        .find((s) => s.name === "job webhook.deliver" && s.attributes["framegate.webhook.event_id"] !== undefined);
    await until(() => deliveredSpan() !== undefined, "the webhook delivery's span");

    const spans = exporter.getFinishedSpans();
    const create = need(
      spans.find((s) => s.name === "POST /api/v1/generations"),
      `the create's span among ${spans.map((s) => s.name).join(", ")}`,
    );
    const traceId = create.spanContext().traceId;
    expect(create.kind).toBe(SpanKind.SERVER);
    expect(create.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/api/v1/generations",
      "http.response.status_code": 202,
      "url.path": "/api/v1/generations",
    });
    expect(create.attributes["framegate.request_id"]).toMatch(/^req_/);
    expect(create.attributes["framegate.account_id"]).toBeTypeOf("string");

    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const index = byId(inTrace);
    // Request → submit job → the provider's submit call.
    const submit = need(
      inTrace.find((s) => s.name === `job ${SUBMIT_JOB}`),
      "the submit job's span",
    );
    expect(submit.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(submit)).toBe(create.spanContext().spanId);
    expect(submit.attributes["framegate.task_id"]).toBe(taskId);
    const upstreamSubmit = need(
      inTrace.find((s) => s.name === "kling submit"),
      "the upstream submit's span",
    );
    expect(upstreamSubmit.kind).toBe(SpanKind.CLIENT);
    expect(parentOf(upstreamSubmit)).toBe(submit.spanContext().spanId);
    // Polls (each a child of the job that scheduled it) and their upstream calls.
    const polls = inTrace.filter((s) => s.name === "job generation.poll");
    expect(polls.length).toBeGreaterThan(0);
    for (const poll of polls) expect(parentOf(poll)).toBe(submit.spanContext().spanId);
    const upstreamPolls = inTrace.filter((s) => s.name === "kling poll");
    expect(upstreamPolls.length).toBeGreaterThan(0);
    for (const call of upstreamPolls) expect(polls.map((p) => p.spanContext().spanId)).toContain(parentOf(call));
    // The delivery of task.succeeded: in the same trace, below the poll that finished the task.
    const deliveries = inTrace.filter((s) => s.name === "job webhook.deliver");
    expect(deliveries.length).toBeGreaterThan(0);
    for (const delivery of deliveries) {
      expect(rootOf(delivery, index)).toBe(create);
    }
    expect(receiver.requests.length).toBeGreaterThan(0);
    // The attempt's outcome is on the delivery's span.
    expect(deliveries.map((d) => d.attributes)).toContainEqual(
      expect.objectContaining({
        "framegate.webhook.outcome": "succeeded",
        "framegate.webhook.attempt": 1,
        "http.response.status_code": 200,
      }),
    );

    // (b) The fake Kling received the trace: its create call carries the provider span's context.
    const creates = fake.requests.filter((r) => r.method === "POST" && r.path.startsWith("/v1/videos/"));
    expect(creates).toHaveLength(1);
    const sent = need(TRACEPARENT.exec(creates[0]?.headers.traceparent ?? ""), "a traceparent on the create call");
    expect(sent[1]).toBe(traceId);
    expect(sent[2]).toBe(upstreamSubmit.spanContext().spanId);
    const pollCalls = fake.requests.filter((r) => r.method === "GET" && r.path.startsWith("/v1/videos/"));
    for (const call of pollCalls) expect(TRACEPARENT.exec(call.headers.traceparent ?? "")?.[1]).toBe(traceId);

    // (c) The worker's log lines for this task carry the trace (and the span they were written in).
    const succeeded = lines.find((l) => l.msg === "task succeeded" && l.taskId === taskId);
    expect(succeeded).toMatchObject({ trace_id: traceId });
    expect(inTrace.map((s) => s.spanContext().spanId)).toContain(succeeded?.span_id);
    // The request line is written inside the request's span.
    const requestLine = lines.find(
      (l) => l.msg === "request" && l.requestId === create.attributes["framegate.request_id"],
    );
    expect(requestLine).toMatchObject({ trace_id: traceId, span_id: create.spanContext().spanId });
    // Lines outside any span carry no trace fields.
    const started = lines.find((l) => l.msg === "framegate listening");
    expect(started).toBeDefined();
    expect(started).not.toHaveProperty("trace_id");
  });

  it("names request spans by route template, and keeps credentials in paths out", async () => {
    exporter.reset();
    const { key } = await t.createAccount(10);
    const missing = await t.request("/api/v1/generations/task_doesnotexist", { key });
    expect(missing.status).toBe(404);
    const callback = await t.request("/internal/callbacks/kling/sometoken123", { method: "POST", json: {} });
    expect(callback.status).toBeGreaterThanOrEqual(400);
    await t.request("/no/such/path");
    const spans = exporter.getFinishedSpans();
    const get = spans.find((s) => s.name === "GET /api/v1/generations/:id");
    expect(get?.attributes).toMatchObject({
      "http.route": "/api/v1/generations/:id",
      "url.path": "/api/v1/generations/task_doesnotexist",
      "http.response.status_code": 404,
    });
    const hook = need(
      spans.find((s) => s.attributes["http.route"] === "/internal/callbacks/kling/:token"),
      "the callback's span",
    );
    expect(JSON.stringify(hook.attributes)).not.toContain("sometoken123");
    const unmatched = spans.find((s) => s.attributes["url.path"] === "/no/such/path");
    expect(unmatched?.name).toBe("GET");
    expect(unmatched?.attributes).not.toHaveProperty("http.route");
  });

  it("continues an incoming traceparent", async () => {
    exporter.reset();
    const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await t.request("/api/v1/models", { headers: { traceparent: parent } });
    const span = exporter.getFinishedSpans().find((s) => s.name === "GET /api/v1/models");
    expect(span?.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(span && parentOf(span)).toBe("b7ad6b7169203331");
  });
});

describe("tracing on, fal upstream", () => {
  it("every call to fal carries the traceparent of its provider span", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const fal = await startFakeFal();
    const t = await startTestServer({ ...E2E_ENV, ...falEnv(fal), PROVIDERS: "fal" }, undefined, {
      tracerProvider: provider,
    });
    try {
      const { key } = await t.createAccount(1000);
      const taskId = await createGeneration(t, key, "a traced fal task");
      expect((await watchTask(t, key, taskId)).final.status).toBe("succeeded");
      const spans = exporter.getFinishedSpans();
      const providerSpans = new Map(
        spans.filter((s) => s.name.startsWith("fal ")).map((s) => [s.spanContext().spanId, s.spanContext().traceId]),
      );
      const calls = fal.requests.filter((r) => r.path.includes("kling-video"));
      expect(calls.length).toBeGreaterThan(1);
      for (const call of calls) {
        const sent = need(
          TRACEPARENT.exec(call.headers.traceparent ?? ""),
          `a traceparent on ${call.method} ${call.path}`,
        );
        expect(providerSpans.get(sent[2] ?? "")).toBe(sent[1]);
      }
    } finally {
      await t.close();
      await fal.close();
      await provider.shutdown();
    }
  });
});

describe("job payloads", () => {
  // Both drivers where both run: graphile-worker (its own add_job, and the PostgreSQL create
  // function) and the jobs table.
  it.each(TEST_STORE === "postgres" ? ["graphile", "table"] : ["table"])(
    "carry the enqueuing request's trace context when tracing is on (QUEUE_DRIVER=%s)",
    async (queueDriver) => {
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      // No job runners: the submit job stays queued, as it was stored.
      const t = await startTestServer({ ...E2E_ENV, WORKER_CONCURRENCY: "0", QUEUE_DRIVER: queueDriver }, undefined, {
        tracerProvider: provider,
      });
      try {
        const { key } = await t.createAccount(1000);
        const taskId = await createGeneration(t, key, "a stored trace context");
        const [payload] = (await pendingPayloads(t.server.store.db, SUBMIT_JOB)).filter((p) => p.taskId === taskId);
        const carried = (payload?.[TRACE_FIELD] as { traceparent?: string } | undefined)?.traceparent ?? "";
        const create = exporter.getFinishedSpans().find((s) => s.name === "POST /api/v1/generations");
        expect(TRACEPARENT.exec(carried)?.[1]).toBe(create?.spanContext().traceId);
      } finally {
        await t.close();
        await provider.shutdown();
      }
    },
  );

  it("without a trace context (queued before tracing was on) still run, as the root of a new trace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "framegate-trace-upgrade-"));
    try {
      // Queued by a server without tracing and no job runners...
      const before = await startTestServer({ ...E2E_ENV, WORKER_CONCURRENCY: "0" }, dir);
      const { key } = await before.createAccount(1000);
      const taskId = await createGeneration(before, key, "queued before tracing");
      expect(await pendingPayloads(before.server.store.db, SUBMIT_JOB)).toEqual([{ taskId }]);
      await before.close();
      // ...and run by one with tracing on.
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      const after = await startTestServer(E2E_ENV, dir, { tracerProvider: provider });
      try {
        expect((await watchTask(after, key, taskId)).final.status).toBe("succeeded");
        const submit = need(
          exporter.getFinishedSpans().find((s) => s.name === `job ${SUBMIT_JOB}`),
          "the submit job's span",
        );
        expect(parentOf(submit)).toBeUndefined();
        const polls = exporter.getFinishedSpans().filter((s) => s.name === "job generation.poll");
        expect(polls.length).toBeGreaterThan(0);
        for (const poll of polls) expect(poll.spanContext().traceId).toBe(submit.spanContext().traceId);
      } finally {
        await after.close();
        await provider.shutdown();
      }
    } finally {
      await dropTestDatabase(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("withTraceContext adds nothing outside a span, and keeps a context already there", async () => {
    const payload = { taskId: "task_1" };
    expect(withTraceContext(payload)).toBe(payload);
    const carried = { taskId: "task_1", [TRACE_FIELD]: { traceparent: "00-1-2-01" } };
    const provider = new BasicTracerProvider();
    const span: Span = provider.getTracer("test").startSpan("x");
    const { context } = await import("@opentelemetry/api");
    context.with(trace.setSpan(context.active(), span), () => {
      expect(withTraceContext(carried)).toBe(carried);
    });
    span.end();
  });
});

describe("tracing off (no OTLP endpoint, no provider)", () => {
  let fake: FakeKling;
  let t: TestServer;
  beforeAll(async () => {
    expect(process.env.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).toBeUndefined();
    fake = await startFakeKling();
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it("adds no traceparent upstream, no trace fields to logs and nothing to job payloads", async () => {
    const { log, lines } = capturingLogger();
    t = await startTestServer({ ...ENV, ...klingEnv(fake) }, undefined, { log });
    const { key } = await t.createAccount(1000);
    const taskId = await createGeneration(t, key, "an untraced task");
    expect((await watchTask(t, key, taskId)).final.status).toBe("succeeded");
    const calls = fake.requests.filter((r) => r.path.startsWith("/v1/"));
    expect(calls.length).toBeGreaterThan(1);
    for (const call of calls) {
      expect(call.headers).not.toHaveProperty("traceparent");
      expect(call.headers).not.toHaveProperty("tracestate");
    }
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toHaveProperty("trace_id");
  });

  it("stores a job's payload exactly as before", async () => {
    const idle = await startTestServer({ ...E2E_ENV, WORKER_CONCURRENCY: "0" });
    try {
      const { key } = await idle.createAccount(1000);
      const taskId = await createGeneration(idle, key, "an untraced stored job");
      const payloads = (await pendingPayloads(idle.server.store.db, SUBMIT_JOB)).filter((p) => p.taskId === taskId);
      expect(payloads).toEqual([{ taskId }]);
    } finally {
      await idle.close();
    }
  });
});
