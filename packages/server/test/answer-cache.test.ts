/**
 * The caches of polled answers (store/row-cache.ts, README "Polling a task"): GET
 * /api/v1/generations/{id} and GET /api/v1/credits are answered from memory while their row is
 * unchanged, and never otherwise. Every way an answer can go out of date is tried: a write of
 * this process (the TEMP trigger), a commit by another connection (PRAGMA data_version), the
 * expiry of a referenced file (time), another account asking, and a read made while a write
 * transaction holds the connection. SQLite only: on PostgreSQL there is no cache.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlitePath } from "../src/server.js";
import { type Db, migrateToLatest, openSqlite } from "../src/store/db.js";
import { RowCache } from "../src/store/row-cache.js";
import { uploadFile } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { ManualClock, startTestServer, type TestServer } from "./harness.js";
import { TEST_STORE } from "./test-store.js";

const KLING = "kling-2-6";
const DAY_MS = 24 * 3600 * 1000;

describe.skipIf(TEST_STORE === "postgres")("answers of GET /api/v1/generations/{id} kept between polls", () => {
  let t: TestServer;
  let dir: string;
  const clock = new ManualClock();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-answer-cache-"));
    // No worker: tasks stay queued until a test changes them.
    t = await startTestServer(
      { WORKER_CONCURRENCY: "0", FILE_RETENTION_DAYS: "1", RATE_LIMIT_READ_PER_MIN: "0" },
      undefined,
      { clock },
    );
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function lookups(cache = "generation"): Promise<Record<string, number>> {
    const metric = t.server.metrics.registry.getSingleMetric("framegate_answer_cache_lookups_total");
    const values = ((await metric?.get())?.values ?? []).filter((v) => v.labels.cache === cache);
    return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
  }

  /** Runs `pollOnce` until the cache reports a hit beyond `hitsBefore` (at most 10 times). */
  async function expectHit(cache: string, hitsBefore: number, pollOnce: () => Promise<void>): Promise<void> {
    for (let i = 0; i < 10; i++) {
      await pollOnce();
      if (((await lookups(cache)).hit ?? 0) > hitsBefore) return;
    }
    throw new Error(`no ${cache} poll was answered from the cache`);
  }

  async function createTask(key: string, json: Record<string, unknown> = {}): Promise<string> {
    const res = await t.request("/api/v1/generations", {
      key,
      json: { model: KLING, prompt: "a task to poll", params: { duration: "5" }, ...json },
    });
    expect(res.status, res.text).toBe(202);
    return res.body.id;
  }

  const poll = (key: string, id: string) => t.request(`/api/v1/generations/${id}`, { key });

  it("answers repeated polls from memory, byte for byte, until this process changes the task", async () => {
    const { key } = await t.createAccount(1000);
    const id = await createTask(key);
    const before = await lookups();
    const first = await poll(key, id);
    expect(first.status, first.text).toBe(200);
    expect(first.body.status).toBe("queued");
    // Answered from memory, byte for byte. (A poll that meets a background transaction holding
    // the connection reads through instead, so a hit is waited for rather than counted exactly.)
    await expectHit("generation", before.hit ?? 0, async () => expect((await poll(key, id)).text).toBe(first.text));

    // The cancel's UPDATE (this process, this connection) forgets the kept answer.
    const canceled = await t.request(`/api/v1/generations/${id}/cancel`, { key, method: "POST" });
    expect(canceled.status, canceled.text).toBe(200);
    const third = await poll(key, id);
    expect(third.body.status).toBe("failed");
    expect(third.body.error.reason).toBe("canceled");
    expect(third.text).toBe(JSON.stringify(canceled.body));
  });

  it("sees at once a commit made by another connection (the CLI, a second process)", async () => {
    const { key } = await t.createAccount(1000);
    const id = await createTask(key);
    await poll(key, id);
    expect((await poll(key, id)).body.client_request_id).toBeNull();
    const other = new Database(sqlitePath(t.server.config));
    try {
      other.pragma("busy_timeout = 5000");
      other.prepare("update tasks set client_request_id = ? where id = ?").run("changed-elsewhere", id);
    } finally {
      other.close();
    }
    expect((await poll(key, id)).body.client_request_id).toBe("changed-elsewhere");
  });

  it("never answers another account, even for a task it holds", async () => {
    const owner = await t.createAccount(1000);
    const stranger = await t.createAccount(1000);
    const id = await createTask(owner.key);
    await poll(owner.key, id);
    expect((await poll(owner.key, id)).status).toBe(200);
    const refused = await poll(stranger.key, id);
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe("not_found");
    expect((await poll(owner.key, id)).status).toBe(200);
  });

  it("keeps an answer with a reference only until the referenced file expires", async () => {
    const { key } = await t.createAccount(1000);
    const png = await makeImage(dir, { format: "png", width: 640, height: 640 });
    const uploaded = await uploadFile(t, key, png, { kind: "image", model: KLING });
    expect(uploaded.status, uploaded.text).toBe(201);
    const id = await createTask(key, {
      params: {
        aspect_ratio: "16:9",
        referenceMediaItems: [{ url: uploaded.body.url, kind: "image", mimeType: "image/png" }],
      },
    });
    const live = await poll(key, id);
    expect(live.body.references[0].url).toMatch(/^http/);
    expect((await poll(key, id)).text).toBe(live.text);

    clock.advance(DAY_MS - 60_000);
    expect((await poll(key, id)).text).toBe(live.text);
    clock.advance(2 * 60_000);
    const expired = await poll(key, id);
    expect(expired.body.references).toEqual([expect.objectContaining({ file_id: uploaded.body.id, url: null })]);
  });

  it("answers a poll that arrives while a write transaction is open with the committed row", async () => {
    const { key } = await t.createAccount(1000);
    const id = await createTask(key);
    await poll(key, id);
    let answered: ReturnType<typeof poll> | undefined;
    await t.server.store.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("tasks")
        .set({ client_request_id: "written-in-a-transaction" })
        .where("id", "=", id)
        .execute();
      answered = poll(key, id);
      // The poll has arrived and waits for the connection: it is not answered from memory.
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    expect((await (answered as ReturnType<typeof poll>)).body.client_request_id).toBe("written-in-a-transaction");
    expect((await poll(key, id)).body.client_request_id).toBe("written-in-a-transaction");
    expect((await poll(key, id)).body.client_request_id).toBe("written-in-a-transaction");
  });
});

describe.skipIf(TEST_STORE === "postgres")("answers of GET /api/v1/credits kept while the balance is unchanged", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "0", RATE_LIMIT_READ_PER_MIN: "0" });
  });
  afterAll(async () => {
    await t?.close();
  });

  const credits = async (key: string) => {
    const res = await t.request("/api/v1/credits", { key });
    expect(res.status, res.text).toBe(200);
    return res.body.current_credits as number;
  };
  async function hits(): Promise<number> {
    const metric = t.server.metrics.registry.getSingleMetric("framegate_answer_cache_lookups_total");
    const values = (await metric?.get())?.values ?? [];
    return values.find((v) => v.labels.cache === "credits" && v.labels.result === "hit")?.value ?? 0;
  }

  it("follows every change: a create, an admin grant, a write by another connection", async () => {
    const { key, accountId } = await t.createAccount(1000);
    const other = await t.createAccount(5);
    expect(await credits(key)).toBe(1000);
    const before = await hits();
    for (let i = 0; i < 10 && (await hits()) === before; i++) expect(await credits(key)).toBe(1000);
    expect(await hits()).toBeGreaterThan(before);
    // Another account never gets this one's answer.
    expect(await credits(other.key)).toBe(5);

    const created = await t.request("/api/v1/generations", {
      key,
      json: { model: KLING, prompt: "spend", params: { duration: "5" } },
    });
    expect(created.status, created.text).toBe(202);
    expect(await credits(key)).toBe(1000 - created.body.reserved_credits);

    const granted = await t.admin(`/admin/v1/accounts/${accountId}/credits`, { json: { amount: 100 } });
    expect(granted.status, granted.text).toBe(200);
    expect(await credits(key)).toBe(1100 - created.body.reserved_credits);

    const db = new Database(sqlitePath(t.server.config));
    try {
      db.pragma("busy_timeout = 5000");
      db.prepare("update accounts set balance = balance + 7 where id = ?").run(accountId);
    } finally {
      db.close();
    }
    expect(await credits(key)).toBe(1107 - created.body.reserved_credits);
  });
});

describe("the answer cache on its own", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "framegate-answer-cache-unit-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A migrated SQLite store of its own, and its task cache holding `capacity` answers. */
  async function withCache(name: string, capacity: number, use: (cache: RowCache, db: Db) => Promise<void>) {
    const store = openSqlite(join(dir, `${name}.db`), { checkpoint: "inline" });
    try {
      await migrateToLatest(store);
      const cache = await RowCache.open(store.db, "tasks", capacity);
      if (!cache) throw new Error("no cache on SQLite");
      await use(cache, store.db);
    } finally {
      await store.close();
    }
  }
  /** The kept answer, if any: a read that cannot read keeps nothing. */
  const keptAnswer = (cache: RowCache, id: string, owner: string, nowMs: number) =>
    cache.answer(id, owner, nowMs, () => undefined);

  it("is bounded (the oldest answer leaves first), and drops an answer past its time", async () => {
    await withCache("bounded", 2, async (cache) => {
      expect(cache.answer("task_1", "acct_a", 0, () => ({ body: "one" }))).toBe("one");
      expect(cache.answer("task_2", "acct_a", 0, () => ({ body: "two", validUntil: 1_000 }))).toBe("two");
      expect(cache.answer("task_3", "acct_a", 0, () => ({ body: "three" }))).toBe("three");
      expect(keptAnswer(cache, "task_1", "acct_a", 0)).toBeUndefined();
      expect(keptAnswer(cache, "task_2", "acct_a", 999)).toBe("two");
      expect(keptAnswer(cache, "task_2", "acct_a", 1_000)).toBeUndefined();
      expect(keptAnswer(cache, "task_3", "acct_b", 0)).toBeUndefined();
      expect(keptAnswer(cache, "task_3", "acct_a", 0)).toBe("three");
      expect(cache.stats()).toMatchObject({ hits: 2, misses: 6, entries: 2 });
    });
  });

  it("neither answers nor reads while a transaction holds the connection, and counts that as a bypass", async () => {
    await withCache("busy", 10, async (cache, db) => {
      const read = () => ({ body: "read" });
      await db.transaction().execute(async () => {
        expect(cache.answer("task_1", "acct_a", 0, read)).toBeUndefined();
      });
      expect(cache.stats()).toMatchObject({ bypassed: 1, entries: 0 });
      expect(cache.answer("task_1", "acct_a", 0, read)).toBe("read");
      expect(cache.stats().entries).toBe(1);
    });
  });

  it("is off when given no room", async () => {
    const store = openSqlite(join(dir, "off.db"), { checkpoint: "inline" });
    try {
      await migrateToLatest(store);
      expect(await RowCache.open(store.db, "tasks", 0)).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe.runIf(TEST_STORE === "postgres")("no answer cache on PostgreSQL", () => {
  it("reads every poll from the database and reports no cache", async () => {
    const t = await startTestServer({ WORKER_CONCURRENCY: "0", RATE_LIMIT_READ_PER_MIN: "0" });
    try {
      const { key } = await t.createAccount(1000);
      const created = await t.request("/api/v1/generations", {
        key,
        json: { model: KLING, prompt: "a task to poll", params: { duration: "5" } },
      });
      expect(created.status, created.text).toBe(202);
      const first = await t.request(`/api/v1/generations/${created.body.id}`, { key });
      expect((await t.request(`/api/v1/generations/${created.body.id}`, { key })).text).toBe(first.text);
      expect((await t.request("/api/v1/credits", { key })).body.current_credits).toBe(
        1000 - created.body.reserved_credits,
      );
      const metric = t.server.metrics.registry.getSingleMetric("framegate_answer_cache_lookups_total");
      expect((await metric?.get())?.values ?? []).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
