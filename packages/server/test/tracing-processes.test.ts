/**
 * One trace across processes (issue 16): `framegate api` and `framegate worker` run as child
 * processes on one PostgreSQL database, both exporting to a loopback OTLP/HTTP receiver run here
 * (the exporter's JSON encoding, POST /v1/traces). The create request's span is exported by the
 * API, the submit job's span, a child of it, by the worker: the context crossed the queue in the
 * job's payload. The API exports only when it stops (its batch delay is longer than the test), so
 * its spans arriving shows that a graceful shutdown flushes the exporter.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENV } from "./harness.js";
import { ChildServer, freePort, killAll, sleep } from "./process-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnvSync } from "./test-store.js";

/** A span as the OTLP JSON encoding carries it, with the exporting process's framegate.role. */
interface ExportedSpan {
  role: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string };
}

/** A minimal OTLP/HTTP traces receiver: records every span of every JSON export. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ExportedSpan[]; server: Server }> {
  const spans: ExportedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      for (const rs of body.resourceSpans ?? []) {
        const attributes: OtlpAttribute[] = rs.resource?.attributes ?? [];
        const role = attributes.find((a) => a.key === "framegate.role")?.value.stringValue ?? "?";
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({ role, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId, name: s.name });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, server };
}

describe.runIf(TEST_STORE === "postgres")("one trace across `framegate api` and `framegate worker`", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-trace-"));
  const children: ChildServer[] = [];
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let api: ChildServer;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    const [apiPort, healthPort] = [await freePort(), await freePort()];
    const shared = {
      ...TEST_ENV,
      ...testStoreEnvSync(join(dir, "db")),
      // One DATA_DIR (the fs storage): the worker stores results where the API serves them.
      DATA_DIR: join(dir, "data"),
      SIGNING_SECRET: randomBytes(32).toString("base64url"),
      PUBLIC_BASE_URL: `http://127.0.0.1:${apiPort}`,
      LOG_LEVEL: "warn",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "framegate-test",
    };
    api = new ChildServer(
      `http://127.0.0.1:${apiPort}`,
      { ...shared, PORT: String(apiPort), OTEL_BSP_SCHEDULE_DELAY: "600000" },
      "api",
    );
    const worker = new ChildServer(
      `http://127.0.0.1:${healthPort}`,
      { ...shared, HEALTH_PORT: String(healthPort), OTEL_BSP_SCHEDULE_DELAY: "100" },
      "worker",
    );
    children.push(api, worker);
    await Promise.all(children.map((c) => c.waitReady(60_000)));
  }, 90_000);

  afterAll(async () => {
    await killAll(children);
    await new Promise<void>((resolve) => receiver?.server.close(() => resolve()));
    await dropTestDatabase(join(dir, "db"));
    rmSync(dir, { recursive: true, force: true });
  });

  it("the create request (API) and the task's jobs and provider calls (worker) share one trace id", async () => {
    const { key } = await api.createAccount(1000);
    const created = await api.request("/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "two processes, one trace", params: { duration: "5" } },
    });
    expect(created.status, created.text).toBe(202);
    const taskId: string = created.body.id;
    for (let i = 0; ; i++) {
      const res = await api.request(`/api/v1/generations/${taskId}`, { key });
      if (res.body.status === "succeeded") break;
      expect(res.body.status, res.text).not.toBe("failed");
      if (i > 600) throw new Error(`task still ${res.body.status}`);
      await sleep(100);
    }
    // Stopped gracefully, the API flushes the spans its long batch delay still holds.
    api.proc.kill("SIGTERM");
    expect((await api.waitExit(30_000)).code).toBe(0);

    const findCreate = () => receiver.spans.find((s) => s.role === "api" && s.name === "POST /api/v1/generations");
    const deadline = Date.now() + 20_000;
    while (!findCreate() && Date.now() < deadline) await sleep(50);
    const create = findCreate();
    expect(create, JSON.stringify(receiver.spans.map((s) => `${s.role} ${s.name}`))).toBeDefined();
    const traceId = create?.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId && s.role === "worker");
    while (!inTrace().some((s) => s.name === "job generation.poll") && Date.now() < deadline) await sleep(50);
    const workerSpans = inTrace();
    const submit = workerSpans.find((s) => s.name === "job generation.submit");
    expect(submit?.parentSpanId, JSON.stringify(workerSpans)).toBe(create?.spanId);
    const upstream = workerSpans.find((s) => s.name === "simulated submit");
    expect(upstream?.parentSpanId).toBe(submit?.spanId);
    expect(workerSpans.some((s) => s.name === "job generation.poll")).toBe(true);
  }, 90_000);
});
