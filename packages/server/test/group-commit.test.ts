/**
 * Group commit of SQLite creates (store/group-commit.ts): work that arrives in one turn of
 * the event loop (or while a transaction runs) commits together, each piece is answered only once its rows are committed
 * (visible to another connection), and one piece failing rolls back only its own rows.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { migrateToLatest, openSqlite, type StoreHandle } from "../src/store/db.js";
import { GroupCommit } from "../src/store/group-commit.js";

describe("group commit (SQLite)", () => {
  let dir: string;
  let store: StoreHandle;
  /** A second connection: it sees only what was committed. */
  let reader: SQLite.Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-group-"));
    store = openSqlite(join(dir, "framegate.db"));
    await migrateToLatest(store);
    reader = new SQLite(join(dir, "framegate.db"), { readonly: true });
  });
  afterAll(async () => {
    reader?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const committed = (key: string) => reader.prepare("select value from settings where key = ?").get(key) !== undefined;

  it("commits work that queued up together; each piece resolves only once its rows are committed", async () => {
    const group = new GroupCommit(store.db);
    const seenAtResolve: boolean[] = [];
    const runs = Array.from({ length: 20 }, (_, i) =>
      group
        .run(async (trx) => {
          await trx
            .insertInto("settings")
            .values({ key: `together-${i}`, value: "x" })
            .execute();
          return i;
        })
        .then((value) => {
          seenAtResolve[i] = committed(`together-${i}`);
          return value;
        }),
    );
    expect(await Promise.all(runs)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seenAtResolve).toEqual(Array.from({ length: 20 }, () => true));
  });

  it("a piece that fails is rolled back alone and rejected; the others in its group commit", async () => {
    const group = new GroupCommit(store.db);
    const runs = Array.from({ length: 10 }, (_, i) =>
      group.run(async (trx) => {
        await trx
          .insertInto("settings")
          .values({ key: `mixed-${i}`, value: "x" })
          .execute();
        if (i === 4) throw new Error("this create fails after writing");
        if (i === 6) {
          // A database error, too: a duplicate key.
          await trx.insertInto("settings").values({ key: "mixed-0", value: "again" }).execute();
        }
        return i;
      }),
    );
    const outcomes = await Promise.allSettled(runs);
    outcomes.forEach((o, i) => {
      if (i === 4 || i === 6) expect(o.status).toBe("rejected");
      else expect(o).toEqual({ status: "fulfilled", value: i });
    });
    for (let i = 0; i < 10; i++) expect(committed(`mixed-${i}`)).toBe(i !== 4 && i !== 6);
    expect(reader.prepare("select value from settings where key = 'mixed-0'").get()).toEqual({ value: "x" });
  });

  it("gathers what arrives in one turn of the event loop: 30 pieces take 1 transaction, 70 take 2 of ≤ 64", async () => {
    const transactions = async (pieces: number, prefix: string) => {
      const group = new GroupCommit(store.db);
      const alone = vi.spyOn(store.db, "transaction");
      const together = vi.spyOn(store.db, "startTransaction");
      try {
        await Promise.all(
          Array.from({ length: pieces }, (_, i) =>
            group.run((trx) =>
              trx
                .insertInto("settings")
                .values({ key: `${prefix}-${i}`, value: "x" })
                .execute(),
            ),
          ),
        );
        for (let i = 0; i < pieces; i++) expect(committed(`${prefix}-${i}`)).toBe(true);
        return { alone: alone.mock.calls.length, together: together.mock.calls.length };
      } finally {
        alone.mockRestore();
        together.mockRestore();
      }
    };
    // Even the first piece waits for the others of its turn: no transaction of one.
    expect(await transactions(30, "count")).toEqual({ alone: 0, together: 1 });
    expect(await transactions(70, "batch")).toEqual({ alone: 0, together: 2 });
    // A piece on its own still runs (alone), in the same turn of the loop.
    expect(await transactions(1, "single")).toEqual({ alone: 1, together: 0 });
  });
});
