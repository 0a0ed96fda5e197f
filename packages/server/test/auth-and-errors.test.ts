/**
 * Authentication, scopes, tenant isolation, the error envelope on every kind of failure, the
 * public-API switch, health endpoints and list pagination (api-contract §1, §2, §3, §5, §11).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";

const GENERATIONS = "/api/v1/generations";
const ok = { model: "kling-2-6", prompt: "a lighthouse at dusk" };
const ALL_SCOPES = [
  "models:read",
  "generations:create",
  "generations:read",
  "files:create",
  "files:read",
  "credits:read",
  "webhooks:manage",
  "keys:manage",
];

function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const requestId = res.headers.get("x-request-id");
  expect(requestId).toMatch(/^req_[0-9A-Za-z]+$/);
  expect(Object.keys(res.body)).toEqual(["error"]);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.requestId).toBe(requestId);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
}

function expectRequestId(res: TestResponse) {
  expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9A-Za-z]+$/);
}

describe("authentication, scopes and errors", () => {
  let t: TestServer;

  beforeAll(async () => {
    // No worker: tasks stay queued. Limits off: many requests per key below.
    t = await startTestServer({
      WORKER_CONCURRENCY: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
  });
  afterAll(() => t.close());

  describe("API keys", () => {
    const authedRoutes: [string, string, unknown?][] = [
      ["GET", GENERATIONS],
      ["POST", GENERATIONS, ok],
      ["GET", `${GENERATIONS}/task_doesnotexist`],
      ["GET", "/api/v1/credits"],
    ];

    it.each(authedRoutes)("%s %s without Authorization → 401 api_key_missing", async (method, path, json) => {
      const res = await t.request(path, { method, ...(json ? { json } : {}) });
      expectError(res, 401, "api_key_missing");
    });

    it.each([
      ["Basic scheme", "Basic dXNlcjpwYXNz"],
      ["Bearer without a token", "Bearer"],
      ["empty header", ""],
    ])("%s → 401 api_key_missing", async (_name, header) => {
      const res = await t.request("/api/v1/credits", { headers: { authorization: header } });
      expectError(res, 401, "api_key_missing");
    });

    it.each([
      ["not a key at all", "hello"],
      ["wrong prefix", `sk_live_${"a".repeat(40)}`],
      ["too short a secret", "rvya_sk_abc123"],
      ["non-base62 secret", `rvya_sk_${"a".repeat(30)}-_${"b".repeat(10)}`],
      ["well-formed but unknown", `rvya_sk_${"Z".repeat(43)}`],
    ])("%s → 401 api_key_invalid", async (_name, key) => {
      for (const path of ["/api/v1/credits", GENERATIONS]) {
        const res = await t.request(path, { key });
        expectError(res, 401, "api_key_invalid");
      }
    });

    it("accepts the key with a lower-case bearer scheme", async () => {
      const { key } = await t.createAccount(10);
      const res = await t.request("/api/v1/credits", { headers: { authorization: `bearer ${key}` } });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({ current_credits: 10 });
    });

    it("a revoked key → 401 api_key_revoked; the account's other keys keep working", async () => {
      const { accountId, key, keyId } = await t.createAccount(100);
      const other = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
      expect(other.status).toBe(201);
      expect((await t.request("/api/v1/credits", { key })).status).toBe(200);

      const revoked = await t.admin(`/admin/v1/keys/${keyId}`, { method: "DELETE" });
      expect(revoked.status, revoked.text).toBe(200);
      expect(revoked.body.revoked_at).toEqual(expect.any(String));

      expectError(await t.request("/api/v1/credits", { key }), 401, "api_key_revoked");
      expectError(await t.request(GENERATIONS, { key }), 401, "api_key_revoked");
      expectError(await t.request(GENERATIONS, { key, json: ok }), 401, "api_key_revoked");
      expect((await t.request("/api/v1/credits", { key: other.body.key })).body).toEqual({ current_credits: 100 });
      // A revoked key cannot have charged anything.
      expect((await t.request(GENERATIONS, { key: other.body.key })).body.data).toEqual([]);
    });

    it("a key created with expires_at in the past → 401 api_key_expired", async () => {
      const { key } = await t.createAccount(100, { expires_at: "2020-01-01T00:00:00.000Z" });
      expectError(await t.request("/api/v1/credits", { key }), 401, "api_key_expired");
      expectError(await t.request(GENERATIONS, { key, json: ok }), 401, "api_key_expired");
    });

    it("scopes narrowed to generations:read: read generations only", async () => {
      const { key } = await t.createAccount(100, { scopes: ["generations:read"] });
      const create = await t.request(GENERATIONS, { key, json: ok });
      expectError(create, 403, "api_scope_denied");
      expect(create.body.error.message).toMatch(/generations:create/);
      const credits = await t.request("/api/v1/credits", { key });
      expectError(credits, 403, "api_scope_denied");
      expect(credits.body.error.message).toMatch(/credits:read/);

      const list = await t.request(GENERATIONS, { key });
      expect(list.status, list.text).toBe(200);
      expect(list.body).toEqual({ object: "list", data: [], has_more: false });
      const one = await t.request(`${GENERATIONS}/task_doesnotexist`, { key });
      expectError(one, 404, "not_found");
    });

    it("scopes narrowed to generations:create: can create but not read", async () => {
      const { key, accountId } = await t.createAccount(100, { scopes: ["generations:create"] });
      const create = await t.request(GENERATIONS, { key, json: ok });
      expect(create.status, create.text).toBe(202);
      expectError(await t.request(GENERATIONS, { key }), 403, "api_scope_denied");
      expectError(await t.request(`${GENERATIONS}/${create.body.id}`, { key }), 403, "api_scope_denied");
      const account = await t.admin(`/admin/v1/accounts/${accountId}`);
      expect(account.body.credits).toBe(45);
    });

    it("a scope-denied create charges nothing", async () => {
      const { accountId, key } = await t.createAccount(100, { scopes: ["credits:read", "generations:read"] });
      expectError(await t.request(GENERATIONS, { key, json: ok }), 403, "api_scope_denied");
      expect((await t.request("/api/v1/credits", { key })).body).toEqual({ current_credits: 100 });
      expect((await t.request(GENERATIONS, { key })).body.data).toEqual([]);
      expect((await t.admin(`/admin/v1/accounts/${accountId}`)).body.ledger.entries).toBe(1);
    });

    it("new keys get every scope", async () => {
      const { accountId } = await t.createAccount(1);
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
      expect(res.status).toBe(201);
      expect([...res.body.scopes].sort()).toEqual([...ALL_SCOPES].sort());
    });

    it("models and openapi.json need no key (and ignore a bad one)", async () => {
      for (const path of ["/api/v1/models", "/api/v1/openapi.json"]) {
        const anonymous = await t.request(path);
        expect(anonymous.status, anonymous.text).toBe(200);
        expectRequestId(anonymous);
        const badKey = await t.request(path, { key: "rvya_sk_nope" });
        expect(badKey.status, badKey.text).toBe(200);
      }
      const models = await t.request("/api/v1/models");
      expect(models.body.object).toBe("list");
      expect(models.body.data.map((m: { id: string }) => m.id)).toEqual(["kling-2-6"]);
      const openapi = await t.request("/api/v1/openapi.json");
      expect(openapi.body.openapi).toMatch(/^3\./);
    });
  });

  describe("tenant isolation", () => {
    it("account B cannot see account A's task, and gets the same 404 as for a missing id", async () => {
      const a = await t.createAccount(200);
      const b = await t.createAccount(200);
      const taskA = await t.request(GENERATIONS, { key: a.key, json: ok });
      expect(taskA.status).toBe(202);
      const taskB = await t.request(GENERATIONS, { key: b.key, json: { ...ok, client_request_id: "b-only" } });
      expect(taskB.status).toBe(202);

      const foreign = await t.request(`${GENERATIONS}/${taskA.body.id}`, { key: b.key });
      expectError(foreign, 404, "not_found");
      const missing = await t.request(`${GENERATIONS}/task_0000000000000000000000`, { key: b.key });
      expectError(missing, 404, "not_found");
      expect(foreign.body.error.message).toBe(missing.body.error.message);
      expect(foreign.text).not.toContain(taskA.body.id);
      expect(foreign.text).not.toContain(a.accountId);

      // Each list shows only its own tasks.
      const listA = await t.request(GENERATIONS, { key: a.key });
      expect(listA.body.data.map((x: { id: string }) => x.id)).toEqual([taskA.body.id]);
      const listB = await t.request(GENERATIONS, { key: b.key });
      expect(listB.body.data.map((x: { id: string }) => x.id)).toEqual([taskB.body.id]);

      // Another account's task id is not a valid cursor either.
      const cursor = await t.request(`${GENERATIONS}?starting_after=${taskA.body.id}`, { key: b.key });
      expectError(cursor, 400, "validation_failed");

      // The owner still sees it; the balances are independent.
      expect((await t.request(`${GENERATIONS}/${taskA.body.id}`, { key: a.key })).status).toBe(200);
      expect((await t.request("/api/v1/credits", { key: a.key })).body).toEqual({ current_credits: 145 });
      expect((await t.request("/api/v1/credits", { key: b.key })).body).toEqual({ current_credits: 145 });
    });
  });

  describe("error envelope", () => {
    let key: string;
    beforeAll(async () => {
      key = (await t.createAccount(1000)).key;
    });

    it.each([
      ["GET", "/api/v1/nope"],
      ["GET", "/api/v2/generations"],
      ["GET", "/"],
      ["GET", "/api/v1/generations/task_x/extra"],
    ])("unknown route %s %s → 404 not_found", async (method, path) => {
      const res = await t.request(path, { method, key });
      expectError(res, 404, "not_found");
    });

    it("unknown admin route (with the admin token) → 404 not_found", async () => {
      expectError(await t.admin("/admin/v1/nope", { method: "POST" }), 404, "not_found");
      expectError(await t.admin("/admin/v1/accounts/acct_x/nope"), 404, "not_found");
    });

    it.each([
      ["DELETE", GENERATIONS, ["GET", "POST"]],
      ["PUT", GENERATIONS, ["GET", "POST"]],
      ["POST", "/api/v1/credits", ["GET"]],
      ["DELETE", `${GENERATIONS}/task_abc`, ["GET"]],
      ["POST", "/api/v1/models", ["GET"]],
      ["POST", "/healthz", ["GET"]],
    ])("%s %s → 405 method_not_allowed with Allow", async (method, path, allowed) => {
      const res = await t.request(path, { method, key });
      expectError(res, 405, "method_not_allowed");
      const allow = (res.headers.get("allow") ?? "").split(",").map((s) => s.trim());
      expect(allow.sort()).toEqual([...allowed].sort());
    });

    it("405 does not need (or check) a key", async () => {
      const res = await t.request("/api/v1/credits", { method: "POST" });
      expectError(res, 405, "method_not_allowed");
    });

    it("a JSON body over 64 KiB with Content-Length → 413 payload_too_large, nothing charged", async () => {
      const { key: k } = await t.createAccount(100);
      const body = JSON.stringify({ ...ok, client_request_id: "x".repeat(70 * 1024) });
      const res = await t.request(GENERATIONS, {
        key: k,
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
      });
      expectError(res, 413, "payload_too_large");
      for (let i = 0; i < 3; i++) {
        expect((await t.request("/api/v1/credits", { key: k })).body).toEqual({ current_credits: 100 });
      }
    });

    it("the limit is exactly 64 KiB: 65536 bytes are read, 65537 are refused", async () => {
      const { key: k } = await t.createAccount(100);
      const json = JSON.stringify(ok);
      const padded = (size: number) => json + " ".repeat(size - json.length);
      const send = (body: string) =>
        t.request(GENERATIONS, { key: k, method: "POST", body, headers: { "content-type": "application/json" } });
      expectError(await send(padded(65537)), 413, "payload_too_large");
      const atLimit = await send(padded(65536));
      expect(atLimit.status, atLimit.text).toBe(202);
      expect((await t.request("/api/v1/credits", { key: k })).body).toEqual({ current_credits: 45 });
    });

    it("a chunked JSON body over 64 KiB without Content-Length → 413 payload_too_large", async () => {
      const { key: k } = await t.createAccount(100);
      const chunk = new TextEncoder().encode("x".repeat(8 * 1024));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(`{"model":"kling-2-6","prompt":"`));
        },
        pull(controller) {
          // Up to 128 KiB, more than the limit; the server may stop reading early.
          if (sent >= 128 * 1024) {
            controller.enqueue(new TextEncoder().encode(`"}`));
            controller.close();
            return;
          }
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const res = await fetch(`${t.url}${GENERATIONS}`, {
        method: "POST",
        body: stream,
        duplex: "half",
        headers: { authorization: `Bearer ${k}`, "content-type": "application/json" },
      } as RequestInit & { duplex: "half" });
      expect(res.headers.get("content-length")).not.toBeNull();
      const text = await res.text();
      expectError({ status: res.status, headers: res.headers, body: JSON.parse(text), text }, 413, "payload_too_large");
      // The unread rest of the body must not break the client's next requests (keep-alive reuse).
      for (let i = 0; i < 3; i++) {
        expect((await t.request("/api/v1/credits", { key: k })).body).toEqual({ current_credits: 100 });
      }
    });

    it("a chunked body just under 64 KiB is read (and validated)", async () => {
      const body = JSON.stringify({ ...ok, client_request_id: "x".repeat(60 * 1024) });
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 4096) controller.enqueue(bytes.slice(i, i + 4096));
          controller.close();
        },
      });
      const res = await fetch(`${t.url}${GENERATIONS}`, {
        method: "POST",
        body: stream,
        duplex: "half",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      } as RequestInit & { duplex: "half" });
      const text = await res.text();
      // The body is parsed: the 60 KiB client_request_id is then a validation error, not a 413.
      expectError({ status: res.status, headers: res.headers, body: JSON.parse(text), text }, 400, "validation_failed");
    });

    it("an internal-looking path does not leak: unknown task id is a plain not_found", async () => {
      const res = await t.request(`${GENERATIONS}/${"%27%22;--"}`, { key });
      expectError(res, 404, "not_found");
    });

    it("every response, success or error, carries X-Request-Id: req_…, unique per request", async () => {
      const responses = [
        await t.request("/healthz"),
        await t.request("/readyz"),
        await t.request("/api/v1/models"),
        await t.request("/api/v1/openapi.json"),
        await t.request("/api/v1/credits", { key }),
        await t.request(GENERATIONS, { key }),
        await t.request(GENERATIONS, { key, json: ok }),
        await t.request(GENERATIONS, { key, json: { model: "x" } }),
        await t.request("/api/v1/credits"),
        await t.request("/api/v1/nope"),
        await t.request("/api/v1/credits", { method: "POST" }),
        await t.admin("/admin/v1/accounts"),
        await t.request("/admin/v1/accounts"),
      ];
      const ids = responses.map((r) => {
        expectRequestId(r);
        if (r.status >= 400) expect(r.body.error.requestId).toBe(r.headers.get("x-request-id"));
        return r.headers.get("x-request-id");
      });
      expect(new Set(ids).size).toBe(ids.length);
    });

    it("/healthz and /readyz return 200", async () => {
      const health = await t.request("/healthz");
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: "ok" });
      const ready = await t.request("/readyz");
      expect(ready.status, ready.text).toBe(200);
      expect(ready.body.status).toBe("ready");
    });
  });

  describe("list endpoint", () => {
    let key: string;
    const ids: string[] = [];

    beforeAll(async () => {
      key = (await t.createAccount(1000)).key;
      for (let i = 0; i < 5; i++) {
        const res = await t.request(GENERATIONS, { key, json: { ...ok, client_request_id: `n${i}` } });
        expect(res.status).toBe(202);
        ids.push(res.body.id);
      }
    });

    it("lists newest first with the default limit", async () => {
      const res = await t.request(GENERATIONS, { key });
      expect(res.status).toBe(200);
      expect(res.body.object).toBe("list");
      expect(res.body.has_more).toBe(false);
      expect(res.body.data.map((x: { id: string }) => x.id)).toEqual([...ids].reverse());
      for (const task of res.body.data) expect(task.object).toBe("generation");
    });

    it("pages with limit and starting_after", async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      const hasMore: boolean[] = [];
      for (;;) {
        const qs = `?limit=2${cursor ? `&starting_after=${cursor}` : ""}`;
        const res = await t.request(`${GENERATIONS}${qs}`, { key });
        expect(res.status, res.text).toBe(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((x: { id: string }) => x.id));
        hasMore.push(res.body.has_more);
        if (!res.body.has_more) break;
        cursor = res.body.data.at(-1).id;
      }
      expect(seen).toEqual([...ids].reverse());
      expect(hasMore).toEqual([true, true, false]);
    });

    it("limit=5 over exactly 5 tasks has has_more false; limit=4 has it true", async () => {
      const five = await t.request(`${GENERATIONS}?limit=5`, { key });
      expect(five.body.data).toHaveLength(5);
      expect(five.body.has_more).toBe(false);
      const four = await t.request(`${GENERATIONS}?limit=4`, { key });
      expect(four.body.data).toHaveLength(4);
      expect(four.body.has_more).toBe(true);
      const one = await t.request(`${GENERATIONS}?limit=1&starting_after=${ids[0]}`, { key });
      expect(one.body).toEqual({ object: "list", data: [], has_more: false });
    });

    it.each(["0", "101", "abc", "-1", "1.5", ""])("limit=%s → 400 validation_failed", async (limit) => {
      const res = await t.request(`${GENERATIONS}?limit=${limit}`, { key });
      expectError(res, 400, "validation_failed");
      expect(res.body.error.details[0].path).toBe("limit");
    });

    it("limit=1 and limit=100 are accepted", async () => {
      expect((await t.request(`${GENERATIONS}?limit=1`, { key })).body.data).toHaveLength(1);
      expect((await t.request(`${GENERATIONS}?limit=100`, { key })).body.data).toHaveLength(5);
    });

    it.each(["task_doesnotexist0000000000", "not-an-id!"])(
      "unknown starting_after %s → 400 validation_failed",
      async (cursor) => {
        const res = await t.request(`${GENERATIONS}?starting_after=${encodeURIComponent(cursor)}`, { key });
        expectError(res, 400, "validation_failed");
        expect(res.body.error.details[0].path).toBe("starting_after");
      },
    );

    it("bad status filter and unknown query parameters → 400 validation_failed", async () => {
      const status = await t.request(`${GENERATIONS}?status=done`, { key });
      expectError(status, 400, "validation_failed");
      expect(status.body.error.details[0].path).toBe("status");
      const unknown = await t.request(`${GENERATIONS}?order=asc`, { key });
      expectError(unknown, 400, "validation_failed");
      expect(unknown.body.error.details[0].path).toBe("order");
    });

    it("status=queued lists the queued tasks, other statuses none (no worker runs)", async () => {
      const queued = await t.request(`${GENERATIONS}?status=queued&limit=3`, { key });
      expect(queued.body.data.map((x: { id: string }) => x.id)).toEqual([...ids].reverse().slice(0, 3));
      expect(queued.body.has_more).toBe(true);
      for (const status of ["processing", "succeeded", "failed"]) {
        const res = await t.request(`${GENERATIONS}?status=${status}`, { key });
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ object: "list", data: [], has_more: false });
      }
    });
  });
});

describe("status filter with a running worker", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it("filters by status across succeeded, failed and processing tasks", async () => {
    const { key } = await t.createAccount(1000);
    const create = async (prompt: string) => {
      const res = await t.request(GENERATIONS, { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      return res.body.id as string;
    };
    const failed = await create("boom [sim:fail]");
    const succeeded = await create("a tiny clip");
    expect((await waitForTask(t, key, failed)).status).toBe("failed");
    expect((await waitForTask(t, key, succeeded)).status).toBe("succeeded");
    const slow = await create("slow one [sim:delay=30]");
    const deadline = Date.now() + 10_000;
    while ((await t.request(`${GENERATIONS}/${slow}`, { key })).body.status !== "processing") {
      if (Date.now() > deadline) throw new Error("task never started processing");
      await new Promise((r) => setTimeout(r, 20));
    }

    const ids = async (status: string) => {
      const res = await t.request(`${GENERATIONS}?status=${status}`, { key });
      expect(res.status, res.text).toBe(200);
      for (const task of res.body.data) expect(task.status).toBe(status);
      return res.body.data.map((x: { id: string }) => x.id);
    };
    expect(await ids("failed")).toEqual([failed]);
    expect(await ids("succeeded")).toEqual([succeeded]);
    expect(await ids("processing")).toEqual([slow]);
    expect(await ids("queued")).toEqual([]);
    const all = await t.request(GENERATIONS, { key });
    expect(all.body.data.map((x: { id: string }) => x.id)).toEqual([slow, succeeded, failed]);
  });
});

describe("key expiry with a manual clock", () => {
  let t: TestServer;
  const clock = new ManualClock();
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "0" }, undefined, { clock });
  });
  afterAll(() => t.close());

  it("a key works until expires_at and then → 401 api_key_expired", async () => {
    const expiresAt = new Date(clock.now().getTime() + 60 * 60 * 1000).toISOString();
    const { key } = await t.createAccount(100, { expires_at: expiresAt });
    expect((await t.request("/api/v1/credits", { key })).status).toBe(200);
    clock.advance(59 * 60 * 1000);
    expect((await t.request("/api/v1/credits", { key })).status).toBe(200);
    clock.advance(60 * 1000);
    expectError(await t.request("/api/v1/credits", { key }), 401, "api_key_expired");
    expectError(await t.request(GENERATIONS, { key, json: ok }), 401, "api_key_expired");
    clock.advance(24 * 60 * 60 * 1000);
    expectError(await t.request(GENERATIONS, { key }), 401, "api_key_expired");
  });

  it("expires_at with a time-zone offset is honoured as an instant", async () => {
    const inOneHour = new Date(clock.now().getTime() + 60 * 60 * 1000);
    // The same instant written in UTC+02:00.
    const local = new Date(inOneHour.getTime() + 2 * 3600 * 1000).toISOString().replace("Z", "+02:00");
    const { key } = await t.createAccount(100, { expires_at: local });
    expect((await t.request("/api/v1/credits", { key })).status).toBe(200);
    clock.advance(61 * 60 * 1000);
    expectError(await t.request("/api/v1/credits", { key }), 401, "api_key_expired");
  });
});

describe("PUBLIC_API_ENABLED=false", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PUBLIC_API_ENABLED: "false", WORKER_CONCURRENCY: "0" });
  });
  afterAll(() => t.close());

  it("/api/v1 routes → 503 public_api_disabled; health and admin still work", async () => {
    const { key } = await t.createAccount(100);
    const cases: [string, string, unknown?][] = [
      ["GET", "/api/v1/models"],
      ["GET", "/api/v1/openapi.json"],
      ["GET", GENERATIONS],
      ["POST", GENERATIONS, ok],
      ["GET", "/api/v1/credits"],
      ["GET", "/api/v1/nope"],
    ];
    for (const [method, path, json] of cases) {
      const res = await t.request(path, { method, key, ...(json ? { json } : {}) });
      expectError(res, 503, "public_api_disabled");
      const anonymous = await t.request(path, { method, ...(json ? { json } : {}) });
      expectError(anonymous, 503, "public_api_disabled");
    }
    expect((await t.request("/healthz")).status).toBe(200);
    expect((await t.request("/readyz")).status).toBe(200);
    const account = await t.admin("/admin/v1/accounts");
    expect(account.status).toBe(200);
    expect(account.body.data[0].credits).toBe(100);
  });
});
