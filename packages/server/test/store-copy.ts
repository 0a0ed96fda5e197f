/**
 * Copies of a test server's database, for tests that damage one on purpose (verify.test.ts) and
 * must leave the original as it was: the SQLite file copied beside it, or on PostgreSQL a new
 * database made from the original as its template (the original must have no open connection).
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { openPostgres, openSqlite, type StoreHandle } from "../src/store/db.js";
import { TEST_STORE, testDatabaseName } from "./test-store.js";

let copies = 0;

export interface StoreCopy {
  store: StoreHandle;
  /** Closes the copy and removes its database (PostgreSQL; a SQLite copy goes with its directory). */
  discard(): Promise<void>;
}

/** A copy of the store of `dataDir` (whose server is closed), opened without migrating. */
export async function copyStore(dataDir: string): Promise<StoreCopy> {
  const n = ++copies;
  if (TEST_STORE === "sqlite") {
    const file = join(dataDir, `copy-${n}.db`);
    copyFileSync(join(dataDir, "framegate.db"), file);
    const store = openSqlite(file, { checkpoint: "inline" });
    return { store, discard: () => store.close() };
  }
  const adminUrl = inject("pgAdminUrl") as string;
  const original = testDatabaseName(dataDir);
  const name = `${original}_c${n}`;
  await admin(adminUrl, `create database "${name}" template "${original}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const store = openPostgres(url.toString());
  return {
    store,
    async discard() {
      await store.close();
      await admin(adminUrl, `drop database if exists "${name}" with (force)`);
    },
  };
}

async function admin(adminUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
