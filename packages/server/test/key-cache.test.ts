/**
 * The in-process API-key cache (issue 13) and the bound on how long a revoked key keeps working:
 * at once through the revoking process, within API_KEY_CACHE_SECONDS everywhere else, and at once
 * on PostgreSQL, where revocations are NOTIFYed to every process.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CachedKey, KeyCache } from "../src/accounts/key-cache.js";
import { AccountService, EXTERNAL_WRITES_CHECK_MS } from "../src/accounts/service.js";
import { systemClock } from "../src/util/clock.js";
import { startTestServer, type TestResponse, type TestServer } from "./harness.js";
import { sleep } from "./process-helpers.js";
import { TEST_STORE, testStoreEnv } from "./test-store.js";

const key = (keyId: string): CachedKey => ({
  keyId,
  accountId: "acct_1",
  scopes: new Set(["credits:read"]),
  expiresAt: null,
  revokedAt: null,
});

describe("KeyCache", () => {
  it("serves an entry until its TTL, then forgets it", () => {
    let now = 1_000;
    const cache = new KeyCache({ ttlMs: 500, maxEntries: 10, now: () => now });
    cache.set("h1", key("key_1"));
    now += 499;
    expect(cache.get("h1")?.keyId).toBe("key_1");
    now += 1;
    expect(cache.get("h1")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("invalidates by key id and holds at most maxEntries (oldest out first)", () => {
    const cache = new KeyCache({ ttlMs: 60_000, maxEntries: 2, now: () => 0 });
    cache.set("h1", key("key_1"));
    cache.set("h2", key("key_2"));
    cache.set("h3", key("key_3"));
    expect(cache.size).toBe(2);
    expect(cache.get("h1")).toBeUndefined();
    cache.invalidate("key_2");
    expect(cache.get("h2")).toBeUndefined();
    expect(cache.get("h3")?.keyId).toBe("key_3");
    cache.clear();
    expect(cache.get("h3")).toBeUndefined();
  });

  it("caches nothing when the TTL is 0", () => {
    const cache = new KeyCache({ ttlMs: 0, maxEntries: 10, now: () => 0 });
    cache.set("h1", key("key_1"));
    expect(cache.enabled).toBe(false);
    expect(cache.get("h1")).toBeUndefined();
  });
});

function expectRefused(res: TestResponse, code: string) {
  expect(res.status, res.text).toBe(401);
  expect(res.body.error.code).toBe(code);
}

/**
 * A change that bypasses the service on the server's own connection: nothing tells the cache
 * (on SQLite the commit counter only moves for other connections; on PostgreSQL no NOTIFY).
 */
async function revokeBehindTheServersBack(t: TestServer, keyId: string) {
  await t.server.store.db
    .updateTable("api_keys")
    .set({ revoked_at: new Date().toISOString() })
    .where("id", "=", keyId)
    .execute();
}

describe("revocation with the cache on", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ API_KEY_CACHE_SECONDS: "2" });
  });
  afterAll(() => t?.close());

  it("through this process's admin API: refused at once", async () => {
    const { key: secret, keyId } = await t.createAccount(10);
    expect((await t.request("/api/v1/credits", { key: secret })).status).toBe(200);
    expect((await t.admin(`/admin/v1/keys/${keyId}`, { method: "DELETE" })).status).toBe(200);
    expectRefused(await t.request("/api/v1/credits", { key: secret }), "api_key_revoked");
  });

  it("by another process: still served from the cache, then refused within API_KEY_CACHE_SECONDS", async () => {
    const { key: secret, keyId } = await t.createAccount(10);
    expect((await t.request("/api/v1/credits", { key: secret })).status).toBe(200);
    const revokedAt = Date.now();
    await revokeBehindTheServersBack(t, keyId);
    // Nothing tells this process: the cached lookup is trusted until it is 2 s old, then the row
    // is read again.
    expect((await t.request("/api/v1/credits", { key: secret })).status).toBe(200);
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 10_000) {
      status = (await t.request("/api/v1/credits", { key: secret })).status;
      if (status === 200) await sleep(50);
    }
    expect(status).toBe(401);
    // The bound, with room for a loaded machine: not the 10 s the loop would wait.
    expect(Date.now() - revokedAt).toBeLessThan(2000 + 3000);
  });

  it.runIf(TEST_STORE === "sqlite")(
    "by another process on SQLite (the CLI): refused within EXTERNAL_WRITES_CHECK_MS, its commit moved data_version",
    async () => {
      const { key: secret, keyId } = await t.createAccount(10);
      expect((await t.request("/api/v1/credits", { key: secret })).status).toBe(200);
      const other = new Database(join(t.dataDir, "framegate.db"));
      try {
        other.prepare("update api_keys set revoked_at = ? where id = ?").run(new Date().toISOString(), keyId);
      } finally {
        other.close();
      }
      // The process looks for other connections' commits at most every EXTERNAL_WRITES_CHECK_MS.
      await sleep(EXTERNAL_WRITES_CHECK_MS + 5);
      expectRefused(await t.request("/api/v1/credits", { key: secret }), "api_key_revoked");
    },
  );

  it("unknown keys are never cached, so guessing cannot fill the cache", async () => {
    const cache = new KeyCache({ ttlMs: 60_000, maxEntries: 100, now: () => Date.now() });
    const limits = { defaultMaxRunningTasks: 4, quotas: { maxWebhookEndpoints: 1, maxFileBytes: 1, maxFiles: 1 } };
    const accounts = new AccountService(t.server.store.db, systemClock, limits, cache);
    for (let i = 0; i < 5; i++) {
      await expect(accounts.authenticate(`rvya_sk_${String(i).repeat(40)}`)).rejects.toMatchObject({
        code: "api_key_invalid",
      });
    }
    expect(cache.size).toBe(0);
    const { key: secret } = await t.createAccount(10);
    await accounts.authenticate(secret);
    expect(cache.size).toBe(1);
  });
});

describe("revocation with the cache off (API_KEY_CACHE_SECONDS=0)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ API_KEY_CACHE_SECONDS: "0" });
  });
  afterAll(() => t?.close());

  it("a key revoked by another process is refused on the next request", async () => {
    const { key: secret, keyId } = await t.createAccount(10);
    expect((await t.request("/api/v1/credits", { key: secret })).status).toBe(200);
    await revokeBehindTheServersBack(t, keyId);
    expectRefused(await t.request("/api/v1/credits", { key: secret }), "api_key_revoked");
  });
});

describe.runIf(TEST_STORE === "postgres")("revocation across processes on PostgreSQL", () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ API_KEY_CACHE_SECONDS: "60" });
    // B shares A's database (as a second API process would) and caches keys for a minute.
    b = await startTestServer({ API_KEY_CACHE_SECONDS: "60", ...(await testStoreEnv(a.dataDir)) });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("a key revoked through one process is refused by the other at once (NOTIFY), not after the TTL", async () => {
    const { key: secret, keyId } = await a.createAccount(10);
    expect((await b.request("/api/v1/credits", { key: secret })).status).toBe(200);
    expect((await b.request("/api/v1/credits", { key: secret })).status).toBe(200);
    expect((await a.admin(`/admin/v1/keys/${keyId}`, { method: "DELETE" })).status).toBe(200);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 10_000) {
      status = (await b.request("/api/v1/credits", { key: secret })).status;
      if (status === 200) await sleep(20);
    }
    expect(status).toBe(401);
  });
});
