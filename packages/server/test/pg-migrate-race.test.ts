/**
 * Processes started together on a fresh PostgreSQL database (an API and a worker, or several
 * replicas) each migrate our schema and graphile-worker's. Kysely's migrator reads the whole
 * catalog before it takes its own lock and graphile-worker's migrations take none, so without
 * the shared migration lock a catalog read failed on a column graphile-worker's DDL was dropping
 * (`column "job_count" of relation "job_queues" does not exist`, seen on CI).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { migrateGraphileWorker } from "../src/queue/graphile-queue.js";
import { migrateToLatest, openPostgres } from "../src/store/db.js";
import { migrationProvider } from "../src/store/migrations.js";
import { TEST_STORE, testStoreEnv } from "./test-store.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(TEST_STORE !== "postgres")("migrations on a fresh PostgreSQL database", () => {
  it("three processes' worth of our and graphile-worker's migrations, started at once, all succeed", async () => {
    const expected = Object.keys(await migrationProvider("postgres").getMigrations()).length;
    for (let round = 0; round < 5; round++) {
      const dir = mkdtempSync(join(tmpdir(), "framegate-migrate-race-"));
      dirs.push(dir);
      const url = (await testStoreEnv(dir)).DATABASE_URL as string;
      // One pool per "process", as server.ts migrates: ours, then graphile-worker's. One of them
      // has a single connection (DATABASE_POOL_SIZE=1 must work too).
      const stores = [1, 2, 10].map((maxConnections) => openPostgres(url, { maxConnections }));
      try {
        const results = await Promise.allSettled(
          stores.map(async (store) => {
            const applied = await migrateToLatest(store);
            // biome-ignore lint/style/noNonNullAssertion: openPostgres always has a pool
            await migrateGraphileWorker(store.pgPool!);
            return applied;
          }),
        );
        const failures = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
        expect(failures).toEqual([]);
        // Our migrations ran exactly once between them.
        const applied = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
        expect(applied).toHaveLength(expected);
        // biome-ignore lint/style/noNonNullAssertion: as above
        const { rows } = await stores[0]!.pgPool!.query(
          "select count(*)::int as n from information_schema.tables where table_schema = 'graphile_worker'",
        );
        expect(rows[0].n).toBeGreaterThan(0);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    }
  });
  it("our migrator does not read the catalog while graphile-worker's migrations change it", async () => {
    for (let round = 0; round < 5; round++) {
      const dir = mkdtempSync(join(tmpdir(), "framegate-migrate-race-"));
      dirs.push(dir);
      const url = (await testStoreEnv(dir)).DATABASE_URL as string;
      const [worker, api] = [openPostgres(url), openPostgres(url)];
      try {
        await migrateToLatest(api);
        // The API process keeps (re)checking its schema while the worker creates graphile-worker's.
        let done = false;
        const checks = (async () => {
          while (!done) await migrateToLatest(api);
        })();
        await Promise.all([
          checks,
          // biome-ignore lint/style/noNonNullAssertion: openPostgres always has a pool
          migrateGraphileWorker(worker.pgPool!).finally(() => {
            done = true;
          }),
        ]);
      } finally {
        await Promise.all([worker.close(), api.close()]);
      }
    }
  });
});
