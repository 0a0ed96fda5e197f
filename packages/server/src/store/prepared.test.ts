import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateToLatest, openSqlite, type StoreHandle } from "./db.js";
import { PreparedQuery } from "./prepared.js";

describe("PreparedQuery", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-prepared-"));
  let store: StoreHandle;
  beforeAll(async () => {
    store = openSqlite(join(dir, "db.sqlite"));
    await migrateToLatest(store);
    const now = new Date().toISOString();
    await store.db
      .insertInto("accounts")
      .values([
        { id: "acct_a", name: "a", balance: 10, created_at: now },
        { id: "acct_b", name: "b", balance: 20, created_at: now },
      ])
      .execute();
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("swaps the arguments in, keeps the query's own constants, and types the rows", async () => {
    let builds = 0;
    const query = new PreparedQuery((db, id: string, min: number) => {
      builds++;
      return db
        .selectFrom("accounts")
        .select(["id", "balance"])
        .where("id", "=", id)
        .where("balance", ">=", min)
        .where("name", "!=", "nobody");
    }, 2);
    expect(await query.first(store.db, "acct_a", 5)).toEqual({ id: "acct_a", balance: 10 });
    expect(await query.first(store.db, "acct_b", 5)).toEqual({ id: "acct_b", balance: 20 });
    expect(await query.first(store.db, "acct_b", 25)).toBeUndefined();
    // Inside a transaction too; built once for the dialect.
    const inTrx = await store.db.transaction().execute((trx) => query.execute(trx, "acct_a", 0));
    expect(inTrx).toEqual([{ id: "acct_a", balance: 10 }]);
    expect(builds).toBe(1);
  });

  it("refuses a build that leaves an argument out (it would silently match the sentinel)", async () => {
    const query = new PreparedQuery((db, _id: string) => db.selectFrom("accounts").select("id"), 1);
    await expect(query.execute(store.db, "acct_a")).rejects.toThrow(/does not use argument/);
  });
});
