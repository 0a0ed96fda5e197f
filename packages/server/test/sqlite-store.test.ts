/**
 * The SQLite store layer: the statement-caching driver keeps Kysely's behaviour (results,
 * affected rows, streams, transactions and savepoints, one connection at a time), the compiler
 * drops row-lock clauses wherever they are, and the background checkpointer keeps the WAL bounded
 * and stops with the store. SQLite only: the PostgreSQL pass skips it.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { CheckpointGate, WalCheckpointer } from "../src/store/checkpointer.js";
import { migrateToLatest, openSqlite, type SqliteOptions, type StoreHandle } from "../src/store/db.js";
import { StatementCache } from "../src/store/sqlite-driver.js";
import { sleep } from "./process-helpers.js";
import { TEST_STORE } from "./test-store.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-sqlite-store-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openTemp(options: SqliteOptions = {}): Promise<{ store: StoreHandle; file: string }> {
  const file = join(tempDir(), "framegate.db");
  const store = openSqlite(file, options);
  let closed = false;
  const close = store.close;
  store.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  cleanups.push(() => store.close());
  await migrateToLatest(store);
  return { store, file };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 20_000) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe.skipIf(TEST_STORE !== "sqlite")("SQLite store", () => {
  describe("statement cache", () => {
    it("reuses one statement per SQL text, evicting the least recently used past its capacity", () => {
      const raw = new SQLite(":memory:");
      cleanups.push(() => void raw.close());
      const cache = new StatementCache(raw, 2);
      const a = cache.statement("select 1 as n");
      const b = cache.statement("select 2 as n");
      expect(cache.statement("select 1 as n")).toBe(a);
      cache.statement("select 3 as n"); // evicts "select 2", used less recently than "select 1"
      expect(cache.size).toBe(2);
      expect(cache.statement("select 1 as n")).toBe(a);
      expect(cache.statement("select 2 as n")).not.toBe(b);
    });

    it("does not cache a statement that fails to prepare", () => {
      const raw = new SQLite(":memory:");
      cleanups.push(() => void raw.close());
      const cache = new StatementCache(raw, 10);
      expect(() => cache.statement("selec 1")).toThrow(/syntax error/);
      expect(cache.size).toBe(0);
    });

    it("gives a fresh statement while the cached one is still being iterated", () => {
      const raw = new SQLite(":memory:");
      cleanups.push(() => void raw.close());
      const cache = new StatementCache(raw, 10);
      const text = "select value from (select 1 as value union all select 2) order by value";
      const outer = cache.statement(text).stmt.iterate();
      expect(outer.next().value).toEqual([1]);
      const inner = cache.statement(text);
      expect(inner.read?.([])).toEqual([{ value: 1 }, { value: 2 }]);
      expect(outer.next().value).toEqual([2]);
      outer.return?.();
      // Done iterating: the cached statement is handed out again.
      expect(cache.statement(text)).not.toBe(inner);
      expect(cache.statement(text).stmt.busy).toBe(false);
    });

    it("builds the same row objects as better-sqlite3, whatever the column names and values", () => {
      const raw = new SQLite(":memory:");
      cleanups.push(() => void raw.close());
      raw.exec(`create table t ("id" integer, "__proto__" text, "a b" text, "x""y" real, "blob" blob, "n" text)`);
      raw.prepare("insert into t values (1, 'p', 'space', 1.5, x'00ff', null), (2, 'q', '', -0.25, x'', 'v')").run();
      const cache = new StatementCache(raw, 10);
      for (const text of [
        'select id, "a b", "x""y", blob, n from t order by id',
        // A repeated name keeps its last value, as better-sqlite3's own objects do.
        'select id, "a b" as id, "x""y" from t order by id',
      ]) {
        const mine = cache.statement(text).read?.([]);
        const theirs = raw.prepare(text).all();
        expect(mine).toEqual(theirs);
        expect(mine?.map((r) => Object.getPrototypeOf(r))).toEqual(theirs.map(() => Object.prototype));
      }
      // A column named __proto__ becomes a plain property (better-sqlite3 would set the prototype).
      const [first] = (cache.statement("select * from t order by id").read?.([]) ?? []) as Record<string, unknown>[];
      expect(Object.getPrototypeOf(first)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(first, "__proto__")?.value).toBe("p");
      expect(first).toMatchObject({ id: 1, "a b": "space", n: null });
      expect(cache.statement("insert into t (id) values (3)").read).toBeUndefined();
    });
  });

  describe("driver", () => {
    it("runs the same SQL with different parameters and reports affected rows", async () => {
      const { store } = await openTemp();
      const { db } = store;
      for (const key of ["a", "b", "c"]) {
        const inserted = await db
          .insertInto("settings")
          .values({ key, value: `v-${key}` })
          .executeTakeFirst();
        expect(inserted.numInsertedOrUpdatedRows).toBe(1n);
        expect(typeof inserted.insertId).toBe("bigint");
      }
      for (const key of ["c", "a", "b"]) {
        const row = await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst();
        expect(row?.value).toBe(`v-${key}`);
      }
      const updated = await db
        .updateTable("settings")
        .set({ value: "changed" })
        .where("key", "in", ["a", "b"])
        .executeTakeFirst();
      expect(updated.numUpdatedRows).toBe(2n);
      // A write with RETURNING is a reader: its rows come back.
      const returned = await db.deleteFrom("settings").where("key", "=", "c").returning(["key", "value"]).execute();
      expect(returned).toEqual([{ key: "c", value: "v-c" }]);
      const none = await db.deleteFrom("settings").where("key", "=", "c").executeTakeFirst();
      expect(none.numDeletedRows).toBe(0n);
    });

    it("streams SELECTs, and reuses the statement of a stream that ended or was left early", async () => {
      const { store } = await openTemp();
      const { db } = store;
      await db
        .insertInto("settings")
        .values(["k1", "k2", "k3"].map((key) => ({ key, value: key.toUpperCase() })))
        .execute();
      const query = () => db.selectFrom("settings").select(["key", "value"]).where("key", "like", "k%").orderBy("key");
      const seen: string[] = [];
      for await (const row of query().stream()) seen.push(row.value);
      expect(seen).toEqual(["K1", "K2", "K3"]);
      // Leaving a stream early returns its iterator, which resets the statement for the next run.
      for await (const _ of query().stream()) break;
      expect((await query().execute()).map((r) => r.key)).toEqual(["k1", "k2", "k3"]);
      await expect(
        (async () => {
          for await (const _ of db.deleteFrom("settings").stream()) {
          }
        })(),
      ).rejects.toThrow(/streams SELECT queries only/);
      expect((await query().execute()).length).toBe(3);
    });

    it("rolls back a failed transaction and a savepoint, and commits the rest", async () => {
      const { store } = await openTemp();
      const { db } = store;
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.insertInto("settings").values({ key: "lost", value: "1" }).execute();
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      expect(await db.selectFrom("settings").selectAll().where("key", "=", "lost").execute()).toEqual([]);

      const trx = await db.startTransaction().execute();
      await trx.insertInto("settings").values({ key: "kept", value: "1" }).execute();
      const sp = await trx.savepoint("before_second").execute();
      await sp.insertInto("settings").values({ key: "undone", value: "1" }).execute();
      const back = await sp.rollbackToSavepoint("before_second").execute();
      await back.releaseSavepoint("before_second").execute();
      await back.commit().execute();
      const keys = (await db.selectFrom("settings").select("key").where("key", "in", ["kept", "undone"]).execute()).map(
        (r) => r.key,
      );
      expect(keys).toEqual(["kept"]);
    });

    it("reads the columns a table has after a schema change, through a cached `select *`", async () => {
      const { store } = await openTemp();
      const { db } = store;
      await db.schema.createTable("t").addColumn("a", "integer").execute();
      await db
        .insertInto("t" as never)
        .values({ a: 1 } as never)
        .execute();
      const all = () => sql<Record<string, unknown>>`select * from t`.execute(db).then((r) => r.rows);
      expect(await all()).toEqual([{ a: 1 }]);
      await db.schema
        .alterTable("t")
        .addColumn("b", "text", (col) => col.defaultTo("new"))
        .execute();
      expect(await all()).toEqual([{ a: 1, b: "new" }]);
      await db.schema.alterTable("t").renameColumn("b", "c").execute();
      expect(await all()).toEqual([{ a: 1, c: "new" }]);
    });

    it("reads at once on an idle connection, and never from inside another caller's transaction", async () => {
      const { store } = await openTemp();
      const { db } = store;
      const { readIfIdle } = await import("../src/store/sync-paths.js");
      const read = "select value from settings where key = ?";
      expect(readIfIdle(db, read, ["k"])).toEqual([]);
      let inside!: () => void;
      const open = new Promise<void>((resolve) => {
        inside = resolve;
      });
      let finish!: () => void;
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const writer = db.transaction().execute(async (trx) => {
        await trx.insertInto("settings").values({ key: "k", value: "uncommitted" }).execute();
        inside();
        await done;
        throw new Error("rolled back");
      });
      await open;
      // The transaction holds the connection: no synchronous read, and a queued read waits for
      // the rollback instead of seeing the uncommitted row.
      expect(readIfIdle(db, read, ["k"])).toBeUndefined();
      const queued = db.selectFrom("settings").select("value").where("key", "=", "k").execute();
      finish();
      await expect(writer).rejects.toThrow("rolled back");
      expect(await queued).toEqual([]);
      expect(readIfIdle(db, read, ["k"])).toEqual([]);
      // A transaction's executor is never read synchronously.
      await db.transaction().execute(async (trx) => {
        expect(readIfIdle(trx, read, ["k"])).toBeUndefined();
      });
      expect(() => readIfIdle(db, "delete from settings", [])).toThrow(/rows only/);
    });

    it("runs statements straight on the connection a marked transaction holds, inside that transaction", async () => {
      const { store } = await openTemp();
      const { db } = store;
      const { holdConnection, releaseConnection, runIfHeld } = await import("../src/store/sync-paths.js");
      const insert = "insert into settings (key, value) values (?, ?)";
      await expect(
        db.transaction().execute(async (trx) => {
          // Not marked: the caller must go through Kysely.
          expect(runIfHeld(trx, insert, ["held", "1"])).toBeUndefined();
          holdConnection(trx, db);
          expect(runIfHeld(trx, insert, ["held", "1"])).toEqual([]);
          expect(runIfHeld(trx, "select value from settings where key = ?", ["held"])).toEqual([{ value: "1" }]);
          releaseConnection(trx);
          expect(runIfHeld(trx, insert, ["held", "2"])).toBeUndefined();
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      // What ran straight on the connection was part of the transaction, and went with it.
      expect(await db.selectFrom("settings").select("value").where("key", "=", "held").execute()).toEqual([]);
      // The root database is never marked: it holds no connection between statements.
      holdConnection(db, db);
      expect(() => runIfHeld(db, insert, ["x", "y"])).toThrow(/held by the caller's transaction/);
      releaseConnection(db);
    });

    it("runs one transaction at a time on its connection", async () => {
      const { store } = await openTemp();
      const { db } = store;
      await db.insertInto("settings").values({ key: "counter", value: "0" }).execute();
      // Read-then-write increments: they would lose updates if two transactions interleaved.
      await Promise.all(
        Array.from({ length: 20 }, () =>
          db.transaction().execute(async (trx) => {
            const row = await trx
              .selectFrom("settings")
              .select("value")
              .where("key", "=", "counter")
              .executeTakeFirstOrThrow();
            await sleep(1);
            await trx
              .updateTable("settings")
              .set({ value: String(Number(row.value) + 1) })
              .where("key", "=", "counter")
              .execute();
          }),
        ),
      );
      const row = await db.selectFrom("settings").select("value").where("key", "=", "counter").executeTakeFirst();
      expect(row?.value).toBe("20");
    });
  });

  describe("row locks", () => {
    it("drops FOR UPDATE / SKIP LOCKED at the top and in subqueries, and keeps other end modifiers", async () => {
      const { store } = await openTemp();
      const { db } = store;
      await db.insertInto("settings").values({ key: "job", value: "free" }).execute();
      const claim = db
        .updateTable("settings")
        .set({ value: "taken" })
        .where("key", "=", (eb) =>
          eb.selectFrom("settings").select("key").where("value", "=", "free").limit(1).forUpdate().skipLocked(),
        )
        .returning("key");
      expect(claim.compile().sql).not.toMatch(/for update|skip locked/i);
      expect(await claim.execute()).toEqual([{ key: "job" }]);

      const top = db.selectFrom("settings").select("value").where("key", "=", "job").forUpdate().noWait();
      expect(top.compile().sql).not.toMatch(/for update|nowait/i);
      expect(await top.executeTakeFirst()).toEqual({ value: "taken" });

      const nested = db
        .selectFrom((eb) => eb.selectFrom("settings").select("key").forShare().as("locked"))
        .select("locked.key")
        .modifyEnd(sql.raw("/* kept */"));
      const compiled = nested.compile().sql;
      expect(compiled).not.toMatch(/for share/i);
      expect(compiled).toContain("/* kept */");
      expect(await nested.execute()).toEqual([{ key: "job" }]);
    });
  });

  describe("pragmas", () => {
    it("uses WAL, the chosen synchronous level, and no auto-checkpoint when checkpoints run in the background", async () => {
      const pragma = (store: StoreHandle, name: string) =>
        sql
          .raw<Record<string, unknown>>(`pragma ${name}`)
          .execute(store.db)
          .then((r) => Object.values(r.rows[0] ?? {})[0]);

      const normal = (await openTemp()).store;
      expect(await pragma(normal, "journal_mode")).toBe("wal");
      expect(await pragma(normal, "synchronous")).toBe(1); // NORMAL
      expect(await pragma(normal, "wal_autocheckpoint")).toBe(0);
      expect(await pragma(normal, "foreign_keys")).toBe(1);
      expect(normal.checkpointer?.running).toBe(true);

      const full = (await openTemp({ synchronous: "full", checkpoint: "inline" })).store;
      expect(await pragma(full, "synchronous")).toBe(2); // FULL
      expect(await pragma(full, "wal_autocheckpoint")).toBe(1000);
      expect(full.checkpointer).toBeUndefined();
    });
  });

  describe("configuration", () => {
    it("defaults to synchronous=normal with background checkpoints, and refuses other values by name", () => {
      expect(loadConfig({}).sqlite).toEqual({ synchronous: "normal", checkpoint: "background" });
      expect(loadConfig({ SQLITE_SYNCHRONOUS: "full", SQLITE_CHECKPOINT: "inline" }).sqlite).toEqual({
        synchronous: "full",
        checkpoint: "inline",
      });
      expect(() => loadConfig({ SQLITE_SYNCHRONOUS: "off" })).toThrow(/SQLITE_SYNCHRONOUS: must be normal or full/);
      expect(() => loadConfig({ SQLITE_CHECKPOINT: "never" })).toThrow(
        /SQLITE_CHECKPOINT: must be background or inline/,
      );
    });
  });

  describe("background checkpointer", () => {
    it("keeps the WAL bounded under a stream of commits, and the data whole", async () => {
      const restartFrames = 64;
      const { store, file } = await openTemp({ checkpointer: { intervalMs: 10, restartFrames } });
      const checkpointer = store.checkpointer;
      if (!checkpointer) throw new Error("no checkpointer");
      const { db } = store;
      const filler = "x".repeat(2000);
      let peak = 0;
      const batches = 60;
      const perBatch = 20;
      for (let batch = 0; batch < batches; batch++) {
        for (let i = 0; i < perBatch; i++) {
          await db
            .insertInto("settings")
            .values({ key: `row-${batch}-${i}`, value: filler })
            .execute();
        }
        peak = Math.max(peak, statSync(`${file}-wal`).size);
        // Let the thread take a round between batches, so what the WAL holds depends on the
        // batch size and the bound, not on how the threads happen to be scheduled.
        const rounds = checkpointer.stats().rounds;
        await until(() => checkpointer.stats().rounds > rounds, "a checkpoint round");
      }
      const stats = checkpointer.stats();
      expect(stats.failure).toBeUndefined();
      expect(stats.errors).toBe(0);
      expect(stats.restarts).toBeGreaterThan(0);
      // 1,200 commits of a 2 KB row write well over 1,200 pages: without checkpoints (auto-checkpoint
      // is off) the WAL would hold them all. Bounded, it holds the bound plus about one batch.
      const pageSize = 4096 + 24;
      expect(peak).toBeLessThan((restartFrames + 4 * perBatch * 4) * pageSize);
      const count = await db
        .selectFrom("settings")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("key", "like", "row-%")
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(batches * perBatch);
      const integrity = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(db);
      expect(integrity.rows).toEqual([{ integrity_check: "ok" }]);
    });

    it("rewinds the WAL while commits keep coming back to back", async () => {
      const restartFrames = 256;
      const { store, file } = await openTemp({ checkpointer: { intervalMs: 10, restartFrames } });
      const checkpointer = store.checkpointer;
      if (!checkpointer) throw new Error("no checkpointer");
      const { db } = store;
      const filler = "y".repeat(1000);
      // Back-to-back commits: between two of them the WAL is never caught up, so SQLite does not
      // rewind it by itself; the checkpointer's RESTARTs must get in (the pause between two
      // transactions makes room for them, see checkpointer.ts). Runs until three got through.
      let commits = 0;
      while (checkpointer.stats().restarts < 3) {
        if (commits >= 200_000) throw new Error(`no RESTART got through: ${JSON.stringify(checkpointer.stats())}`);
        await db
          .insertInto("settings")
          .values({ key: `busy-${commits}`, value: filler })
          .execute();
        commits++;
        if (commits % 50 === 0) await new Promise((resolve) => setImmediate(resolve)); // take the thread's messages
      }
      expect(checkpointer.stats().failure).toBeUndefined();
      // The next commit starts the WAL afresh: it holds far less than the commits made so far.
      await db.insertInto("settings").values({ key: "after", value: filler }).execute();
      const frames = (await sql<{ log: number }>`pragma wal_checkpoint(PASSIVE)`.execute(db)).rows[0]?.log ?? 0;
      expect(frames).toBeLessThan(commits);
      expect(statSync(`${file}-wal`).size).toBeGreaterThan(0);
    });

    it("stops with the store: the thread exits and the last close folds the WAL into the database", async () => {
      const { store, file } = await openTemp();
      await store.db.insertInto("settings").values({ key: "k", value: "v" }).execute();
      expect(existsSync(`${file}-wal`)).toBe(true);
      const checkpointer = store.checkpointer;
      await store.close();
      expect(checkpointer?.running).toBe(false);
      // SQLite removes the WAL when its last connection closes: the thread's is closed too.
      expect(existsSync(`${file}-wal`)).toBe(false);
      const reopened = new SQLite(file, { readonly: true });
      cleanups.push(() => void reopened.close());
      expect(reopened.prepare("select value from settings where key = 'k'").get()).toEqual({ value: "v" });
    });

    it("reports a thread that cannot start, so SQLite's auto-checkpoint takes over", async () => {
      const failures: Error[] = [];
      const checkpointer = new WalCheckpointer({
        file: join(tempDir(), "missing.db"),
        synchronous: "NORMAL",
        onFailure: (error) => failures.push(error),
      });
      cleanups.push(() => checkpointer.stop());
      await until(() => failures.length > 0, "the failure");
      expect(failures).toHaveLength(1);
      expect(checkpointer.stats().failure).toBe(failures[0]);
      await until(() => !checkpointer.running, "the thread to exit");
      // A pause asked for by a thread that is gone is never waited for.
      expect(checkpointer.gate.pauseRequested()).toBe(false);
    });
  });

  describe("checkpoint gate", () => {
    it("pauses a holder of the connection until the thread is done, or the gate closes", async () => {
      const gate = new CheckpointGate();
      expect(gate.pauseRequested()).toBe(false);
      await gate.pause(); // nothing requested: returns at once

      // Play the thread's part from here: request, see the pause, finish.
      Atomics.store(gate.state, 0, 1);
      expect(gate.pauseRequested()).toBe(true);
      let resumed = false;
      const paused = gate.pause().then(() => {
        resumed = true;
      });
      expect(Atomics.load(gate.state, 0)).toBe(2);
      await sleep(20);
      expect(resumed).toBe(false);
      Atomics.store(gate.state, 0, 0);
      Atomics.notify(gate.state, 0);
      await paused;

      Atomics.store(gate.state, 0, 1);
      const second = gate.pause();
      gate.close();
      await second;
      expect(gate.pauseRequested()).toBe(false);
    });
  });
});
