/**
 * Webhook events and their delivery (api-contract §7), against real local receivers:
 * - one generation.succeeded / generation.failed event per task, with the task object as served
 *   by GET /api/v1/generations/{id}, only to endpoints subscribed to that type;
 * - Standard Webhooks headers, verified with the `standardwebhooks` package, also across a secret
 *   rotation (both secrets during the 24 h overlap, only the new one after it);
 * - retries on the configured schedule with a stable webhook-id, the delivery log, timeouts,
 *   redirects not followed, failure counters, auto-disable and re-enable, redelivery.
 *
 * Tiny retry schedules keep this fast. Every receiver listens on 127.0.0.1.
 */
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ManualClock, startTestServer, type TestServer, waitForTask } from "./harness.js";
import { failFirst, ok, pollUntil, type ReceivedRequest, WebhookReceiver } from "./webhook-receiver.js";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const RETRY_MS = 50;
const SCHEDULE = Array.from({ length: 7 }, () => String(RETRY_MS)).join(",");
const BASE_ENV = {
  WEBHOOK_ALLOW_INSECURE_URLS: "true",
  WEBHOOK_RETRY_SCHEDULE_MS: SCHEDULE,
  WEBHOOK_TIMEOUT_MS: "300",
  RATE_LIMIT_READ_PER_MIN: "0",
  RATE_LIMIT_CREATE_PER_MIN: "0",
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// biome-ignore lint/suspicious/noExplicitAny: API JSON
type Json = any;

interface Endpoint {
  id: string;
  signing_secret: string;
  event_types: string[];
}

function harness(getServer: () => TestServer) {
  const t = () => getServer();
  return {
    async endpoint(key: string, url: string, eventTypes?: string[]): Promise<Endpoint> {
      const res = await t().request("/api/v1/webhooks", {
        key,
        json: { url, ...(eventTypes ? { event_types: eventTypes } : {}) },
      });
      expect(res.status, res.text).toBe(201);
      return res.body;
    },
    async getEndpoint(key: string, id: string): Promise<Json> {
      const res = await t().request(`/api/v1/webhooks/${id}`, { key });
      expect(res.status, res.text).toBe(200);
      return res.body;
    },
    /** The whole delivery log of an endpoint (all pages), oldest attempt first. */
    async deliveries(key: string, id: string, query = ""): Promise<Json[]> {
      const all: Json[] = [];
      let cursor: string | undefined;
      for (;;) {
        const sep = query ? `${query}&` : "";
        const res = await t().request(
          `/api/v1/webhooks/${id}/deliveries?${sep}limit=100${cursor ? `&starting_after=${cursor}` : ""}`,
          { key },
        );
        expect(res.status, res.text).toBe(200);
        all.push(...res.body.data);
        if (!res.body.has_more) break;
        cursor = res.body.data.at(-1).id;
      }
      return all.reverse();
    },
    async waitDeliveries(key: string, id: string, n: number, timeoutMs = 10_000): Promise<Json[]> {
      return pollUntil(
        async () => {
          const d = await this.deliveries(key, id);
          return d.length >= n ? d : undefined;
        },
        timeoutMs,
        `${n} deliveries of ${id}`,
      );
    },
    async task(key: string, prompt: string): Promise<string> {
      const res = await t().request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      return res.body.id;
    },
    async events(key: string, query = ""): Promise<Json[]> {
      const res = await t().request(`/api/v1/webhook-events?limit=100${query ? `&${query}` : ""}`, { key });
      expect(res.status, res.text).toBe(200);
      return res.body.data;
    },
    async eventFor(key: string, taskId: string): Promise<Json> {
      return pollUntil(
        async () => (await this.events(key)).find((e) => e.data?.id === taskId),
        10_000,
        `event of ${taskId}`,
      );
    },
    async sendTest(key: string, id: string): Promise<Json> {
      const res = await t().request(`/api/v1/webhooks/${id}/test`, { key, method: "POST" });
      expect(res.status, res.text).toBe(202);
      return res.body;
    },
  };
}

/** Verifies with the reference implementation, "as of" the delivery's own timestamp (for a moved clock). */
function verifyAt(secret: string, req: ReceivedRequest): unknown {
  const ts = Number(req.headers["webhook-timestamp"]) * 1000;
  vi.useFakeTimers({ toFake: ["Date"], now: ts });
  try {
    return new Webhook(secret).verify(req.body, req.headers);
  } finally {
    vi.useRealTimers();
  }
}

function expectStandardHeaders(req: ReceivedRequest, eventId: string) {
  expect(req.method).toBe("POST");
  expect(req.headers["content-type"]).toMatch(/^application\/json/);
  expect(req.headers["webhook-id"]).toBe(eventId);
  expect(req.headers["webhook-timestamp"]).toMatch(/^\d{10}$/);
  expect(req.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$/);
  expect(JSON.parse(req.body).id).toBe(eventId);
}

// -------------------------------------------------------------------------------------------------

describe("webhook events and delivery", () => {
  let t: TestServer;
  const receivers: WebhookReceiver[] = [];
  const h = harness(() => t);
  const receiver = async (program = ok) => {
    const r = await WebhookReceiver.start(program);
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    t = await startTestServer(BASE_ENV);
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it("records exactly one event per terminal task, with the task object, sent only to subscribed endpoints", async () => {
    const r = await receiver();
    const { key } = await t.createAccount(1000);
    const all = await h.endpoint(key, r.at("/all"));
    const failedOnly = await h.endpoint(key, r.at("/failed"), ["generation.failed"]);
    const succeededOnly = await h.endpoint(key, r.at("/succeeded"), ["generation.succeeded"]);
    // Another account's endpoint hears nothing of these tasks.
    const stranger = await t.createAccount(0);
    const strangerEp = await h.endpoint(stranger.key, r.at("/stranger"));

    const okId = await h.task(key, "a calm lake at dawn");
    const failId = await h.task(key, "[sim:fail] a doomed render");
    const [okTask, failTask] = await Promise.all([waitForTask(t, key, okId), waitForTask(t, key, failId)]);
    expect(okTask.status).toBe("succeeded");
    expect(failTask.status).toBe("failed");

    const path = (p: string) => r.requests.filter((q) => q.path === p);
    await r.waitUntil(
      () => path("/all").length >= 2 && path("/failed").length >= 1 && path("/succeeded").length >= 1,
      10_000,
      "all deliveries",
    );
    await sleep(400); // time for any duplicate or misrouted delivery to show up
    expect(path("/all")).toHaveLength(2);
    expect(path("/failed")).toHaveLength(1);
    expect(path("/succeeded")).toHaveLength(1);
    expect(path("/stranger")).toHaveLength(0);
    expect(r.requests).toHaveLength(4);

    // The events: exactly one of each type, one per task.
    const events = await h.events(key);
    expect(events).toHaveLength(2);
    const succeeded = events.filter((e) => e.type === "generation.succeeded");
    const failed = events.filter((e) => e.type === "generation.failed");
    expect(succeeded).toHaveLength(1);
    expect(failed).toHaveLength(1);
    for (const [event, task] of [
      [succeeded[0], okTask],
      [failed[0], failTask],
    ]) {
      expect(Object.keys(event).sort()).toEqual(["api_version", "created_at", "data", "id", "object", "type"]);
      expect(event).toMatchObject({
        id: expect.stringMatching(/^evt_[A-Za-z0-9]+$/),
        object: "event",
        api_version: "2026-05-11",
        created_at: expect.stringMatching(ISO_MS),
      });
      // Same serializer as GET /api/v1/generations/{id}.
      const current = await t.request(`/api/v1/generations/${task.id}`, { key });
      expect(event.data).toEqual(current.body);
      expect(event.data).toEqual(task);
    }
    expect(succeeded[0].data.result.primary_url).toEqual(expect.any(String));
    expect(failed[0].data.error).toMatchObject({ code: "generation_failed" });
    expect((await h.events(key, "type=generation.succeeded")).map((e) => e.id)).toEqual([succeeded[0].id]);
    expect((await h.events(key, "type=generation.failed")).map((e) => e.id)).toEqual([failed[0].id]);
    expect(await h.events(stranger.key)).toEqual([]);
    // And in the store: one row per (task, type), none for the other account.
    const rows = await t.server.store.db
      .selectFrom("webhook_events")
      .select(["task_id", "type", "account_id"])
      .where("task_id", "in", [okId, failId])
      .execute();
    expect(rows).toHaveLength(2);

    // Each delivery: Standard Webhooks headers, the stored envelope as body, signed with that endpoint's secret only.
    const secrets = [all, failedOnly, succeededOnly, strangerEp].map((e) => e.signing_secret);
    const check = (req: ReceivedRequest, ep: Endpoint, event: Json) => {
      expectStandardHeaders(req, event.id);
      expect(Math.abs(Number(req.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
      expect(JSON.parse(req.body)).toEqual(event);
      expect(new Webhook(ep.signing_secret).verify(req.body, req.headers)).toEqual(event);
      for (const other of secrets.filter((s) => s !== ep.signing_secret)) {
        expect(() => new Webhook(other).verify(req.body, req.headers)).toThrow();
      }
    };
    const byId = (reqs: ReceivedRequest[], id: string) => reqs.filter((q) => q.headers["webhook-id"] === id);
    expect(byId(path("/all"), succeeded[0].id)).toHaveLength(1);
    expect(byId(path("/all"), failed[0].id)).toHaveLength(1);
    for (const q of path("/all"))
      check(
        q,
        all,
        events.find((e) => e.id === q.headers["webhook-id"]),
      );
    check(path("/failed")[0] as ReceivedRequest, failedOnly, failed[0]);
    check(path("/succeeded")[0] as ReceivedRequest, succeededOnly, succeeded[0]);

    // The delivery logs agree.
    const logs = await h.deliveries(key, all.id);
    expect(logs.map((d) => [d.event_type, d.status, d.attempt]).sort()).toEqual([
      ["generation.failed", "succeeded", 1],
      ["generation.succeeded", "succeeded", 1],
    ]);
    expect((await h.deliveries(key, failedOnly.id)).map((d) => d.event_id)).toEqual([failed[0].id]);
    expect((await h.deliveries(key, succeededOnly.id)).map((d) => d.event_id)).toEqual([succeeded[0].id]);
    expect(await h.deliveries(stranger.key, strangerEp.id)).toEqual([]);
  });

  it("generation.processing is opt-in: sent when the task starts, only to endpoints that list it", async () => {
    const r = await receiver();
    const { key } = await t.createAccount(1000);
    const optedIn = await h.endpoint(key, r.at("/processing"), ["generation.processing", "generation.succeeded"]);
    const byDefault = await h.endpoint(key, r.at("/default"));
    expect(byDefault.event_types).toEqual(["generation.succeeded", "generation.failed"]);
    expect(optedIn.event_types).toEqual(["generation.processing", "generation.succeeded"]);

    const id = await h.task(key, "a lighthouse in the fog");
    const done = await waitForTask(t, key, id);
    expect(done.status).toBe("succeeded");
    const path = (p: string) => r.requests.filter((q) => q.path === p);
    await r.waitUntil(() => path("/processing").length >= 2 && path("/default").length >= 1, 10_000, "deliveries");
    await sleep(300);
    const types = (p: string) => path(p).map((q) => JSON.parse(q.body).type);
    expect(types("/processing").sort()).toEqual(["generation.processing", "generation.succeeded"]);
    expect(types("/default")).toEqual(["generation.succeeded"]);

    const processing = (await h.events(key, "type=generation.processing")) as Json[];
    expect(processing).toHaveLength(1);
    expect(processing[0].data).toMatchObject({ id, status: "processing", result: null, error: null });
    const req = path("/processing").find((q) => JSON.parse(q.body).type === "generation.processing");
    expect(new Webhook(optedIn.signing_secret).verify(req?.body ?? "", req?.headers ?? {})).toEqual(processing[0]);

    // An account without a subscriber records no processing event at all.
    const quiet = await t.createAccount(1000);
    await h.endpoint(quiet.key, r.at("/quiet"));
    const quietTask = await h.task(quiet.key, "a quiet street");
    expect((await waitForTask(t, quiet.key, quietTask)).status).toBe("succeeded");
    expect(await h.events(quiet.key, "type=generation.processing")).toEqual([]);
  });

  it("retries a failing receiver with the same webhook-id: N failures, then one success, all logged", async () => {
    const N = 3;
    // Bodies larger than the 1 KiB snippet (and than 64 KiB), with multi-byte characters.
    const failBody = `fail:${"é".repeat(60_000)}`;
    const okBody = `ok:${"ü".repeat(40_000)}`;
    const r = await receiver((req) =>
      req.index < N ? { status: 500, body: failBody } : { status: 200, body: okBody },
    );
    const { key } = await t.createAccount(1000);
    const ep = await h.endpoint(key, r.at("/retry"));
    const taskId = await h.task(key, "[sim:fail] retry me");
    await waitForTask(t, key, taskId);
    const event = await h.eventFor(key, taskId);

    await r.waitUntil((x) => x.acknowledged().length >= 1, 10_000, "a 2xx delivery");
    await sleep(RETRY_MS * 8);
    expect(r.requests).toHaveLength(N + 1);
    for (const q of r.requests) {
      expectStandardHeaders(q, event.id);
      expect(new Webhook(ep.signing_secret).verify(q.body, q.headers)).toEqual(event);
    }
    expect(r.acknowledged()).toHaveLength(1);
    // The retries respect the schedule (50 ms ± 10 % jitter).
    for (let i = 1; i < r.requests.length; i++) {
      const gap = (r.requests[i] as ReceivedRequest).receivedAt - (r.requests[i - 1] as ReceivedRequest).receivedAt;
      expect(gap).toBeGreaterThanOrEqual(RETRY_MS * 0.9 - 5);
    }

    const log = await h.waitDeliveries(key, ep.id, N + 1);
    expect(log).toHaveLength(N + 1);
    expect(log.map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
    const snippetOf = (body: string) => {
      const bytes = Buffer.from(body, "utf8").subarray(0, 1024);
      return new TextDecoder().decode(bytes, { stream: true });
    };
    for (const d of log.slice(0, N)) {
      expect(d).toMatchObject({
        object: "webhook_delivery",
        id: expect.stringMatching(/^whdel_/),
        event_id: event.id,
        endpoint_id: ep.id,
        event_type: "generation.failed",
        status: "failed",
        response_status: 500,
        error: "HTTP 500",
        created_at: expect.stringMatching(ISO_MS),
        next_attempt_at: expect.stringMatching(ISO_MS),
      });
      expect(d.duration_ms).toEqual(expect.any(Number));
      expect(d.duration_ms).toBeGreaterThanOrEqual(0);
      expect(Buffer.byteLength(d.response_body, "utf8")).toBeLessThanOrEqual(1024);
      expect(d.response_body).toBe(snippetOf(failBody));
      const wait = Date.parse(d.next_attempt_at) - Date.parse(d.created_at);
      expect(wait).toBeGreaterThanOrEqual(RETRY_MS * 0.9 - 5);
      expect(wait).toBeLessThanOrEqual(RETRY_MS * 1.1 + 1);
    }
    for (let i = 1; i < log.length; i++) {
      expect(log[i].created_at >= log[i - 1].next_attempt_at).toBe(true);
    }
    const last = log[N];
    expect(last).toMatchObject({
      event_id: event.id,
      attempt: N + 1,
      status: "succeeded",
      response_status: 200,
      error: null,
      next_attempt_at: null,
    });
    expect(Buffer.byteLength(last.response_body, "utf8")).toBeLessThanOrEqual(1024);
    expect(last.response_body).toBe(snippetOf(okBody));

    // ?status= filters the log.
    const failedLog = await h.deliveries(key, ep.id, "status=failed");
    expect(failedLog.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expect(failedLog.every((d) => d.status === "failed")).toBe(true);
    const okLog = await h.deliveries(key, ep.id, "status=succeeded");
    expect(okLog.map((d) => d.id)).toEqual([last.id]);
    // Cursor pagination of the log, newest first.
    const page = await t.request(`/api/v1/webhooks/${ep.id}/deliveries?limit=3`, { key });
    expect(page.body.has_more).toBe(true);
    expect(page.body.data.map((d: Json) => d.attempt)).toEqual([4, 3, 2]);
    const rest = await t.request(
      `/api/v1/webhooks/${ep.id}/deliveries?limit=3&starting_after=${page.body.data[2].id}`,
      {
        key,
      },
    );
    expect(rest.body).toMatchObject({ has_more: false, data: [expect.objectContaining({ attempt: 1 })] });

    const endpoint = await h.getEndpoint(key, ep.id);
    expect(endpoint).toMatchObject({
      status: "active",
      failure_count: 0, // reset by the success
      last_success_at: expect.stringMatching(ISO_MS),
      last_failure_at: expect.stringMatching(ISO_MS),
      disabled_at: null,
    });
    expect(endpoint.last_success_at > endpoint.last_failure_at).toBe(true);
  });

  it("gives up after 8 attempts (1 + 7 retries); ?status=failed finds them and redeliver replays the event", async () => {
    const r = await receiver(() => ({ status: 503, body: "down for maintenance" }));
    const { key } = await t.createAccount(0);
    const ep = await h.endpoint(key, r.at("/always-fails"));
    const test = await h.sendTest(key, ep.id);

    await r.waitForRequests(8);
    const log = await h.waitDeliveries(key, ep.id, 8);
    await sleep(RETRY_MS * 10);
    expect(r.requests).toHaveLength(8);
    expect(await h.deliveries(key, ep.id)).toHaveLength(8);
    expect(new Set(r.requests.map((q) => q.headers["webhook-id"]))).toEqual(new Set([test.id]));
    for (const q of r.requests) expect(new Webhook(ep.signing_secret).verify(q.body, q.headers)).toEqual(test);
    expect(log.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const d of log) {
      expect(d).toMatchObject({
        event_id: test.id,
        event_type: "webhook.test",
        status: "failed",
        response_status: 503,
        error: "HTTP 503",
        response_body: "down for maintenance",
      });
    }
    expect(log.slice(0, 7).every((d) => ISO_MS.test(d.next_attempt_at))).toBe(true);
    expect(log[7].next_attempt_at).toBeNull();

    const endpoint = await h.getEndpoint(key, ep.id);
    expect(endpoint).toMatchObject({
      status: "active", // the auto-disable period (5 days by default) has not passed
      failure_count: 8,
      last_failure_at: expect.stringMatching(ISO_MS),
      last_success_at: null,
      disabled_at: null,
    });

    // The receiver is fixed; find the failed deliveries and replay their event.
    r.setProgram(ok);
    const failed = await h.deliveries(key, ep.id, "status=failed");
    expect(failed).toHaveLength(8);
    const eventIds = [...new Set(failed.map((d) => d.event_id))];
    expect(eventIds).toEqual([test.id]);
    const redeliver = await t.request(`/api/v1/webhook-events/${test.id}/redeliver`, { key, method: "POST" });
    expect(redeliver.status, redeliver.text).toBe(202);
    expect(redeliver.body).toEqual({ event_id: test.id, endpoint_ids: [ep.id] });
    await r.waitUntil((x) => x.acknowledged().length === 1, 10_000, "the redelivery");
    const replay = r.requests[8] as ReceivedRequest;
    expectStandardHeaders(replay, test.id);
    expect(JSON.parse(replay.body)).toEqual(test);
    expect(new Webhook(ep.signing_secret).verify(replay.body, replay.headers)).toEqual(test);
    const after = await h.waitDeliveries(key, ep.id, 9);
    expect(after.at(-1)).toMatchObject({ attempt: 9, status: "succeeded", response_status: 200, event_id: test.id });
    expect(await h.getEndpoint(key, ep.id)).toMatchObject({
      failure_count: 0,
      last_success_at: expect.stringMatching(ISO_MS),
    });
    await sleep(RETRY_MS * 4);
    expect(r.requests).toHaveLength(9);
  });

  it("redelivers a generation event (same webhook-id) to the endpoints subscribed to it", async () => {
    const r = await receiver();
    const { key } = await t.createAccount(1000);
    const a = await h.endpoint(key, r.at("/a"), ["generation.failed"]);
    const b = await h.endpoint(key, r.at("/b"));
    const c = await h.endpoint(key, r.at("/c"), ["generation.succeeded"]);
    const taskId = await h.task(key, "[sim:fail] replay");
    await waitForTask(t, key, taskId);
    const event = await h.eventFor(key, taskId);
    await r.waitForRequests(2);
    const res = await t.request(`/api/v1/webhook-events/${event.id}/redeliver`, { key, method: "POST" });
    expect(res.status, res.text).toBe(202);
    expect(res.body.event_id).toBe(event.id);
    expect([...res.body.endpoint_ids].sort()).toEqual([a.id, b.id].sort());
    await r.waitForRequests(4);
    await sleep(300);
    expect(r.requests).toHaveLength(4);
    expect(r.requests.every((q) => q.headers["webhook-id"] === event.id)).toBe(true);
    expect(r.requests.filter((q) => q.path === "/c")).toHaveLength(0);
    expect(await h.deliveries(key, c.id)).toEqual([]);
    for (const [ep, p] of [
      [a, "/a"],
      [b, "/b"],
    ] as const) {
      const got = r.requests.filter((q) => q.path === p);
      expect(got).toHaveLength(2);
      for (const q of got) expect(new Webhook(ep.signing_secret).verify(q.body, q.headers)).toEqual(event);
      const log = await h.deliveries(key, ep.id);
      expect(log.map((d) => [d.attempt, d.status])).toEqual([
        [1, "succeeded"],
        [2, "succeeded"],
      ]);
    }
    // Still one event for the task.
    expect((await h.events(key)).filter((e) => e.data.id === taskId)).toHaveLength(1);
  });

  it("times out a receiver that hangs, logs it as a timeout, and succeeds on the retry", async () => {
    const r = await receiver((req) => (req.index === 0 ? { hang: true } : { status: 204, body: "" }));
    const { key } = await t.createAccount(0);
    const ep = await h.endpoint(key, r.at("/hang"));
    const test = await h.sendTest(key, ep.id);
    const log = await h.waitDeliveries(key, ep.id, 2);
    expect(log[0]).toMatchObject({
      attempt: 1,
      status: "failed",
      response_status: null,
      error: expect.stringMatching(/^timeout: /),
      next_attempt_at: expect.stringMatching(ISO_MS),
    });
    expect(log[0].duration_ms).toBeGreaterThanOrEqual(280);
    expect(log[0].duration_ms).toBeLessThan(5_000);
    expect(log[1]).toMatchObject({ attempt: 2, status: "succeeded", response_status: 204, error: null });
    expect(r.requests).toHaveLength(2);
    expect(r.requests.every((q) => q.headers["webhook-id"] === test.id)).toBe(true);
  });

  it("does not follow redirects: a 3xx is a failed attempt and the target receives nothing", async () => {
    const target = await receiver();
    const statuses = [302, 301, 303, 307, 308, 302, 302, 302];
    const r = await receiver((req) => ({ status: statuses[req.index] ?? 302, redirectTo: target.at("/target") }));
    const { key } = await t.createAccount(0);
    const ep = await h.endpoint(key, r.at("/redirect"));
    const test = await h.sendTest(key, ep.id);
    const log = await h.waitDeliveries(key, ep.id, 8);
    await sleep(RETRY_MS * 6);
    expect(log.map((d) => d.response_status)).toEqual(statuses);
    for (const d of log) {
      expect(d).toMatchObject({ event_id: test.id, status: "failed", error: expect.stringMatching(/redirect/i) });
    }
    expect(r.requests).toHaveLength(8);
    expect(target.requests).toHaveLength(0);
    expect(target.connections).toBe(0);
    expect(await h.getEndpoint(key, ep.id)).toMatchObject({ failure_count: 8, last_success_at: null });
  });
});

// -------------------------------------------------------------------------------------------------

describe("auto-disable after only failures for WEBHOOK_AUTO_DISABLE_AFTER_MS, and re-enable", () => {
  let t: TestServer;
  let r: WebhookReceiver;
  const h = harness(() => t);

  beforeAll(async () => {
    r = await WebhookReceiver.start(() => ({ status: 500, body: "nope" }));
    t = await startTestServer({ ...BASE_ENV, WEBHOOK_AUTO_DISABLE_AFTER_MS: "200" });
  });
  afterAll(async () => {
    await t?.close();
    await r?.close();
  });

  it("disables a failing endpoint, skips it while disabled, and delivers again after PATCH status active", async () => {
    const { key } = await t.createAccount(1000);
    const ep = await h.endpoint(key, r.at("/auto"));
    const first = await h.sendTest(key, ep.id);

    const disabled = await pollUntil(
      async () => {
        const e = await h.getEndpoint(key, ep.id);
        return e.status === "disabled" ? e : undefined;
      },
      10_000,
      "auto-disable",
    );
    expect(disabled).toMatchObject({
      status: "disabled",
      disabled_at: expect.stringMatching(ISO_MS),
      last_failure_at: expect.stringMatching(ISO_MS),
      last_success_at: null,
      revoked_at: null,
    });
    await sleep(RETRY_MS * 6);
    const log = await h.deliveries(key, ep.id);
    const attempts = log.length;
    // Disabled once 200 ms of failures had passed: before the 8 attempts ran out.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThan(8);
    expect(r.requests).toHaveLength(attempts);
    expect(log.every((d) => d.status === "failed" && d.event_id === first.id)).toBe(true);
    expect(disabled.failure_count).toBe(attempts);
    const lastAttempt = log.at(-1);
    expect(Date.parse(lastAttempt.created_at) - Date.parse(log[0].created_at)).toBeGreaterThanOrEqual(200);
    expect(lastAttempt.created_at).toBe(disabled.disabled_at);
    // The attempt that disabled the endpoint announces no further attempt.
    expect(lastAttempt.next_attempt_at).toBeNull();

    // While disabled: events are still recorded, but nothing is delivered to it.
    const missedTask = await h.task(key, "[sim:fail] while disabled");
    await waitForTask(t, key, missedTask);
    const missed = await h.eventFor(key, missedTask);
    await sleep(400);
    expect(r.requests).toHaveLength(attempts);
    expect((await h.deliveries(key, ep.id)).filter((d) => d.event_id === missed.id)).toEqual([]);

    // Re-enable: a fresh start, and deliveries resume.
    r.setProgram(ok);
    const patched = await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "PATCH", json: { status: "active" } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ status: "active", disabled_at: null, failure_count: 0 });
    const nextTask = await h.task(key, "[sim:fail] after re-enable");
    await waitForTask(t, key, nextTask);
    const next = await h.eventFor(key, nextTask);
    await r.waitUntil((x) => x.acknowledged().some((q) => q.headers["webhook-id"] === next.id), 10_000, "resumed");
    const resumed = r.requests.filter((q) => q.headers["webhook-id"] === next.id);
    expect(resumed).toHaveLength(1);
    expect(
      new Webhook(ep.signing_secret).verify(
        (resumed[0] as ReceivedRequest).body,
        (resumed[0] as ReceivedRequest).headers,
      ),
    ).toEqual(next);

    // The event missed while disabled can be replayed now.
    const replay = await t.request(`/api/v1/webhook-events/${missed.id}/redeliver`, { key, method: "POST" });
    expect(replay.status, replay.text).toBe(202);
    expect(replay.body.endpoint_ids).toEqual([ep.id]);
    await r.waitUntil((x) => x.acknowledged().some((q) => q.headers["webhook-id"] === missed.id), 10_000, "replay");
    const finalEndpoint = await h.getEndpoint(key, ep.id);
    expect(finalEndpoint).toMatchObject({
      status: "active",
      failure_count: 0,
      last_success_at: expect.stringMatching(ISO_MS),
      disabled_at: null,
    });
  });

  it("a success resets the failure window: an endpoint that recovers in time stays active", async () => {
    // Fails twice (~100 ms, less than the 200 ms period), then succeeds.
    const rr = await WebhookReceiver.start(failFirst(2));
    try {
      const { key } = await t.createAccount(0);
      const ep = await h.endpoint(key, rr.at("/recovers"));
      await h.sendTest(key, ep.id);
      const log = await h.waitDeliveries(key, ep.id, 3);
      expect(log.map((d) => d.status)).toEqual(["failed", "failed", "succeeded"]);
      // A second event failing once after the success starts a new window, so it is not disabled.
      rr.setProgram(failFirst(rr.requests.length + 1));
      await sleep(250);
      await h.sendTest(key, ep.id);
      await h.waitDeliveries(key, ep.id, 5);
      expect(await h.getEndpoint(key, ep.id)).toMatchObject({ status: "active", disabled_at: null, failure_count: 0 });
    } finally {
      await rr.close();
    }
  });
});

// -------------------------------------------------------------------------------------------------

describe("auto-disable with concurrent deliveries", () => {
  let t: TestServer;
  let r: WebhookReceiver;
  const h = harness(() => t);

  beforeAll(async () => {
    r = await WebhookReceiver.start();
    // One slow retry (so the first event does not keep failing on its own) and a 300 ms period.
    t = await startTestServer({ ...BASE_ENV, WEBHOOK_RETRY_SCHEDULE_MS: "5000", WEBHOOK_AUTO_DISABLE_AFTER_MS: "300" });
  });
  afterAll(async () => {
    await t?.close();
    await r?.close();
  });

  it("a failure that started before a success does not disable the endpoint with the old failure window", async () => {
    const { key } = await t.createAccount(0);
    const ep = await h.endpoint(key, r.at("/race"));
    // E0 fails at once: the failure window starts.
    r.setProgram(() => ({ status: 500 }));
    await h.sendTest(key, ep.id);
    await h.waitDeliveries(key, ep.id, 1);
    await sleep(350); // the window is now older than the auto-disable period
    // E1 is slow and fails; while it is in flight, E2 succeeds (the endpoint is healthy again).
    r.setProgram((req) => (req.index === 1 ? { status: 500, delayMs: 400 } : { status: 200 }));
    await h.sendTest(key, ep.id);
    await r.waitForRequests(2);
    await h.sendTest(key, ep.id);
    const log = await h.waitDeliveries(key, ep.id, 3);
    expect(log.map((d) => d.status).sort()).toEqual(["failed", "failed", "succeeded"]);
    const success = log.find((d) => d.status === "succeeded");
    const lastFailure = log.filter((d) => d.status === "failed").at(-1);
    // The slow failure was logged after the success.
    expect(lastFailure.created_at > success.created_at).toBe(true);
    // Only ~0 ms of failures since the success: the endpoint stays active.
    expect(await h.getEndpoint(key, ep.id)).toMatchObject({ status: "active", disabled_at: null });
  });
});

// -------------------------------------------------------------------------------------------------

describe("signatures across a secret rotation (ManualClock)", () => {
  let t: TestServer;
  let r: WebhookReceiver;
  const clock = new ManualClock();
  const h = harness(() => t);

  beforeAll(async () => {
    r = await WebhookReceiver.start();
    t = await startTestServer(BASE_ENV, undefined, { clock });
  });
  afterAll(async () => {
    await t?.close();
    await r?.close();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("old and new secret both verify during the 24 h overlap; only the new one after it", async () => {
    const { key } = await t.createAccount(1000);
    const ep = await h.endpoint(key, r.at("/rotate"));
    const old = ep.signing_secret;
    const deliveryOf = async (eventId: string) => {
      await r.waitUntil((x) => x.requests.some((q) => q.headers["webhook-id"] === eventId), 10_000, eventId);
      return r.requests.find((q) => q.headers["webhook-id"] === eventId) as ReceivedRequest;
    };

    // Before the rotation: one signature, the current secret.
    const before = await deliveryOf((await h.sendTest(key, ep.id)).id);
    expect(before.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(new Webhook(old).verify(before.body, before.headers)).toBeTruthy();

    const rotated = await t.request(`/api/v1/webhooks/${ep.id}/rotate-secret`, { key, method: "POST" });
    expect(rotated.status, rotated.text).toBe(200);
    const fresh: string = rotated.body.signing_secret;
    expect(fresh).not.toBe(old);

    // During the overlap: the same delivery verifies with both secrets (a test event and a generation event).
    const overlapTest = await h.sendTest(key, ep.id);
    const during = await deliveryOf(overlapTest.id);
    expect(during.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(new Webhook(fresh).verify(during.body, during.headers)).toEqual(overlapTest);
    expect(new Webhook(old).verify(during.body, during.headers)).toEqual(overlapTest);
    const taskId = await h.task(key, "[sim:fail] rotation");
    await waitForTask(t, key, taskId);
    const genEvent = await h.eventFor(key, taskId);
    const genDelivery = await deliveryOf(genEvent.id);
    expect(new Webhook(fresh).verify(genDelivery.body, genDelivery.headers)).toEqual(genEvent);
    expect(new Webhook(old).verify(genDelivery.body, genDelivery.headers)).toEqual(genEvent);

    // Still inside the overlap 23 h later.
    clock.advance(23 * 3600_000);
    const late = await deliveryOf((await h.sendTest(key, ep.id)).id);
    expect(late.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(verifyAt(fresh, late)).toBeTruthy();
    expect(verifyAt(old, late)).toBeTruthy();

    // After the overlap (> 24 h since the rotation): only the new secret.
    clock.advance(3600_000 + 60_000);
    const afterTest = await h.sendTest(key, ep.id);
    const after = await deliveryOf(afterTest.id);
    expect(Number(after.headers["webhook-timestamp"])).toBeGreaterThan(Date.now() / 1000 + 24 * 3600);
    expect(after.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(verifyAt(fresh, after)).toEqual(afterTest);
    expect(() => verifyAt(old, after)).toThrow(/No matching signature/);

    // A second rotation: the new pair is (third, fresh); the first secret stays dead.
    const again = await t.request(`/api/v1/webhooks/${ep.id}/rotate-secret`, { key, method: "POST" });
    const third: string = again.body.signing_secret;
    const last = await deliveryOf((await h.sendTest(key, ep.id)).id);
    expect(last.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(verifyAt(third, last)).toBeTruthy();
    expect(verifyAt(fresh, last)).toBeTruthy();
    expect(() => verifyAt(old, last)).toThrow(/No matching signature/);
  });
});
