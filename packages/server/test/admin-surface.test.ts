/**
 * The admin API's exposure (issue #12): failed admin authentication is throttled per client
 * address like the public API's, and ADMIN_PORT moves /admin/v1 to a listener of its own.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, request, startTestServer, type TestResponse, type TestServer } from "./harness.js";
import { dropTestDatabase } from "./test-store.js";

function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
}

/** An admin request that the server believes comes from `client` (through a trusted proxy). */
const fromClient = (t: TestServer, client: string, token: string | undefined) =>
  t.request("/admin/v1/accounts", {
    headers: {
      "x-forwarded-for": `${client}, 127.0.0.1`,
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
  });

describe("failed admin authentication is throttled per client address", () => {
  let t: TestServer;
  beforeAll(async () => {
    // The default read budget (600 per minute): what an operator who set nothing gets.
    t = await startTestServer({ WORKER_CONCURRENCY: "0", TRUSTED_PROXIES: "127.0.0.1" });
  });
  afterAll(() => t.close());

  it("800 wrong tokens in a burst end in 429 with Retry-After, the right token included", async () => {
    const attacker = "203.0.113.7";
    const responses: TestResponse[] = [];
    const started = performance.now();
    // 20 connections at a time, like a scripted guesser; half the guesses send no token at all.
    for (let sent = 0; sent < 800; sent += 20) {
      const batch = Array.from({ length: 20 }, (_, i) =>
        fromClient(t, attacker, (sent + i) % 2 ? `guess-${sent + i}-${"x".repeat(40)}` : undefined),
      );
      responses.push(...(await Promise.all(batch)));
    }
    console.log(`800 wrong admin tokens answered in ${Math.round(performance.now() - started)} ms`);

    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(600);
    expect(statuses.filter((s) => s === 429)).toHaveLength(200);
    for (const res of responses) {
      if (res.status === 401) {
        expect(["api_key_invalid", "api_key_missing"]).toContain(res.body.error.code);
        expect(res.headers.get("ratelimit-policy")).toBe('"read";q=600;w=60');
      } else {
        expectError(res, 429, "rate_limited");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }
    }

    // A guess that hits must not show as a 200 while the budget is spent.
    const right = await fromClient(t, attacker, ADMIN_TOKEN);
    expectError(right, 429, "rate_limited");
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    // Another address keeps its own budget, and the attacker's public-API budget is its own too.
    expect((await fromClient(t, "203.0.113.8", ADMIN_TOKEN)).status).toBe(200);
    const models = await t.request("/api/v1/models", { headers: { "x-forwarded-for": `${attacker}, 127.0.0.1` } });
    expect(models.status).toBe(200);
  });

  it("the right token costs nothing", async () => {
    const operator = "203.0.113.9";
    for (let i = 0; i < 650; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => fromClient(t, operator, ADMIN_TOKEN)));
      expect(batch.map((r) => r.status)).toEqual(Array(50).fill(200));
    }
    // Its failed-auth budget is untouched: the first wrong token is a 401 with 599 left.
    const wrong = await fromClient(t, operator, `${ADMIN_TOKEN}x`);
    expectError(wrong, 401, "api_key_invalid");
    expect(wrong.headers.get("ratelimit")).toBe('"read";r=599;t=60');
  });
});

describe("ADMIN_PORT: the admin API on a listener of its own", () => {
  let t: TestServer | undefined;
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "0", ADMIN_PORT: "0", ADMIN_HOST: "127.0.0.1" });
  });
  afterAll(() => t?.close());

  it("serves /admin/v1 only on the admin listener, and the public API only on the main one", async () => {
    const s = t as TestServer;
    const adminUrl = s.server.adminUrl;
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(adminUrl).not.toBe(s.url);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

    // The admin listener: every admin route, nothing else.
    const { accountId, key } = await s.createAccount(5);
    const got = await request(adminUrl, `/admin/v1/accounts/${accountId}`, { headers: auth });
    expect(got.status, got.text).toBe(200);
    expect(got.body.credits).toBe(5);
    const wrongMethod = await request(adminUrl, "/admin/v1/accounts", { method: "DELETE", headers: auth });
    expectError(wrongMethod, 405, "method_not_allowed");
    expectError(await request(adminUrl, "/api/v1/credits", { key }), 404, "not_found");
    expectError(await request(adminUrl, "/api/v1/models"), 404, "not_found");

    // The main listener: the public API, and 404 (not 401 or 405) for any admin path, token or not.
    expect((await s.request("/api/v1/credits", { key })).body.current_credits).toBe(5);
    expect((await s.request("/healthz")).status).toBe(200);
    for (const [method, path] of [
      ["GET", "/admin/v1/accounts"],
      ["POST", "/admin/v1/accounts"],
      ["DELETE", "/admin/v1/accounts"],
      ["GET", `/admin/v1/accounts/${accountId}`],
      ["GET", "/admin/v1/tasks/task_x"],
    ] as const) {
      expectError(await s.request(path, { method, headers: auth }), 404, "not_found");
      expectError(await s.request(path, { method }), 404, "not_found");
    }
  });

  it("close() stops both listeners", async () => {
    const s = t as TestServer;
    const adminUrl = s.server.adminUrl;
    t = undefined;
    await s.close();
    await expect(fetch(`${adminUrl}/admin/v1/accounts`)).rejects.toThrow();
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
  });
});

describe("an admin listener that cannot be bound", () => {
  it("stops the start with the reason instead of crashing the process", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    const dir = mkdtempSync(join(tmpdir(), "framegate-test-"));
    try {
      await expect(startTestServer({ WORKER_CONCURRENCY: "0", ADMIN_PORT: String(port) }, dir)).rejects.toThrow(
        /Cannot listen on ADMIN_HOST=127\.0\.0\.1 ADMIN_PORT=\d+: the port is already in use/,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      rmSync(dir, { recursive: true, force: true });
      await dropTestDatabase(dir);
    }
  });
});
