/**
 * Live status (issue #14): GET /api/v1/generations/{id}/events (Server-Sent Events) and
 * `Prefer: wait` on GET and create. What a client sees: one event per status with ids that
 * resume, heartbeats, the end of the stream after the terminal event, held answers with
 * Preference-Applied, bounds, and release at shutdown. On PostgreSQL, an API process follows the
 * changes a separate worker process commits (LISTEN/NOTIFY), with the backstop poll turned far
 * down so that only the notification can deliver them in time.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { parsePreferWait } from "../src/generations/live/prefer.js";
import { createLogger } from "../src/logger.js";
import { type RunningServer, startServer } from "../src/server.js";
import { request, startTestServer, TEST_ENV, type TestServer, waitForTask } from "./harness.js";
import { eventually, SseReader, sleep } from "./live-helpers.js";
import { ChildServer, freePort } from "./process-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv, testStoreEnvSync } from "./test-store.js";

const NO_LIMITS = { RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" };

async function create(t: TestServer, key: string, prompt: string, headers: Record<string, string> = {}) {
  const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt }, headers });
  if (res.status !== 202) throw new Error(`create: ${res.status} ${res.text}`);
  return res;
}

const events = (t: { url: string }, key: string, id: string, headers: Record<string, string> = {}) =>
  SseReader.open(`${t.url}/api/v1/generations/${id}/events`, { authorization: `Bearer ${key}`, ...headers });

/** An account limited to one running task, and a task that holds that slot for `seconds`. */
async function blockedAccount(t: TestServer, seconds: number) {
  const account = await t.createAccount(10_000);
  const capped = await t.admin(`/admin/v1/accounts/${account.accountId}`, {
    method: "PATCH",
    json: { max_running_tasks: 1 },
  });
  expect(capped.status, capped.text).toBe(200);
  const blocker = (await create(t, account.key, `[sim:delay=${seconds}] blocker`)).body.id as string;
  // Only once the blocker runs is it certain that the account's next task waits.
  for (;;) {
    const view = await t.request(`/api/v1/generations/${blocker}`, { key: account.key });
    if (view.body.status === "processing") break;
    if (view.body.status !== "queued") throw new Error(`blocker ended early: ${view.text}`);
    await sleep(20);
  }
  return { ...account, blocker };
}

describe("Prefer: wait parsing (RFC 7240)", () => {
  it("reads wait=N, clamps to 60, ignores what it cannot parse", () => {
    expect(parsePreferWait("wait=5")).toBe(5);
    expect(parsePreferWait('respond-async, wait="7"')).toBe(7);
    expect(parsePreferWait("Wait=3; foo=bar")).toBe(3);
    expect(parsePreferWait("wait=600")).toBe(60);
    expect(parsePreferWait("wait=5, wait=9")).toBe(5);
    for (const bad of [undefined, "", "wait", "wait=", "wait=-1", "wait=1.5", "wait=abc", "handling=strict"]) {
      expect(parsePreferWait(bad)).toBeUndefined();
    }
  });
});

describe("live status on one server", () => {
  let t: TestServer;
  beforeAll(async () => {
    // The backstop poll is slower than any test here: every change must come by notification.
    t = await startTestServer({
      ...NO_LIMITS,
      SSE_HEARTBEAT_MS: "150",
      MAX_HELD_REQUESTS: "60",
      LIVE_STATUS_POLL_MS: "60000",
    });
  });
  afterAll(() => t?.close());

  it("SSE: queued, processing, succeeded as events 1, 2, 3 (each the task as GET shows it), then the stream ends", async () => {
    const { key, blocker } = await blockedAccount(t, 1);
    const id = (await create(t, key, "[sim:delay=1] followed")).body.id as string;
    const stream = await events(t, key, id);
    expect(stream.status).toBe(200);
    expect(stream.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await stream.ended;
    expect(stream.events.map((e) => e.id)).toEqual(["1", "2", "3"]);
    expect(stream.tasks().map((x) => x.status)).toEqual(["queued", "processing", "succeeded"]);
    expect(stream.retry).toBe(2000);
    const final = await t.request(`/api/v1/generations/${id}`, { key });
    expect(stream.tasks()[2]).toEqual(final.body);
    await waitForTask(t, key, blocker);
    await eventually(() => t.server.live?.stats().watchers === 0, "no watcher left");
  });

  it("SSE resumes from Last-Event-ID: only newer states; 204 once the terminal event was seen", async () => {
    const { key } = await t.createAccount(10_000);
    const id = (await create(t, key, "resume me")).body.id as string;
    const final = await waitForTask(t, key, id);

    const fresh = await events(t, key, id);
    await fresh.ended;
    expect(fresh.events.map((e) => e.id)).toEqual(["3"]);

    const resumed = await events(t, key, id, { "Last-Event-ID": "2" });
    await resumed.ended;
    expect(resumed.events.map((e) => e.id)).toEqual(["3"]);
    expect(resumed.tasks()[0]).toEqual(final);

    const done = await events(t, key, id, { "Last-Event-ID": "3" });
    await done.ended;
    expect(done.status).toBe(204);
    expect(done.events).toEqual([]);

    // A Last-Event-ID that is not ours counts as none: the current state is sent.
    const garbage = await events(t, key, id, { "Last-Event-ID": "abc" });
    await garbage.ended;
    expect(garbage.events.map((e) => e.id)).toEqual(["3"]);
  });

  it("SSE resumed on a processing task starts at the next change", async () => {
    const { key } = await t.createAccount(10_000);
    const id = (await create(t, key, "[sim:delay=1.5] resumed while processing")).body.id as string;
    const first = await events(t, key, id);
    await first.until(() => first.events.some((e) => e.id === "2"));
    first.close();
    const resumed = await events(t, key, id, { "Last-Event-ID": "2" });
    await resumed.ended;
    expect(resumed.events.map((e) => e.id)).toEqual(["3"]);
    expect(resumed.tasks()[0].status).toBe("succeeded");
  });

  it("SSE: heartbeat comments while nothing changes; a client that leaves frees its listener", async () => {
    const { key, blocker } = await blockedAccount(t, 3);
    const id = (await create(t, key, "waits behind the blocker")).body.id as string;
    const before = t.server.live?.stats() ?? { streams: -1, watchers: -1 };
    const stream = await events(t, key, id);
    await stream.until(() => stream.comments >= 2);
    expect(stream.events.map((e) => e.id)).toEqual(["1"]);
    expect(t.server.live?.stats().streams).toBe(before.streams + 1);
    stream.close();
    await eventually(
      () => t.server.live?.stats().streams === before.streams && t.server.live.stats().watchers === before.watchers,
      "the stream's place and listener given back",
    );
    // Nothing listens for the task any more, before it even started.
    expect((await t.request(`/api/v1/generations/${id}`, { key })).body.status).toBe("queued");
    await waitForTask(t, key, blocker);
    await waitForTask(t, key, id);
    expect(t.server.live?.stats()).toEqual({ held: 0, streams: 0, watchers: 0 });
  });

  it("a cancel reaches the stream and a held request at once", async () => {
    const { key, blocker } = await blockedAccount(t, 3);
    const id = (await create(t, key, "cancelled while followed")).body.id as string;
    const stream = await events(t, key, id);
    await stream.until(() => stream.events.length === 1);
    const held = t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } });
    await eventually(() => t.server.live?.stats().held === 1, "the request held");
    const cancelled = await t.request(`/api/v1/generations/${id}/cancel`, { key, method: "POST" });
    expect(cancelled.status, cancelled.text).toBe(200);
    await stream.ended;
    expect(stream.events.map((e) => e.id)).toEqual(["1", "3"]);
    expect(stream.tasks()[1]).toMatchObject({ status: "failed", error: { reason: "canceled" } });
    expect((await held).body).toEqual(stream.tasks()[1]);
    await waitForTask(t, key, blocker);
  });

  it("SSE and Prefer: wait on another account's task are 404 before anything is held or streamed", async () => {
    const owner = await t.createAccount(10_000);
    const other = await t.createAccount(10_000);
    const id = (await create(t, owner.key, "[sim:delay=1] mine")).body.id as string;
    const stream = await events(t, other.key, id);
    await stream.ended;
    expect(stream.status).toBe(404);
    const raw = await request(t.url, `/api/v1/generations/${id}/events`, { key: other.key });
    expect(raw.status).toBe(404);
    expect(raw.body.error.code).toBe("not_found");
    const held = await t.request(`/api/v1/generations/${id}`, { key: other.key, headers: { Prefer: "wait=30" } });
    expect(held.status).toBe(404);
    expect(held.headers.get("preference-applied")).toBeNull();
    expect(t.server.live?.stats().held).toBe(0);
    const missing = await request(t.url, "/api/v1/generations/gen_doesnotexist/events", { key: owner.key });
    expect(missing.status).toBe(404);
    // The key's scope decides, as on GET.
    const scoped = await t.createAccount(10_000, { scopes: ["credits:read"] });
    expect((await request(t.url, `/api/v1/generations/${id}/events`, { key: scoped.key })).status).toBe(403);
    await waitForTask(t, owner.key, id);
  });

  it("Prefer: wait on GET holds until the task ends and says so in Preference-Applied; N > 60 is clamped", async () => {
    const { key } = await t.createAccount(10_000);
    const id = (await create(t, key, "[sim:delay=1] held")).body.id as string;
    const held = await t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } });
    expect(held.status).toBe(200);
    expect(held.body.status).toBe("succeeded");
    expect(held.headers.get("preference-applied")).toBe("wait=30");

    const clamped = await t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=3600" } });
    expect(clamped.status).toBe(200);
    expect(clamped.headers.get("preference-applied")).toBe("wait=60");

    const malformed = await t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=soon" } });
    expect(malformed.status).toBe(200);
    expect(malformed.headers.get("preference-applied")).toBeNull();
    expect(malformed.body).toEqual(held.body);
  });

  it("Prefer: wait gives the current state when N seconds pass first", async () => {
    const { key, blocker } = await blockedAccount(t, 3);
    const id = (await create(t, key, "stays queued")).body.id as string;
    const held = await t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=1" } });
    expect(held.status).toBe(200);
    expect(held.headers.get("preference-applied")).toBe("wait=1");
    expect(["queued", "processing"]).toContain(held.body.status);
    await waitForTask(t, key, blocker);
    await waitForTask(t, key, id);
  });

  it("50 requests held on one task are all answered with the terminal task", async () => {
    const { key } = await t.createAccount(10_000);
    const id = (await create(t, key, "[sim:delay=1.5] many wait")).body.id as string;
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=45" } })),
    );
    console.log(`50 held requests answered after ${Math.round(performance.now() - started)} ms`);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe("succeeded");
      expect(answer.headers.get("preference-applied")).toBe("wait=45");
    }
    expect(t.server.live?.stats().held).toBe(0);
  });

  it("create with Prefer: wait answers 202 with the finished task; a replay is held too, a plain replay is the stored body", async () => {
    const { key } = await t.createAccount(10_000);
    const headers = { "Idempotency-Key": `live-${randomBytes(6).toString("hex")}` };
    const plain = await create(t, key, "[sim:delay=0.5] created and held", headers);
    expect(plain.body.status).toBe("queued");

    const held = await create(t, key, "[sim:delay=0.5] created and held", { ...headers, Prefer: "wait=30" });
    expect(held.status).toBe(202);
    expect(held.headers.get("idempotent-replayed")).toBe("true");
    expect(held.headers.get("preference-applied")).toBe("wait=30");
    expect(held.headers.get("location")).toBe(`/api/v1/generations/${plain.body.id}`);
    expect(held.body).toMatchObject({ id: plain.body.id, status: "succeeded" });

    const replay = await create(t, key, "[sim:delay=0.5] created and held", headers);
    expect(replay.text).toBe(plain.text);

    const fresh = await create(t, key, "[sim:delay=0.5] new and held", { Prefer: "wait=30" });
    expect(fresh.status).toBe(202);
    expect(fresh.body.status).toBe("succeeded");
    expect(fresh.headers.get("preference-applied")).toBe("wait=30");

    // A refused create is answered at once as usual (nothing to wait for).
    const poor = await t.createAccount(0);
    const refused = await t.request("/api/v1/generations", {
      key: poor.key,
      json: { model: "kling-2-6", prompt: "no credits" },
      headers: { Prefer: "wait=30" },
    });
    expect(refused.status).toBe(402);
    expect(refused.headers.get("preference-applied")).toBeNull();
  });
});

describe("the backstop poll", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...NO_LIMITS, LIVE_STATUS_POLL_MS: "200" });
  });
  afterAll(() => t?.close());

  it("finds a change no notice reported (another process on the same SQLite file, a lost NOTIFY)", async () => {
    const { key, blocker } = await blockedAccount(t, 2);
    const id = (await create(t, key, "changed behind the server's back")).body.id as string;
    const stream = await events(t, key, id);
    await stream.until(() => stream.events.length === 1);
    const held = t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } });
    await eventually(() => t.server.live?.stats().held === 1, "the request held");
    // A commit this process did not make: nothing announces it.
    const now = new Date().toISOString();
    await t.server.store.db
      .updateTable("tasks")
      .set({
        status: "failed",
        error_reason: "canceled",
        error_message: "Changed elsewhere.",
        final_credits: 0,
        completed_at: now,
        updated_at: now,
      })
      .where("id", "=", id)
      .execute();
    await stream.ended;
    expect(stream.tasks().map((x) => x.status)).toEqual(["queued", "failed"]);
    const answer = await held;
    expect(answer.body.status).toBe("failed");
    expect(answer.headers.get("preference-applied")).toBe("wait=30");
    await waitForTask(t, key, blocker);
  });
});

describe("long answers and REQUEST_TIMEOUT", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...NO_LIMITS, REQUEST_TIMEOUT: "1s", SSE_HEARTBEAT_MS: "300" });
  });
  afterAll(() => t?.close());

  it("a stream and a held request outlive REQUEST_TIMEOUT, which bounds receiving a request, not answering it", async () => {
    const { key } = await t.createAccount(1000);
    const id = (await create(t, key, "[sim:delay=2.5] longer than the request timeout")).body.id as string;
    const [stream, held] = await Promise.all([
      events(t, key, id),
      t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } }),
    ]);
    expect(held.body.status).toBe("succeeded");
    await stream.ended;
    expect(stream.tasks().at(-1).status).toBe("succeeded");
    expect(stream.comments).toBeGreaterThan(0);
  });
});

describe("live status bounds", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      ...NO_LIMITS,
      MAX_HELD_REQUESTS: "2",
      SSE_MAX_STREAMS_PER_ACCOUNT: "1",
      SSE_MAX_STREAMS: "2",
    });
  });
  afterAll(() => t?.close());

  it("over MAX_HELD_REQUESTS the answer comes at once, without Preference-Applied", async () => {
    const { key, blocker } = await blockedAccount(t, 2);
    const id = (await create(t, key, "held beyond the bound")).body.id as string;
    let settled = 0;
    const holding = [0, 1].map(() =>
      t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } }).finally(() => settled++),
    );
    await eventually(() => t.server.live?.stats().held === 2, "two requests held");
    const over = await t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=30" } });
    expect(over.status).toBe(200);
    expect(over.headers.get("preference-applied")).toBeNull();
    expect(over.body.status).toBe("queued");
    expect(settled).toBe(0);
    const held = await Promise.all(holding);
    expect(held.map((r) => [r.body.status, r.headers.get("preference-applied")])).toEqual([
      ["succeeded", "wait=30"],
      ["succeeded", "wait=30"],
    ]);
    await waitForTask(t, key, blocker);
  });

  it("over SSE_MAX_STREAMS_PER_ACCOUNT a stream is refused with 429 rate_limited; over SSE_MAX_STREAMS with 503", async () => {
    const { key, blocker } = await blockedAccount(t, 2);
    const id = (await create(t, key, "one stream only")).body.id as string;
    const first = await events(t, key, id);
    expect(first.status).toBe(200);
    const second = await request(t.url, `/api/v1/generations/${id}/events`, { key });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe("rate_limited");
    expect(second.body.error.message).toMatch(/SSE_MAX_STREAMS_PER_ACCOUNT/);
    const other = await t.createAccount(1000);
    const theirs = (await create(t, other.key, "[sim:delay=2] theirs")).body.id as string;
    const third = await events(t, other.key, theirs);
    expect(third.status).toBe(200);
    // Two streams are open on the server: a third account is refused for the total.
    const late = await t.createAccount(1000);
    const lateId = (await create(t, late.key, "[sim:delay=0] late")).body.id as string;
    const refused = await request(t.url, `/api/v1/generations/${lateId}/events`, { key: late.key });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("service_unavailable");
    expect(refused.body.error.message).toMatch(/SSE_MAX_STREAMS\b/);
    expect(refused.headers.get("retry-after")).toBe("5");
    await third.ended;
    await first.ended;
    expect(first.tasks().at(-1).status).toBe("succeeded");
    await waitForTask(t, key, blocker);
  });
});

describe("shutdown releases held requests and streams", () => {
  it("held answers come with the current state and the stream ends, well before their wait is over", async () => {
    const t = await startTestServer({ ...NO_LIMITS, SHUTDOWN_GRACE_SECONDS: "30" });
    try {
      const { key } = await blockedAccount(t, 60);
      const id = (await create(t, key, "never starts before shutdown")).body.id as string;
      const held = Array.from({ length: 5 }, () =>
        t.request(`/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=60" } }),
      );
      const stream = await events(t, key, id);
      await eventually(() => t.server.live?.stats().held === 5, "five requests held");
      await stream.until(() => stream.events.length === 1);
      const started = performance.now();
      const closed = t.server.close();
      const answers = await Promise.all(held);
      console.log(`5 held requests answered ${Math.round(performance.now() - started)} ms into the shutdown`);
      await closed;
      console.log(`the shutdown took ${Math.round(performance.now() - started)} ms`);
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.body.status).toBe("queued");
        // Their connections are not kept for another request: the close need not wait for them.
        expect(answer.headers.get("connection")).toBe("close");
      }
      await stream.ended;
      expect(stream.events.map((e) => e.id)).toEqual(["1"]);
    } finally {
      await t.close();
    }
  }, 40_000);
});

describe.runIf(TEST_STORE === "postgres")("an API process follows a separate worker process (PostgreSQL)", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-live-"));
  let api: RunningServer;
  let worker: ChildServer;

  beforeAll(async () => {
    const healthPort = await freePort();
    const shared = {
      ...TEST_ENV,
      ...NO_LIMITS,
      ...(await testStoreEnv(dir)),
      DATA_DIR: dir,
      SIGNING_SECRET: randomBytes(32).toString("base64url"),
      // The backstop poll is far slower than the test's time limit: only NOTIFY can be in time.
      LIVE_STATUS_POLL_MS: "60000",
    };
    api = await startServer(loadConfig({ ...shared, WORKER_CONCURRENCY: "0" }), {
      role: "api",
      log: createLogger("silent"),
    });
    worker = new ChildServer(
      `http://127.0.0.1:${healthPort}`,
      { ...shared, ...testStoreEnvSync(dir), PUBLIC_BASE_URL: api.url, HEALTH_PORT: String(healthPort) },
      "worker",
    );
    await worker.waitReady(60_000);
  }, 90_000);

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    await dropTestDatabase(dir).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it("SSE on the API sees the worker's processing and succeeded promptly; Prefer: wait is answered too", async () => {
    const admin = (path: string, json: unknown) =>
      request(api.adminUrl, path, { json, headers: { authorization: `Bearer ${TEST_ENV.ADMIN_TOKEN}` } });
    const account = await admin("/admin/v1/accounts", { name: "live", credits: 1000 });
    const key = (await admin(`/admin/v1/accounts/${account.body.id}/keys`, {})).body.key as string;
    const created = await request(api.url, "/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "[sim:delay=1] across processes" },
    });
    expect(created.status, created.text).toBe(202);
    const id = created.body.id as string;
    const started = performance.now();
    const [stream, held] = await Promise.all([
      events({ url: api.url }, key, id),
      request(api.url, `/api/v1/generations/${id}`, { key, headers: { Prefer: "wait=50" } }),
    ]);
    await stream.ended;
    console.log(`cross-process: stream ended ${Math.round(performance.now() - started)} ms after the create`);
    expect(stream.tasks().map((x) => x.status)).toEqual(
      stream.events[0]?.id === "1" ? ["queued", "processing", "succeeded"] : ["processing", "succeeded"],
    );
    expect(held.body.status).toBe("succeeded");
    expect(held.headers.get("preference-applied")).toBe("wait=50");
  }, 30_000);
});
