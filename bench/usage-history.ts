/**
 * Usage history at scale: one account with a long history (N ledger entries and about as many
 * tasks, spread evenly over 400 days) and a second, small one. Times a ledger page at the top,
 * a type-filtered page, a page half-way down the history (its balances sum the entries above
 * it), a windowed page, 30 days of day buckets, 7 days of hour buckets, the small account's
 * usage (which must not pay for the big one) and the operators' report over all accounts.
 * Each is run once to warm up, then timed over a few runs (the median is printed).
 * Run: node --conditions=source --import tsx bench/usage-history.ts [entries]   (default 200000;
 * DATABASE_URL set: on that PostgreSQL database, which must be empty or a throwaway)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { listLedgerEntries } from "../packages/server/src/ledger/history.js";
import { migrateToLatest, openPostgres, openSqlite, type StoreHandle } from "../packages/server/src/store/db.js";
import type { LedgerEntriesTable, TasksTable } from "../packages/server/src/store/schema.js";
import { accountUsage, adminUsage } from "../packages/server/src/usage/report.js";
import { resolveBucketRange } from "../packages/server/src/usage/time-range.js";

const DAY = 86_400_000;
const N = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), "framegate-usage-bench-"));
const store: StoreHandle = process.env.DATABASE_URL
  ? openPostgres(process.env.DATABASE_URL)
  : openSqlite(join(dir, "bench.sqlite"));
const db = store.db;

async function seed() {
  await migrateToLatest(store);
  const now = Date.now();
  const first = now - 400 * DAY;
  await db
    .insertInto("accounts")
    .values([
      { id: "acct_big", name: "big", balance: 0, created_at: new Date(first).toISOString() },
      { id: "acct_small", name: "small", balance: 10, created_at: new Date(now).toISOString() },
    ])
    .execute();
  await db
    .insertInto("ledger_entries")
    .values({
      id: "led_small",
      account_id: "acct_small",
      amount: 10,
      type: "grant",
      task_id: null,
      reason: null,
      created_at: new Date(now).toISOString(),
    })
    .execute();
  // Every tenth entry a grant of 100, the rest reservations of 1 for a task each, one in seven failed.
  for (let i = 0; i < N; i += 1000) {
    const entries: LedgerEntriesTable[] = [];
    const tasks: TasksTable[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const at = new Date(first + (j / N) * 400 * DAY).toISOString();
      const grant = j % 10 === 0;
      const failed = j % 7 === 0;
      entries.push({
        id: `led_${String(j).padStart(10, "0")}`,
        account_id: "acct_big",
        amount: grant ? 100 : -1,
        type: grant ? "grant" : "reserve",
        task_id: grant ? null : `task_${j}`,
        reason: null,
        created_at: at,
      });
      if (grant) continue;
      tasks.push({
        id: `task_${j}`,
        account_id: "acct_big",
        model: "kling-2-6",
        status: failed ? "failed" : "succeeded",
        prompt: "p",
        params: "{}",
        references_json: "[]",
        reserved_credits: 1,
        final_credits: failed ? 0 : 1,
        client_request_id: null,
        provider: "simulated",
        upstream_id: null,
        result: null,
        error_reason: failed ? "provider_error" : null,
        error_message: null,
        error_detail: null,
        submit_state: null,
        upstream_details: null,
        result_expires_at: null,
        result_purged_at: null,
        created_at: at,
        updated_at: at,
        started_at: at,
        completed_at: at,
      });
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("ledger_entries").values(entries).execute();
      await trx.insertInto("tasks").values(tasks).execute();
    });
  }
  await db
    .updateTable("accounts")
    .set({ balance: sql<number>`(select sum(amount) from ledger_entries where account_id = 'acct_big')` })
    .where("id", "=", "acct_big")
    .execute();
  if (process.env.DATABASE_URL) await sql`analyze`.execute(db);
}

async function time(label: string, run: () => Promise<unknown>) {
  await run();
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run();
    runs.push(performance.now() - started);
  }
  runs.sort((a, b) => a - b);
  console.log(`${label.padEnd(44)} ${(runs[2] as number).toFixed(1).padStart(8)} ms`);
}

try {
  const seeded = performance.now();
  await seed();
  console.log(
    `${process.env.DATABASE_URL ? "PostgreSQL" : "SQLite"}: ${N} ledger entries, ${Math.round(N * 0.9)} tasks in ${Math.round(performance.now() - seeded)} ms`,
  );
  const now = new Date();
  const middle = await listLedgerEntries(db, "acct_big", {
    limit: 1,
    createdBefore: new Date(now.getTime() - 200 * DAY).toISOString(),
  });
  const days = resolveBucketRange({}, now);
  const hours = resolveBucketRange(
    { granularity: "hour", start: new Date(now.getTime() - 7 * DAY).toISOString() },
    now,
  );
  await time("ledger: first page (20)", () => listLedgerEntries(db, "acct_big", { limit: 20 }));
  await time("ledger: first page, type=grant", () =>
    listLedgerEntries(db, "acct_big", { limit: 20, types: ["grant"] }),
  );
  await time("ledger: page half-way down (cursor)", () =>
    listLedgerEntries(db, "acct_big", { limit: 20, startingAfter: middle.data[0]?.id as string }),
  );
  await time("ledger: created_after 7 days ago", () =>
    listLedgerEntries(db, "acct_big", { limit: 20, createdAfter: new Date(now.getTime() - 7 * DAY).toISOString() }),
  );
  await time("usage: 30 days of days (big account)", () => accountUsage(db, "acct_big", days));
  await time("usage: 168 hours (big account)", () => accountUsage(db, "acct_big", hours));
  await time("usage: 30 days of days (small account)", () => accountUsage(db, "acct_small", days));
  await time("admin usage: 30 days, all accounts", () => adminUsage(db, days));
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
