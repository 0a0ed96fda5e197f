/**
 * GET /admin/v1/tasks at scale: N tasks over 60 days across 200 accounts (one in thirty failed
 * and refunded; a few hundred queued or processing; 2% on fal, the rest on kling), then each
 * filter's first page and refund totals, timed through listAdminTasks (what the route runs).
 * Each is run once to warm up, then timed over five runs (the median is printed).
 * Run: node --conditions=source --import tsx bench/admin-tasks.ts [tasks]   (default 300000;
 * DATABASE_URL set: on that PostgreSQL database, which must be empty or a throwaway)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { type AdminTaskFilters, listAdminTasks } from "../packages/server/src/generations/admin-list.js";
import { UrlSigner } from "../packages/server/src/storage/signed-urls.js";
import { migrateToLatest, openPostgres, openSqlite, type StoreHandle } from "../packages/server/src/store/db.js";
import type { LedgerEntriesTable, TasksTable } from "../packages/server/src/store/schema.js";

const DAY = 86_400_000;
const N = Number(process.argv[2] ?? 300_000);
const ACCOUNTS = 200;
const dir = mkdtempSync(join(tmpdir(), "framegate-admin-tasks-bench-"));
const store: StoreHandle = process.env.DATABASE_URL
  ? openPostgres(process.env.DATABASE_URL)
  : openSqlite(join(dir, "bench.sqlite"));
const db = store.db;
const now = Date.now();
const first = now - 60 * DAY;
const account = (i: number) => `acct_${String(i % ACCOUNTS).padStart(3, "0")}`;

async function seed() {
  await migrateToLatest(store);
  await db
    .insertInto("accounts")
    .values(
      Array.from({ length: ACCOUNTS }, (_, i) => ({
        id: account(i),
        name: `a${i}`,
        balance: 0,
        created_at: new Date(first).toISOString(),
      })),
    )
    .execute();
  for (let i = 0; i < N; i += 1000) {
    const tasks: TasksTable[] = [];
    const refunds: LedgerEntriesTable[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const at = new Date(first + (j / N) * 60 * DAY).toISOString();
      const pending = j >= N - 300;
      const failed = !pending && j % 30 === 0;
      const status = pending ? (j % 2 ? "queued" : "processing") : failed ? "failed" : "succeeded";
      const id = `task_${String(j).padStart(10, "0")}`;
      tasks.push({
        id,
        account_id: account(j),
        model: "kling-2-6",
        status,
        prompt: "p",
        params: "{}",
        references_json: "[]",
        reserved_credits: 50,
        final_credits: status === "succeeded" ? 50 : 0,
        client_request_id: null,
        provider: status === "queued" ? null : j % 50 === 0 ? "fal" : "kling",
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
        completed_at: pending ? null : at,
      });
      if (failed) {
        refunds.push({
          id: `led_${id}`,
          account_id: account(j),
          amount: 50,
          type: "refund",
          task_id: id,
          reason: "generation failed: provider_error",
          created_at: at,
        });
      }
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("tasks").values(tasks).execute();
      if (refunds.length) await trx.insertInto("ledger_entries").values(refunds).execute();
    });
  }
  if (process.env.DATABASE_URL) await sql`analyze`.execute(db);
}

async function time(label: string, filters: AdminTaskFilters, startingAfter?: string) {
  const signer = new UrlSigner("bench-secret", () => "http://127.0.0.1");
  const run = () =>
    listAdminTasks({ db, signer, now: new Date() }, filters, {
      limit: 20,
      ...(startingAfter ? { startingAfter } : {}),
    });
  const answer = await run();
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run();
    runs.push(performance.now() - started);
  }
  runs.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(40)} ${(runs[2] as number).toFixed(1).padStart(8)} ms  (${answer.data.length} rows, ${answer.refunds.count} refunds)`,
  );
}

try {
  const seeded = performance.now();
  await seed();
  console.log(
    `${process.env.DATABASE_URL ? "PostgreSQL" : "SQLite"}: ${N} tasks, ${ACCOUNTS} accounts, in ${Math.round(performance.now() - seeded)} ms`,
  );
  const middle = `task_${String(Math.floor(N / 2)).padStart(10, "0")}`;
  const lastDay = new Date(now - DAY).toISOString();
  await time("no filter", {});
  await time("no filter, page half-way down", {}, middle);
  await time("status=failed", { status: "failed" });
  await time("status=queued", { status: "queued" });
  await time("account_id", { accountId: account(10) });
  await time("account_id + status=failed", { accountId: account(10), status: "failed" });
  await time("provider=fal", { provider: "fal" });
  await time("provider=fal + last day", { provider: "fal", createdAfter: lastDay });
  await time("model=kling-2-6 + last day", { model: "kling-2-6", createdAfter: lastDay });
  await time("provider=nonexistent + last day", { provider: "nope", createdAfter: lastDay });
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
