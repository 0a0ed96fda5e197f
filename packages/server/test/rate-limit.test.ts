/**
 * Per-key rate limits (api-contract §8, §11): IETF RateLimit-Policy / RateLimit headers, 429
 * rate_limited with Retry-After, per-key budgets, 0 = unlimited, and a 429 that neither creates,
 * charges nor consumes an Idempotency-Key.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestResponse, type TestServer } from "./harness.js";

const GENERATIONS = "/api/v1/generations";
const ok = { model: "kling-2-6", prompt: "rain on a tin roof" };
const LIMITS = { RATE_LIMIT_CREATE_PER_MIN: "3", RATE_LIMIT_READ_PER_MIN: "5", WORKER_CONCURRENCY: "0" };

/** Parses `"name";q=3;w=60` / `"name";r=2;t=59` (one item of an RFC 8941 list). */
function parseItem(value: string | null): { name: string; params: Record<string, number> } {
  expect(value).not.toBeNull();
  const match = /^"([a-z]+)"((?:;[a-z]+=\d+)+)$/.exec(value ?? "");
  expect(match, `not a structured-field item: ${value}`).not.toBeNull();
  const params: Record<string, number> = {};
  for (const part of (match?.[2] ?? "").split(";").slice(1)) {
    const [k, v] = part.split("=");
    params[k as string] = Number(v);
  }
  return { name: match?.[1] ?? "", params };
}

function expectRateHeaders(res: TestResponse, name: string, quota: number, remaining: number) {
  const policy = parseItem(res.headers.get("ratelimit-policy"));
  expect(policy).toEqual({ name, params: { q: quota, w: 60 } });
  const limit = parseItem(res.headers.get("ratelimit"));
  expect(limit.name).toBe(name);
  expect(limit.params.r).toBe(remaining);
  expect(Object.keys(limit.params).sort()).toEqual(["r", "t"]);
  expect(Number.isInteger(limit.params.t)).toBe(true);
  expect(limit.params.t).toBeGreaterThanOrEqual(1);
  expect(limit.params.t).toBeLessThanOrEqual(60);
}

function expectRateLimited(res: TestResponse, name: string, quota: number) {
  expect(res.status, res.text).toBe(429);
  expect(res.body.error.code).toBe("rate_limited");
  expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
  expect(res.body.error.requestId).toMatch(/^req_/);
  const retryAfter = res.headers.get("retry-after");
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  expectRateHeaders(res, name, quota, 0);
}

describe("rate limits (create 3/min, read 5/min)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(LIMITS);
  });
  afterAll(() => t.close());

  it("the 4th create is 429 rate_limited and creates and charges nothing", async () => {
    const { accountId, key } = await t.createAccount(1000);
    // A second key of the same account, used only to look (its own read budget).
    const observer = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
    expect(observer.status).toBe(201);

    for (let i = 0; i < 3; i++) {
      const res = await t.request(GENERATIONS, { key, json: ok });
      expect(res.status, res.text).toBe(202);
      expectRateHeaders(res, "create", 3, 2 - i);
    }
    const limited = await t.request(GENERATIONS, { key, json: ok });
    expectRateLimited(limited, "create", 3);
    expect(limited.headers.get("location")).toBeNull();

    const credits = await t.request("/api/v1/credits", { key: observer.body.key });
    expect(credits.body).toEqual({ current_credits: 1000 - 3 * 55 });
    const list = await t.request(GENERATIONS, { key: observer.body.key });
    expect(list.body.data).toHaveLength(3);

    // The create budget is separate from the read budget: the same key can still read.
    const read = await t.request("/api/v1/credits", { key });
    expect(read.status).toBe(200);
    expectRateHeaders(read, "read", 5, 4);
  });

  it("invalid creates count too, and carry the headers", async () => {
    const { key } = await t.createAccount(1000);
    const bad = await t.request(GENERATIONS, { key, json: { model: "nope" } });
    expect(bad.status).toBe(400);
    expectRateHeaders(bad, "create", 3, 2);
    const insufficient = await t.createAccount(10);
    const poor = await t.request(GENERATIONS, { key: insufficient.key, json: ok });
    expect(poor.status).toBe(402);
    expectRateHeaders(poor, "create", 3, 2);
  });

  it("the 6th read is 429; every read response carries the headers", async () => {
    const { key } = await t.createAccount(100);
    const reads = [
      () => t.request("/api/v1/credits", { key }),
      () => t.request(GENERATIONS, { key }),
      () => t.request(`${GENERATIONS}/task_doesnotexist`, { key }),
      () => t.request(`${GENERATIONS}?limit=0`, { key }),
      () => t.request("/api/v1/credits", { key }),
    ];
    const statuses: number[] = [];
    for (const [i, read] of reads.entries()) {
      const res = await read();
      statuses.push(res.status);
      expectRateHeaders(res, "read", 5, 4 - i);
    }
    expect(statuses).toEqual([200, 200, 404, 400, 200]);
    expectRateLimited(await t.request("/api/v1/credits", { key }), "read", 5);
    expectRateLimited(await t.request(`${GENERATIONS}/task_doesnotexist`, { key }), "read", 5);
  });

  it("limits are per key: another key of the same account has its own budget", async () => {
    const { accountId, key } = await t.createAccount(1000);
    const second = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
    for (let i = 0; i < 3; i++) expect((await t.request(GENERATIONS, { key, json: ok })).status).toBe(202);
    expectRateLimited(await t.request(GENERATIONS, { key, json: ok }), "create", 3);

    for (let i = 0; i < 3; i++) {
      const res = await t.request(GENERATIONS, { key: second.body.key, json: ok });
      expect(res.status, res.text).toBe(202);
      expectRateHeaders(res, "create", 3, 2 - i);
    }
    expectRateLimited(await t.request(GENERATIONS, { key: second.body.key, json: ok }), "create", 3);
    // Six tasks in all, one account balance.
    const account = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(account.body.credits).toBe(1000 - 6 * 55);
  });

  it("another account's key is unaffected by a limited key", async () => {
    const a = await t.createAccount(1000);
    const b = await t.createAccount(1000);
    for (let i = 0; i < 3; i++) await t.request(GENERATIONS, { key: a.key, json: ok });
    expectRateLimited(await t.request(GENERATIONS, { key: a.key, json: ok }), "create", 3);
    const res = await t.request(GENERATIONS, { key: b.key, json: ok });
    expect(res.status).toBe(202);
    expectRateHeaders(res, "create", 3, 2);
  });

  it("keyless routes are limited per client address and carry the headers", async () => {
    const res = await t.request("/api/v1/models");
    expect(res.status).toBe(200);
    expectRateHeaders(res, "read", 5, 4);
    for (let i = 0; i < 4; i++) expect((await t.request("/api/v1/openapi.json")).status).toBe(200);
    expectRateLimited(await t.request("/api/v1/models"), "read", 5);
    // A key's read budget is its own, not the address's.
    const { key } = await t.createAccount(1);
    expect((await t.request("/api/v1/credits", { key })).status).toBe(200);
  });

  it("a 429 does not consume the Idempotency-Key: within the window it stays 429, never a replay", async () => {
    const { key } = await t.createAccount(1000);
    for (let i = 0; i < 3; i++) expect((await t.request(GENERATIONS, { key, json: ok })).status).toBe(202);
    const headers = { "idempotency-key": "limited-1" };
    const first = await t.request(GENERATIONS, { key, json: ok, headers });
    expectRateLimited(first, "create", 3);
    const again = await t.request(GENERATIONS, { key, json: ok, headers });
    expectRateLimited(again, "create", 3);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
  });
});

describe("answers given before a request is identified carry the headers and charge nothing (§8)", () => {
  it("404 (unknown path) and 405 (wrong method) show the address's read budget, unspent", async () => {
    const t = await startTestServer(LIMITS);
    try {
      const { key } = await t.createAccount(0);
      const unknown = await t.request("/api/v1/nothing-here", { key });
      expect(unknown.status).toBe(404);
      expectRateHeaders(unknown, "read", 5, 5);
      const wrong = await t.request("/api/v1/credits", { key, method: "DELETE" });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get("allow")).toBe("GET");
      expectRateHeaders(wrong, "read", 5, 5);
      // The keyless read spends the same budget the 404 and 405 showed, and they spent none of it.
      const models = await t.request("/api/v1/models");
      expectRateHeaders(models, "read", 5, 4);
      expectRateHeaders(await t.request("/api/v1/models", { method: "POST" }), "read", 5, 4);
      // Outside the public API (health, media) nothing is promised.
      expect((await t.request("/nothing-here")).headers.get("ratelimit")).toBeNull();
    } finally {
      await t.close();
    }
  });

  it("503 public_api_disabled carries them too", async () => {
    const t = await startTestServer({ ...LIMITS, PUBLIC_API_ENABLED: "false" });
    try {
      for (const path of ["/api/v1/models", "/api/v1/credits"]) {
        const res = await t.request(path);
        expect(res.status, path).toBe(503);
        expect(res.body.error.code).toBe("public_api_disabled");
        expectRateHeaders(res, "read", 5, 5);
      }
    } finally {
      await t.close();
    }
  });
});

describe("a 429 stores no idempotency record (retry after the window)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-ratelimit-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("the same key and body succeed once the limit resets, and are charged once", async () => {
    const headers = { "idempotency-key": "retry-after-429" };
    const body = { ...ok, client_request_id: "retry-1" };
    let key: string;
    let accountId: string;

    // In-memory limits (PostgreSQL would share and keep them): see the restart below.
    const env = { ...LIMITS, RATE_LIMIT_STORE: "memory" };
    const first = await startTestServer(env, dataDir);
    try {
      ({ key, accountId } = await first.createAccount(1000));
      for (let i = 0; i < 3; i++) expect((await first.request(GENERATIONS, { key, json: ok })).status).toBe(202);
      expectRateLimited(await first.request(GENERATIONS, { key, json: body, headers }), "create", 3);
    } finally {
      await first.close();
    }

    // Limits live in memory: a restarted server on the same data is a fresh window (instead of
    // waiting 60 s), while the database, including any idempotency record, is kept.
    const second = await startTestServer(env, dataDir);
    try {
      const retry = await second.request(GENERATIONS, { key, json: body, headers });
      expect(retry.status, retry.text).toBe(202);
      expect(retry.headers.get("idempotent-replayed")).toBeNull();
      expect(retry.body.client_request_id).toBe("retry-1");

      const replay = await second.request(GENERATIONS, { key, json: body, headers });
      expect(replay.status, replay.text).toBe(202);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(replay.text).toBe(retry.text);

      const account = await second.admin(`/admin/v1/accounts/${accountId}`);
      expect(account.body.credits).toBe(1000 - 4 * 55);
      expect(account.body.ledger.reserved).toBe(4 * 55);
    } finally {
      await second.close();
    }
  });
});

describe("0 means unlimited", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
      WORKER_CONCURRENCY: "0",
    });
  });
  afterAll(() => t.close());

  it("many creates and reads on one key are never limited", async () => {
    const { key } = await t.createAccount(100_000);
    const creates = await Promise.all(Array.from({ length: 70 }, () => t.request(GENERATIONS, { key, json: ok })));
    expect(creates.map((r) => r.status)).toEqual(Array(70).fill(202));
    const reads = await Promise.all(Array.from({ length: 650 }, () => t.request("/api/v1/credits", { key })));
    expect(reads.every((r) => r.status === 200)).toBe(true);
    for (let i = 0; i < 20; i++) expect((await t.request("/api/v1/models")).status).toBe(200);
    expect((await t.request("/api/v1/credits", { key })).body).toEqual({ current_credits: 100_000 - 70 * 55 });
  });
});

describe("failed authentication is rate limited by client address", () => {
  it("turns repeated bad keys into 429 and carries limit headers on the 401s", async () => {
    const t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "3" });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await t.request("/api/v1/credits", { key: `rvya_sk_${"x".repeat(40)}` });
        statuses.push(res.status);
        if (res.status === 401) expect(res.headers.get("ratelimit-policy")).toBe('"read";q=3;w=60');
        if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // A valid key has its own budget, unaffected by the guesses from this address.
      const { key } = await t.createAccount(0);
      expect((await t.request("/api/v1/credits", { key })).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe("behind a trusted proxy (TRUSTED_PROXIES)", () => {
  it("limits each forwarded client on its own, and ignores the header from other peers", async () => {
    const proxied = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "2", TRUSTED_PROXIES: "127.0.0.1" });
    const direct = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "2" });
    try {
      const via = (t: TestServer, client: string) =>
        t.request("/api/v1/models", { headers: { "x-forwarded-for": `${client}, 127.0.0.1` } });
      // Two clients behind the balancer: each has its own budget of 2.
      for (const client of ["203.0.113.1", "203.0.113.2"]) {
        expect((await via(proxied, client)).status).toBe(200);
        expect((await via(proxied, client)).status).toBe(200);
        expect((await via(proxied, client)).status).toBe(429);
      }
      // Without TRUSTED_PROXIES the header is not believed: one budget for the peer.
      expect((await via(direct, "203.0.113.1")).status).toBe(200);
      expect((await via(direct, "203.0.113.2")).status).toBe(200);
      expect((await via(direct, "203.0.113.3")).status).toBe(429);
    } finally {
      await Promise.all([proxied.close(), direct.close()]);
    }
  });
});
