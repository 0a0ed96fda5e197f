/**
 * GET /admin/v1/stats after real traffic: a task that succeeded, one that failed and was refunded,
 * one whose submit waits in the queue, a webhook endpoint the dispatcher disabled and one its
 * account disabled. The document must say exactly that. Then the queue states on every driver
 * (waiting, scheduled, running) straight from queue/depth.ts, and the admin token.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { queueDepth } from "../src/queue/depth.js";
import { GraphileQueue } from "../src/queue/graphile-queue.js";
import type { Queue } from "../src/queue/queue.js";
import { TableQueue } from "../src/queue/table-queue.js";
import { openStore, startServer } from "../src/server.js";
import { systemClock } from "../src/util/clock.js";
import { ADMIN_TOKEN, request, startTestServer, TEST_ENV, type TestServer, waitForTask } from "./harness.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";
import { pollUntil, WebhookReceiver } from "./webhook-receiver.js";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ENV = {
  WEBHOOK_ALLOW_INSECURE_URLS: "true",
  WEBHOOK_RETRY_SCHEDULE_MS: "50,50,50,50,50,50,50",
  WEBHOOK_TIMEOUT_MS: "300",
  // Failing for 200 ms disables an endpoint.
  WEBHOOK_AUTO_DISABLE_AFTER_MS: "200",
  RATE_LIMIT_READ_PER_MIN: "0",
  RATE_LIMIT_CREATE_PER_MIN: "0",
};

describe("GET /admin/v1/stats after real traffic", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-stats-"));
  let first: TestServer | undefined;
  let t: TestServer;
  let receiver: WebhookReceiver;
  const ids: Record<string, string> = {};
  let refunded = 0;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(() => ({ status: 500, body: "nope" }));
    first = await startTestServer(ENV, dir);
    const { key, accountId } = await first.createAccount(10_000);
    ids.account = accountId;
    ids.key = key;
    const request = (first as TestServer).request;

    // An endpoint that only fails: the dispatcher disables it after 200 ms of failures.
    const failing = await request("/api/v1/webhooks", { key, json: { url: receiver.at("/failing") } });
    expect(failing.status, failing.text).toBe(201);
    ids.failing = failing.body.id;
    expect((await request(`/api/v1/webhooks/${ids.failing}/test`, { key, method: "POST" })).status).toBe(202);
    await pollUntil(
      async () =>
        (await request(`/api/v1/webhooks/${ids.failing}`, { key })).body.status === "disabled" ? true : undefined,
      10_000,
      "auto-disable",
    );
    // One its account switches off.
    const switched = await request("/api/v1/webhooks", { key, json: { url: receiver.at("/switched") } });
    expect(switched.status, switched.text).toBe(201);
    ids.switched = switched.body.id;
    const patched = await request(`/api/v1/webhooks/${ids.switched}`, {
      key,
      method: "PATCH",
      json: { status: "disabled" },
    });
    expect(patched.status, patched.text).toBe(200);

    const create = async (server: TestServer, prompt: string) => {
      const res = await server.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      return res.body.id as string;
    };
    const ok = await waitForTask(first, key, await create(first, "a lighthouse at dusk"));
    expect(ok.status).toBe("succeeded");
    const failed = await waitForTask(first, key, await create(first, "[sim:fail] a lighthouse at dusk"));
    expect(failed.error.reason).toBe("provider_error");
    refunded = failed.reserved_credits;
    expect(refunded).toBeGreaterThan(0);
    await first.close();
    first = undefined;

    // The same store, served without job runners: the next task's submit job waits.
    t = await startTestServer({ ...ENV, WORKER_CONCURRENCY: "0" }, dir);
    ids.queued = await create(t, "a lighthouse at dawn");
  }, 120_000);

  afterAll(async () => {
    await first?.close();
    await t?.close();
    await receiver?.close();
    await dropTestDatabase(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it("counts the tasks, the refund, the queued job, the providers and the disabled endpoints", async () => {
    const res = await t.admin("/admin/v1/stats");
    expect(res.status, res.text).toBe(200);
    const stats = res.body;
    expect(stats.object).toBe("stats");
    expect(stats.generated_at).toMatch(ISO_MS);
    const now = Date.parse(stats.generated_at);
    expect(stats.windows).toEqual({
      last_hour: { start: new Date(now - 3_600_000).toISOString(), end: stats.generated_at },
      last_day: { start: new Date(now - 86_400_000).toISOString(), end: stats.generated_at },
    });

    const simulated = {
      provider: "simulated",
      created: 2,
      by_status: { queued: 0, processing: 0, succeeded: 1, failed: 1 },
      failure_reasons: { provider_error: 1 },
    };
    const unassigned = {
      provider: null,
      created: 1,
      by_status: { queued: 1, processing: 0, succeeded: 0, failed: 0 },
      failure_reasons: {},
    };
    const window = {
      created: 3,
      by_status: { queued: 1, processing: 0, succeeded: 1, failed: 1 },
      failure_reasons: { provider_error: 1 },
      by_provider: [simulated, unassigned],
    };
    expect(stats.tasks).toEqual({ last_hour: window, last_day: window });
    expect(stats.refunds).toEqual({
      last_hour: { count: 1, credits: refunded },
      last_day: { count: 1, credits: refunded },
    });

    expect(stats.queue.driver).toBe(TEST_STORE === "postgres" ? "graphile" : "table");
    const generation = stats.queue.classes.generation;
    expect(generation.waiting.count).toBe(1);
    expect(generation.waiting.oldest_age_seconds).toBeGreaterThanOrEqual(0);
    expect(generation.running).toEqual({ count: 0, oldest_age_seconds: null });
    expect(generation.scheduled).toEqual({ count: 0, next_due_in_seconds: null });
    expect(stats.queue.classes.webhook).toEqual({
      waiting: { count: 0, oldest_age_seconds: null },
      running: { count: 0, oldest_age_seconds: null },
      scheduled: { count: 0, next_due_in_seconds: null },
    });

    // The breaker is this process's: this server has called no provider, so it is closed since it started.
    const rate = { finished: 2, errors: 1, error_rate: 0.5 };
    expect(stats.providers).toEqual({
      circuit_scope: "process",
      data: [
        {
          provider: "simulated",
          configured: true,
          circuit: { state: "closed", since: expect.stringMatching(ISO_MS), consecutive_failures: 0 },
          recent: { last_hour: rate, last_day: rate },
          // Nothing processing: the queued task's submit has not started. The simulator has no cap.
          concurrency: { in_use: 0, limit: null },
        },
      ],
    });

    const disabled = stats.webhooks.disabled_endpoints;
    expect(disabled.count).toBe(2);
    expect(disabled.recent).toEqual([
      {
        id: ids.switched,
        account_id: ids.account,
        url: receiver.at("/switched"),
        disabled_at: expect.stringMatching(ISO_MS),
        reason: "account",
        failing_since: null,
        failure_count: 0,
      },
      {
        id: ids.failing,
        account_id: ids.account,
        url: receiver.at("/failing"),
        disabled_at: expect.stringMatching(ISO_MS),
        reason: "failing",
        failing_since: expect.stringMatching(ISO_MS),
        failure_count: expect.any(Number),
      },
    ]);
    expect(disabled.recent[1].failure_count).toBeGreaterThanOrEqual(2);
    expect(disabled.recent[0].disabled_at > disabled.recent[1].disabled_at).toBe(true);
  });

  it("counts a deleted endpoint no more", async () => {
    const removed = await t.request(`/api/v1/webhooks/${ids.switched}`, { key: ids.key, method: "DELETE" });
    expect(removed.status, removed.text).toBe(200);
    const stats = (await t.admin("/admin/v1/stats")).body;
    expect(stats.webhooks.disabled_endpoints.count).toBe(1);
    expect(stats.webhooks.disabled_endpoints.recent.map((e: { id: string }) => e.id)).toEqual([ids.failing]);
  });

  it("needs the admin token, takes no query parameters and only GET", async () => {
    const none = await t.request("/admin/v1/stats");
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("api_key_missing");
    const wrong = await t.request("/admin/v1/stats", { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("api_key_invalid");
    const param = await t.admin("/admin/v1/stats?window=week");
    expect(param.status).toBe(400);
    expect(param.body.error).toMatchObject({ code: "validation_failed", message: expect.stringContaining("window") });
    const post = await t.admin("/admin/v1/stats", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
  });
});

describe("GET /admin/v1/stats from an API-only process", () => {
  it("reports no circuit states: its breakers never see a call", async () => {
    const dir = mkdtempSync(join(tmpdir(), "framegate-stats-api-"));
    const config = loadConfig({
      ...TEST_ENV,
      ...(await testStoreEnv(dir)),
      DATA_DIR: dir,
      SIGNING_SECRET: randomBytes(32).toString("base64url"),
    });
    const api = await startServer(config, { role: "api", log: createLogger("silent") });
    try {
      const res = await request(api.adminUrl, "/admin/v1/stats", {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body.providers).toEqual({
        circuit_scope: null,
        data: [
          {
            provider: "simulated",
            configured: true,
            circuit: null,
            recent: {
              last_hour: { finished: 0, errors: 0, error_rate: null },
              last_day: { finished: 0, errors: 0, error_rate: null },
            },
            concurrency: { in_use: 0, limit: null },
          },
        ],
      });
    } finally {
      await api.close();
      await dropTestDatabase(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(TEST_STORE === "postgres" ? (["table", "graphile"] as const) : (["table"] as const))(
  "queue depth: %s",
  (driver) => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it("tells waiting, scheduled and running jobs apart, with the earliest's age", async () => {
      const dir = mkdtempSync(join(tmpdir(), "framegate-depth-"));
      const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)), QUEUE_DRIVER: driver });
      const store = await openStore(config);
      const opts = { leaseMs: 2000, pollIntervalMs: 20, graceMs: 300 };
      const log = createLogger("silent");
      const queue: Queue =
        driver === "graphile"
          ? new GraphileQueue(store.db, systemClock, log, { ...opts, connectionString: config.databaseUrl as string })
          : new TableQueue(store.db, systemClock, log, opts);
      cleanups.push(async () => {
        await queue.stop(500);
        await store.close();
        await dropTestDatabase(dir);
        rmSync(dir, { recursive: true, force: true });
      });
      const depth = async () => {
        const { rows } = await queueDepth(store.db, driver, new Date());
        return Object.fromEntries(rows.map((r) => [`${r.kind}:${r.state}`, r.count]));
      };

      const now = Date.now();
      await queue.enqueue(store.db, { kind: "hold", payload: {} });
      await queue.enqueue(store.db, { kind: "due", payload: {}, key: "due-1" });
      await queue.enqueue(store.db, { kind: "later", payload: {}, runAt: new Date(now + 3_600_000) });
      expect(await depth()).toEqual({ "hold:waiting": 1, "due:waiting": 1, "later:scheduled": 1 });
      const later = (await queueDepth(store.db, driver, new Date())).rows.find((r) => r.kind === "later");
      expect(Math.abs((later?.earliestRunAt.getTime() ?? 0) - (now + 3_600_000))).toBeLessThan(60_000);

      // A runner of "hold" only: while its handler holds the job, the job is running.
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      let started = () => {};
      const running = new Promise<void>((r) => {
        started = r;
      });
      await queue.start([
        {
          name: "test",
          concurrency: 1,
          handlers: {
            hold: {
              run: async () => {
                started();
                await held;
                return undefined;
              },
            },
          },
        },
      ]);
      await running;
      expect(await depth()).toEqual({ "hold:running": 1, "due:waiting": 1, "later:scheduled": 1 });
      release();
      await pollUntil(async () => ((await depth())["hold:running"] === undefined ? true : undefined), 10_000, "done");
      expect(await depth()).toEqual({ "due:waiting": 1, "later:scheduled": 1 });
    });
  },
);
