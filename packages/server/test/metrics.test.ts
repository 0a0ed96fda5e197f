/**
 * Prometheus metrics (issue 16), checked through GET /metrics as Prometheus would read them:
 * values after real traffic (a succeeded and a failed, refunded task, webhook deliveries, an
 * upload, a 429), bounded label sets under a thousand distinct ids, the token rules, and (on
 * PostgreSQL) an api and a worker process scraped side by side with the queue gauges agreeing.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../src/observability/metrics.js";
import { uploadFile } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { ADMIN_TOKEN, REPO_ROOT, request, startTestServer, TEST_ENV, type TestServer, waitForTask } from "./harness.js";
import { ChildServer, freePort, killAll, sleep } from "./process-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnvSync } from "./test-store.js";
import { WebhookReceiver } from "./webhook-receiver.js";

const METRICS_TOKEN = "metrics-token-0123456789abcdef0123456789abcdef";
const PRICE = 55;

/** One sample of the text format: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (the subset prom-client writes). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key as string] = (raw as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; undefined when none. */
function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** Sum over every sample with this name and (at least) these labels. */
function sumOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(baseUrl: string, token = METRICS_TOKEN): Promise<Sample[]> {
  const res = await request(baseUrl, "/metrics", { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(res.text);
}

async function createTask(
  t: { request: TestServer["request"] },
  key: string,
  prompt: string,
  idempotencyKey?: string,
): Promise<string> {
  const res = await t.request("/api/v1/generations", {
    key,
    json: { model: "kling-2-6", prompt },
    ...(idempotencyKey ? { headers: { "Idempotency-Key": idempotencyKey } } : {}),
  });
  expect(res.status, res.text).toBe(202);
  return res.body.id;
}

describe("metrics after real traffic", () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  const dir = mkdtempSync(join(tmpdir(), "framegate-metrics-"));

  beforeAll(async () => {
    // /broken answers 500: its attempts are counted as http_error.
    receiver = await WebhookReceiver.start((req) => ({ status: req.path === "/broken" ? 500 : 200 }));
    t = await startTestServer({
      METRICS_TOKEN,
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      // Three creates a minute per key: the fourth of one key is the 429 below.
      RATE_LIMIT_CREATE_PER_MIN: "3",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("counts tasks, credits, provider calls, deliveries, uploads and a 429 as they happened", async () => {
    const { key } = await t.createAccount(10 * PRICE);
    for (const path of ["/hook", "/broken"]) {
      const hook = await t.request("/api/v1/webhooks", { key, json: { url: receiver.at(path) } });
      expect(hook.status, hook.text).toBe(201);
    }

    const okId = await createTask(t, key, "a lighthouse in fog", "metrics-once");
    // The same key again: the stored answer is replayed, nothing is reserved a second time.
    expect(await createTask(t, key, "a lighthouse in fog", "metrics-once")).toBe(okId);
    const failId = await createTask(t, key, "[sim:fail] a render that breaks");
    const [ok, failed] = await Promise.all([waitForTask(t, key, okId), waitForTask(t, key, failId)]);
    expect(ok.status).toBe("succeeded");
    expect(failed.status).toBe("failed");
    await receiver.waitUntil((r) => r.requests.length >= 4, 10_000, "both events to both endpoints");

    // Three creates of a key with no credits (402, but they spend the budget), then a 429.
    const broke = await t.createAccount(0);
    for (let i = 0; i < 3; i++) {
      const res = await t.request("/api/v1/generations", { key: broke.key, json: { model: "kling-2-6", prompt: "x" } });
      expect(res.status, res.text).toBe(402);
    }
    const limited = await t.request("/api/v1/generations", {
      key: broke.key,
      json: { model: "kling-2-6", prompt: "x" },
    });
    expect(limited.status).toBe(429);

    const png = await makeImage(dir, { format: "png", width: 400, height: 300 });
    const upload = await uploadFile(t, key, png, { kind: "image" });
    expect(upload.status, upload.text).toBe(201);

    // Deliveries are counted as their attempt ends, a moment after the receiver answered.
    let m = await scrape(t.url);
    const delivered = (outcome: string) => sumOf(m, "framegate_webhook_deliveries_total", { outcome });
    for (let i = 0; i < 50 && (delivered("succeeded") < 2 || delivered("http_error") < 2); i++) {
      await sleep(100);
      m = await scrape(t.url);
    }
    const task = { model: "kling-2-6", provider: "simulated" };
    expect(sample(m, "framegate_tasks_total", { ...task, outcome: "succeeded", reason: "" })).toBe(1);
    expect(sample(m, "framegate_tasks_total", { ...task, outcome: "failed", reason: "provider_error" })).toBe(1);
    expect(sumOf(m, "framegate_tasks_total")).toBe(2);
    expect(sample(m, "framegate_task_duration_seconds_count", { ...task, phase: "queue_wait" })).toBe(2);
    expect(sample(m, "framegate_task_duration_seconds_count", { ...task, phase: "run" })).toBe(2);

    // Credits: the admin grants (10 × price, then 0), two reservations, one settled, one refunded.
    expect(sample(m, "framegate_credits_total", { entry_type: "granted" })).toBe(10 * PRICE);
    expect(sample(m, "framegate_credits_total", { entry_type: "reserved" })).toBe(2 * PRICE);
    expect(sample(m, "framegate_credits_total", { entry_type: "settled" })).toBe(PRICE);
    expect(sample(m, "framegate_credits_total", { entry_type: "refunded" })).toBe(PRICE);
    // The 402s reserved nothing.
    expect(sample(m, "framegate_credits_total", { entry_type: "released" })).toBeUndefined();

    const sim = { provider: "simulated" };
    expect(sample(m, "framegate_provider_requests_total", { ...sim, operation: "submit", outcome: "ok" })).toBe(2);
    expect(sumOf(m, "framegate_provider_requests_total", { ...sim, operation: "poll" })).toBeGreaterThanOrEqual(2);
    expect(sample(m, "framegate_provider_requests_total", { ...sim, operation: "download", outcome: "ok" })).toBe(1);
    expect(sample(m, "framegate_provider_request_duration_seconds_count", { ...sim, operation: "submit" })).toBe(2);
    expect(sample(m, "framegate_provider_circuit_open", sim)).toBe(0);

    expect(sample(m, "framegate_webhook_deliveries_total", { outcome: "succeeded" })).toBe(2);
    // One first attempt per event to /broken, and maybe a retry already.
    expect(sample(m, "framegate_webhook_deliveries_total", { outcome: "http_error" })).toBeGreaterThanOrEqual(2);
    expect(sample(m, "framegate_webhook_delivery_duration_seconds_count")).toBeGreaterThanOrEqual(4);

    expect(sample(m, "framegate_rate_limited_total", { bucket: "create" })).toBe(1);

    expect(sample(m, "framegate_upload_bytes_total", { kind: "image" })).toBe(statSync(png).size);
    expect(
      sample(m, "framegate_upload_inspection_duration_seconds_count", { kind: "image", outcome: "accepted" }),
    ).toBe(1);

    // Requests under their route templates, with status classes.
    const http = "framegate_http_request_duration_seconds_count";
    expect(sample(m, http, { route: "/api/v1/generations", method: "POST", status_class: "2xx" })).toBe(3);
    expect(sample(m, http, { route: "/api/v1/generations", method: "POST", status_class: "4xx" })).toBe(4);
    expect(sample(m, http, { route: "/api/v1/generations/:id", method: "GET", status_class: "2xx" })).toBeGreaterThan(
      1,
    );
    expect(sample(m, http, { route: "/api/v1/files", method: "POST", status_class: "2xx" })).toBe(1);
    // Scrapes are not in it.
    expect(m.filter((s) => s.name === http && s.labels.route === "/metrics")).toEqual([]);

    // The queue, read from the database: every job is done, and each class and kind has its series.
    expect(
      sample(m, "framegate_queue_jobs", { class: "generation", kind: "generation.submit", state: "waiting" }),
    ).toBe(0);
    expect(sample(m, "framegate_queue_jobs", { class: "webhook", kind: "webhook.deliver", state: "running" })).toBe(0);
    expect(sample(m, "framegate_queue_oldest_job_age_seconds", { class: "generation" })).toBe(0);
    expect(sample(m, "framegate_queue_oldest_job_age_seconds", { class: "webhook" })).toBe(0);
    expect(sample(m, "framegate_metrics_scrape_errors_total", { source: "queue" })).toBeUndefined();

    // prom-client's process metrics, under the same prefix.
    expect(sample(m, "framegate_process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(m.some((s) => s.name.startsWith("framegate_nodejs_eventloop_lag"))).toBe(true);

    // The same registry in process (the stats helpers and tests may read it so).
    const text = await t.server.metrics.registry.getSingleMetricAsString("framegate_tasks_total");
    expect(text).toContain('outcome="succeeded"');
  });

  it("reports jobs waiting in the queue and the age of the oldest, from the database", async () => {
    // A job of a kind no runner claims, due 90 s ago: it stays waiting while it is looked at.
    const { db } = t.server.store;
    const graphile = t.server.config.queueDriver === "graphile";
    const dueAt = new Date(Date.now() - 90_000).toISOString();
    if (graphile) {
      await sql`select graphile_worker.add_job('metrics.probe', '{}'::json,
        run_at => now() - interval '90 seconds', job_key => 'metrics-probe')`.execute(db);
    } else {
      await db
        .insertInto("jobs")
        .values({
          id: "job_metrics_probe",
          kind: "metrics.probe",
          job_key: "metrics-probe",
          payload: "{}",
          run_at: dueAt,
          attempts: 0,
          max_attempts: 1,
          // Held by a runner elsewhere whose lease is still good: running, not waiting.
          locked_by: "w_elsewhere",
          locked_until: new Date(Date.now() + 60_000).toISOString(),
          last_error: null,
          created_at: dueAt,
        })
        .execute();
      const m = await scrape(t.url);
      expect(sample(m, "framegate_queue_jobs", { class: "other", kind: "metrics.probe", state: "running" })).toBe(1);
      expect(sample(m, "framegate_queue_jobs", { class: "other", kind: "metrics.probe", state: "waiting" })).toBe(
        undefined,
      );
      // Its holder died: the lease ran out, so the job is due and free again, i.e. waiting.
      await db
        .updateTable("jobs")
        .set({ locked_until: new Date(Date.now() - 1000).toISOString() })
        .where("id", "=", "job_metrics_probe")
        .execute();
    }
    try {
      const m = await scrape(t.url);
      expect(sample(m, "framegate_queue_jobs", { class: "other", kind: "metrics.probe", state: "waiting" })).toBe(1);
      const age = sample(m, "framegate_queue_oldest_job_age_seconds", { class: "other" }) ?? 0;
      expect(age).toBeGreaterThanOrEqual(89);
      expect(age).toBeLessThan(600);
      // The other classes have nothing waiting.
      expect(sample(m, "framegate_queue_oldest_job_age_seconds", { class: "generation" })).toBe(0);
    } finally {
      if (graphile) await sql`select graphile_worker.remove_job('metrics-probe')`.execute(db);
      else await db.deleteFrom("jobs").where("id", "=", "job_metrics_probe").execute();
    }
  });

  it("keeps label sets bounded: a thousand distinct ids and paths add no series", async () => {
    const { key } = await t.createAccount(0);
    const http = "framegate_http_request_duration_seconds_count";
    const before = (await scrape(t.url)).filter((s) => s.name === http).length;
    for (let i = 0; i < 1100; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          (i + j) % 2 === 0
            ? t.request(`/api/v1/generations/task_${i + j}missing`, { key })
            : t.request(`/no/such/path/${i + j}`),
        ),
      );
    }
    const m = await scrape(t.url);
    const series = m.filter((s) => s.name === http);
    // At most two new label sets: the 404 of the task route, and the unmatched paths.
    expect(series.length).toBeLessThanOrEqual(before + 2);
    expect(sample(m, http, { route: "/api/v1/generations/:id", method: "GET", status_class: "4xx" })).toBe(550);
    expect(sample(m, http, { route: "unmatched", method: "GET", status_class: "4xx" })).toBe(550);
    for (const s of m) {
      for (const value of Object.values(s.labels)) expect(value).not.toMatch(/task_\d|\/no\/such/);
    }
  });

  it("refuses /metrics without the token or with a wrong one, in the error envelope", async () => {
    const none = await t.request("/metrics");
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: "api_key_missing", requestId: expect.any(String) });
    const wrong = await t.request("/metrics", { headers: { authorization: "Bearer not-the-metrics-token" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("api_key_invalid");
    // With METRICS_TOKEN set, the admin token is not the metrics token.
    const admin = await t.request("/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(admin.status).toBe(401);
    const post = await t.request("/metrics", { method: "POST", headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("the README's metrics table", () => {
  it("lists every metric family a process exports, with its type", async () => {
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Metrics"), readme.indexOf("### Configuration"));
    const documented = new Map(
      [...section.matchAll(/^\| `(framegate_[a-z_]+)` +\| (counter|gauge|histogram) /gm)].map((m) => [m[1], m[2]]),
    );
    const metrics = new Metrics();
    const exported = new Map(
      (await metrics.registry.getMetricsAsJSON())
        // prom-client's default process metrics are one wildcard row.
        .filter((m) => !/^framegate_(process|nodejs)_/.test(m.name))
        .map((m) => [m.name, String(m.type)]),
    );
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(exported));
  });
});

describe("which token /metrics takes", () => {
  it("falls back to ADMIN_TOKEN, and is off (404) with neither", async () => {
    const adminOnly = await startTestServer({});
    try {
      await scrape(adminOnly.url, ADMIN_TOKEN);
    } finally {
      await adminOnly.close();
    }
    const neither = await startTestServer({ ADMIN_TOKEN: "" });
    try {
      const res = await neither.request("/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    } finally {
      await neither.close();
    }
  });

  it("serves /metrics on the admin listener too when ADMIN_PORT is set", async () => {
    const port = await freePort();
    const s = await startTestServer({ METRICS_TOKEN, ADMIN_PORT: String(port) });
    try {
      await scrape(s.url);
      const m = await scrape(s.server.adminUrl);
      expect(sample(m, "framegate_provider_circuit_open", { provider: "simulated" })).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe.runIf(TEST_STORE === "postgres")("an api and a worker process, each scraped", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-metrics-procs-"));
  const children: ChildServer[] = [];
  let api: ChildServer;
  let worker: ChildServer;

  beforeAll(async () => {
    const dbDir = join(dir, "db");
    mkdirSync(dbDir);
    const [apiPort, healthPort] = [await freePort(), await freePort()];
    const shared = {
      ...TEST_ENV,
      ...testStoreEnvSync(dbDir),
      SIGNING_SECRET: randomBytes(32).toString("base64url"),
      PUBLIC_BASE_URL: `http://127.0.0.1:${apiPort}`,
      // One DATA_DIR for both: the local storage of results is shared (STORAGE_DRIVER=fs).
      DATA_DIR: join(dir, "data"),
      METRICS_TOKEN,
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    };
    api = new ChildServer(`http://127.0.0.1:${apiPort}`, { ...shared, PORT: String(apiPort) }, "api");
    worker = new ChildServer(
      `http://127.0.0.1:${healthPort}`,
      { ...shared, HEALTH_PORT: String(healthPort) },
      "worker",
    );
    children.push(api, worker);
    await Promise.all(children.map((c) => c.waitReady(60_000)));
  }, 90_000);

  afterAll(async () => {
    await killAll(children);
    await dropTestDatabase(join(dir, "db"));
    rmSync(dir, { recursive: true, force: true });
  });

  it("each role reports what it did, and both report the same queue", async () => {
    const { key } = await api.createAccount(10 * PRICE);
    const doneId = await createTask(api, key, "a quick one");
    expect((await waitForTask(api, key, doneId)).status).toBe("succeeded");
    // A slow task: its poll job stays in the queue while both are scraped.
    await createTask(api, key, "[sim:delay=60] a slow one");

    const apiMetrics = await scrape(api.url);
    const workerMetrics = await scrape(worker.url);
    // The API took the creates; the worker ran the task.
    expect(sample(apiMetrics, "framegate_credits_total", { entry_type: "reserved" })).toBe(2 * PRICE);
    expect(sumOf(apiMetrics, "framegate_tasks_total")).toBe(0);
    expect(sample(workerMetrics, "framegate_tasks_total", { outcome: "succeeded" })).toBe(1);
    expect(sample(workerMetrics, "framegate_credits_total", { entry_type: "settled" })).toBe(PRICE);
    expect(sumOf(workerMetrics, "framegate_provider_requests_total", { operation: "submit" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(sumOf(apiMetrics, "framegate_http_request_duration_seconds_count", { route: "/api/v1/generations" })).toBe(
      2,
    );
    expect(sample(workerMetrics, "framegate_process_cpu_user_seconds_total")).toBeGreaterThan(0);

    // The queue gauges come from the database: both processes see the same jobs. A poll that
    // runs between the two scrapes can move its job between states, so the totals per kind are
    // compared, and again if a job was handed on (replaced) at that very moment.
    const jobsByKind = (m: Sample[]) => {
      const totals: Record<string, number> = {};
      for (const s of m.filter((x) => x.name === "framegate_queue_jobs")) {
        totals[s.labels.kind as string] = (totals[s.labels.kind as string] ?? 0) + s.value;
      }
      return totals;
    };
    let agreed = false;
    let last: [Record<string, number>, Record<string, number>] = [{}, {}];
    for (let i = 0; i < 20 && !agreed; i++) {
      last = [jobsByKind(await scrape(api.url)), jobsByKind(await scrape(worker.url))];
      agreed = JSON.stringify(last[0]) === JSON.stringify(last[1]) && (last[0]["generation.poll"] ?? 0) >= 1;
      if (!agreed) await sleep(100);
    }
    expect(last[1]).toEqual(last[0]);
    expect(last[0]["generation.poll"]).toBeGreaterThanOrEqual(1);

    // The worker's listener applies the same token rule.
    const refused = await worker.request("/metrics");
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("api_key_missing");
  }, 60_000);
});
