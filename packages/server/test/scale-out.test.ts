/**
 * Scale-out on PostgreSQL (DESIGN §2): two servers, each with its own connection pool and
 * workers, on one database. Their transactions really run at the same time, so the guarded
 * balance update, the status compare-and-set, the idempotency claim, the queue's claim and the
 * provider cap are checked against a second writer, not against SQLite's single one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeKling } from "./fakes/fake-kling.js";
import { queuedJobs, startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";
import {
  createGeneration,
  E2E_ENV,
  expectSucceededAndCharged,
  klingEnv,
  klingTasksFor,
  sleep,
  watchTask,
} from "./provider-e2e-helpers.js";
import { TEST_STORE } from "./test-store.js";

const PRICE = 55;

// Several servers on one SQLite file is not a supported deployment: this suite is PostgreSQL's.
/**
 * Two servers on one database for the tests of a describe block, started together (the
 * migrations and the signing secret are claimed once) and closed after them.
 */
function twoServers(env: Record<string, string>): { a: () => TestServer; b: () => TestServer } {
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-scale-out-"));
  let servers: TestServer[] = [];
  beforeAll(async () => {
    servers = await Promise.all([startTestServer(env, dataDir), startTestServer(env, dataDir)]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { a: () => servers[0] as TestServer, b: () => servers[1] as TestServer };
}

describe.runIf(TEST_STORE === "postgres")("two servers on one PostgreSQL database", () => {
  const env = { WORKER_CONCURRENCY: "4", RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" };
  const pair = twoServers(env);
  let a: TestServer;
  let b: TestServer;
  beforeAll(() => {
    [a, b] = [pair.a(), pair.b()];
  });

  const server = (i: number) => (i % 2 === 0 ? a : b);

  it("creates split across both never overdraw; every task ends once, settled or refunded once", async () => {
    const { accountId, key } = await a.createAccount(9 * PRICE);
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        server(i).request("/api/v1/generations", {
          key,
          json: { model: "kling-2-6", prompt: i % 3 === 0 ? `[sim:fail] both ${i}` : `both ${i}` },
        }),
      ),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 402);
    expect(accepted.length + refused.length).toBe(40);
    // Failures refund while others are still being created, so at least the 9 affordable ones.
    expect(accepted.length).toBeGreaterThanOrEqual(9);

    const finished = await Promise.all(accepted.map((r, i) => waitForTask(server(i + 1), key, r.body.id)));
    const succeeded = finished.filter((x) => x.status === "succeeded");
    const failed = finished.filter((x) => x.status === "failed");
    expect(succeeded.length + failed.length).toBe(accepted.length);
    expect(succeeded.length).toBeLessThanOrEqual(9);

    const rows = await a.server.store.db
      .selectFrom("ledger_entries")
      .select(["type", "amount", "task_id"])
      .where("account_id", "=", accountId)
      .execute();
    const count = (type: string, id: string) => rows.filter((r) => r.type === type && r.task_id === id).length;
    for (const x of finished) {
      expect(count("reserve", x.id), x.id).toBe(1);
      expect(count("refund", x.id), x.id).toBe(x.status === "failed" ? 1 : 0);
    }
    const view = await b.admin(`/admin/v1/accounts/${accountId}`);
    expect(view.body.credits).toBe(9 * PRICE - PRICE * succeeded.length);
    expect(view.body.credits).toBe(view.body.ledger.ledger_sum);

    // Every job was claimed, run and removed (the last finalize jobs a moment after their commit).
    const jobs = () => queuedJobs(a.server.store.db);
    for (let i = 0; i < 50 && (await jobs()).length > 0; i++) await sleep(100);
    expect(await jobs()).toEqual([]);
  });

  it("KLING_MAX_CONCURRENCY=1 holds across both servers: one Kling task at a time, never a 1303", async () => {
    const kling = await startFakeKling({ concurrencyLimit: 1 });
    const dir = mkdtempSync(join(tmpdir(), "framegate-scale-out-kling-"));
    const klingServerEnv = { ...E2E_ENV, ...klingEnv(kling), ...env, PROVIDERS: "kling", KLING_MAX_CONCURRENCY: "1" };
    const [k1, k2] = await Promise.all([startTestServer(klingServerEnv, dir), startTestServer(klingServerEnv, dir)]);
    try {
      const acct = await k1.createAccount(1000);
      const ids = await Promise.all(
        [1, 2, 3, 4].map((n) => createGeneration(n % 2 ? k1 : k2, acct.key, `[kling:after=150] one at a time ${n}`)),
      );
      let upstreamMax = 0;
      const watching = Promise.all(ids.map((id, n) => watchTask(n % 2 ? k2 : k1, acct.key, id, 30_000)));
      let finished = false;
      void watching.finally(() => {
        finished = true;
      });
      while (!finished) {
        upstreamMax = Math.max(upstreamMax, kling.running());
        await sleep(5);
      }
      for (const watched of await watching) await expectSucceededAndCharged(k1, acct, watched);
      for (const id of ids) expect(klingTasksFor(kling, id)).toHaveLength(1);
      expect(upstreamMax).toBe(1);
      expect(kling.calls("create").filter((r) => r.code === 1303)).toHaveLength(0);
      expect(kling.calls("create")).toHaveLength(4);
    } finally {
      await Promise.all([k1.close(), k2.close()]);
      await kling.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("one Idempotency-Key raced on both servers: one task, one charge", async () => {
    const { key } = await b.createAccount(1000);
    const json = { model: "kling-2-6", prompt: "one key, two servers" };
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server(i).request("/api/v1/generations", { key, json, headers: { "Idempotency-Key": "scale-out-key" } }),
      ),
    );
    const created = responses.filter((r) => r.status === 202);
    expect(created.length + responses.filter((r) => r.status === 409).length).toBe(20);
    const originals = created.filter((r) => r.headers.get("idempotent-replayed") === null);
    expect(originals).toHaveLength(1);
    const original = originals[0] as TestResponse;
    for (const r of created) expect(r.text).toBe(original.text);
    await waitForTask(a, key, original.body.id);
    expect((await b.request("/api/v1/credits", { key })).body.current_credits).toBe(1000 - PRICE);
    const list = await a.request("/api/v1/generations?limit=100", { key });
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([original.body.id]);
  });
});

describe.runIf(TEST_STORE === "postgres")("rate limits shared by two API servers (PostgreSQL store)", () => {
  const pair = twoServers({ WORKER_CONCURRENCY: "0", RATE_LIMIT_READ_PER_MIN: "5", RATE_LIMIT_CREATE_PER_MIN: "2" });
  let a: TestServer;
  let b: TestServer;
  beforeAll(() => {
    [a, b] = [pair.a(), pair.b()];
  });

  it("one key's read budget is spent across both servers: the 6th read is 429 on either", async () => {
    const { key } = await a.createAccount(1000);
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await (i % 2 === 0 ? a : b).request("/api/v1/credits", { key });
      expect(res.status).toBe(200);
      remaining.push(res.headers.get("ratelimit") ?? "");
    }
    // One counter: the remaining budget goes down across the servers, not per server.
    expect(remaining.map((h) => /r=(\d+)/.exec(h)?.[1])).toEqual(["4", "3", "2", "1", "0"]);
    for (const server of [a, b]) {
      const refused = await server.request("/api/v1/credits", { key });
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe("rate_limited");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Another key has its own budget.
    const other = await b.createAccount(1000);
    expect((await a.request("/api/v1/credits", { key: other.key })).status).toBe(200);
  });

  it("racing creates on both servers: exactly the create budget gets through", async () => {
    const { key } = await b.createAccount(1000);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: `limited ${i}` } }),
      ),
    );
    expect(responses.filter((r) => r.status === 202)).toHaveLength(2);
    expect(responses.filter((r) => r.status === 429)).toHaveLength(8);
    expect((await a.request("/api/v1/credits", { key })).body.current_credits).toBe(1000 - 2 * PRICE);
  });
});
