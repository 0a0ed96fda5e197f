/**
 * Safe upgrades. A database made by the first schema (fixtures/schema-0001.sql, SQLite) migrates
 * forward to today's with every row kept, passes `verify`, and serves: its balances and tasks
 * read back through the API and its queued task runs. A database that a newer Framegate migrated
 * is refused with a sentence saying so, and left as it was (SQLite and PostgreSQL).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { Migrator, sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { verifyStore } from "../src/ops/verify.js";
import { openStore, startServer } from "../src/server.js";
import { openStorage } from "../src/storage/build.js";
import type { StoreHandle } from "../src/store/db.js";
import { migrationState, NewerDatabaseError } from "../src/store/migration-state.js";
import { migrationProvider } from "../src/store/migrations.js";
import { systemClock } from "../src/util/clock.js";
import { startTestServer, TEST_ENV, waitForTask } from "./harness.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

const FIXTURE = join(import.meta.dirname, "fixtures/schema-0001.sql");
/** The tables 0001_core made; each holds rows in the fixture. */
const FIRST_TABLES = ["accounts", "api_keys", "ledger_entries", "tasks", "jobs", "idempotency_keys", "settings"];
const ACME = "acct_fixtureAcme0000000001";
const BETA = "acct_fixtureBeta0000000002";
const SUCCEEDED = "gen_fixtureSucceeded000001";
const QUEUED = "gen_fixtureQueued000000001";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-upgrade-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) {
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  }
});

type Row = Record<string, unknown>;

async function rowsOf(store: StoreHandle, table: string): Promise<Row[]> {
  const { rows } = await sql<Row>`select * from ${sql.table(table)}`.execute(store.db);
  return rows.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

describe.skipIf(TEST_STORE !== "sqlite")("upgrade from the first schema (SQLite fixture)", () => {
  it("migrates forward with every row kept, verify passes, and the server serves the old data", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const db = new SQLite(join(dir, "framegate.db"));
    db.exec(readFileSync(FIXTURE, "utf8"));
    db.close();
    // The succeeded task's video, as the server of the time stored it.
    mkdirSync(join(dir, "storage/results", SUCCEEDED), { recursive: true });
    writeFileSync(join(dir, "storage/results", SUCCEEDED, "video.mp4"), Buffer.alloc(24, 1));

    const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, DATABASE_URL: "" });
    const before = await openStore(config, { migrate: false });
    const all = Object.keys(await migrationProvider("sqlite").getMigrations()).sort();
    expect(await migrationState(before)).toEqual({ applied: ["0001_core"], pending: all.slice(1), unknown: [] });
    const old = Object.fromEntries(await Promise.all(FIRST_TABLES.map(async (t) => [t, await rowsOf(before, t)])));
    for (const table of FIRST_TABLES) expect(old[table].length, table).toBeGreaterThan(0);
    await before.close();

    const store = await openStore(config);
    try {
      expect(await migrationState(store)).toEqual({ applied: all, pending: [], unknown: [] });
      for (const table of FIRST_TABLES) {
        // Every old row, with its old values; columns added since hold their defaults.
        const now = await rowsOf(store, table);
        expect(now, table).toHaveLength(old[table].length);
        expect(now, table).toEqual(old[table].map((row: Row) => expect.objectContaining(row)));
      }
      const storage = await openStorage(config);
      const report = await verifyStore({ db: store.db, dialect: "sqlite", storage, clock: systemClock });
      expect(report.checks.flatMap((c) => c.examples)).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.checks.find((c) => c.name === "task_credits")?.checked).toBe(3);
    } finally {
      await store.close();
    }

    const t = await startTestServer({}, dir);
    try {
      const acme = await t.admin(`/admin/v1/accounts/${ACME}/keys`, { json: {} });
      expect(acme.status, acme.text).toBe(201);
      const credits = await t.request("/api/v1/credits", { key: acme.body.key });
      expect(credits.body.current_credits).toBe(945);
      const task = await t.request(`/api/v1/generations/${SUCCEEDED}`, { key: acme.body.key });
      expect(task.status, task.text).toBe(200);
      expect(task.body).toMatchObject({ status: "succeeded", final_credits: 55, client_request_id: "shot-1" });
      // The task left queued by the old server runs on the new one, and ends settled either way.
      const beta = await t.admin(`/admin/v1/accounts/${BETA}/keys`, { json: {} });
      const ended = await waitForTask(t, beta.body.key, QUEUED);
      expect(["succeeded", "failed"]).toContain(ended.status);
      const after = await verifyStore({
        db: t.server.store.db,
        dialect: "sqlite",
        storage: t.server.storage,
        clock: systemClock,
      });
      expect(after.checks.flatMap((c) => c.examples)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe(`a database migrated by a newer version (${TEST_STORE})`, () => {
  it("is refused at start with a clear message, and nothing in it changes", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)) });
    const store = await openStore(config);
    const future = "9999_from_a_newer_version";
    await sql`insert into kysely_migration (name, timestamp) values (${future}, ${new Date().toISOString()})`.execute(
      store.db,
    );
    const recorded = await rowsOf(store, "kysely_migration");
    const tables = await store.db.introspection.getTables();
    await store.close();

    const refusal = new RegExp(
      `^This database was upgraded by a newer Framegate: it records migration ${future}, which this version does not know \\(its latest is \\d{4}_\\w+\\)\\. Nothing was changed\\.`,
    );
    await expect(openStore(config)).rejects.toThrow(refusal);
    await expect(openStore(config)).rejects.toBeInstanceOf(NewerDatabaseError);
    await expect(startServer(config, { log: createLogger("silent") })).rejects.toThrow(refusal);

    const reopened = await openStore(config, { migrate: false });
    try {
      expect(await rowsOf(reopened, "kysely_migration")).toEqual(recorded);
      expect((await reopened.db.introspection.getTables()).map((t) => t.name)).toEqual(tables.map((t) => t.name));
      expect((await migrationState(reopened)).unknown).toEqual([future]);
      // What Kysely's migrator says on its own (the reason for the check above): safe, but it
      // reads like damage and names no way out.
      const migrator = new Migrator({ db: reopened.db, provider: migrationProvider(reopened.dialect) });
      const { error } = await migrator.migrateToLatest();
      expect(String(error)).toMatch(`corrupted migrations: previously executed migration ${future} is missing`);
    } finally {
      await reopened.close();
    }
  });
});
