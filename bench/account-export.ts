/**
 * GET /admin/v1/accounts/{id}/export at scale: one account with N succeeded tasks (each with a
 * result to sign) and 2N ledger entries, exported through exportAccount (what the route streams),
 * counting bytes as a client would and sampling the heap: the peak growth stays flat while the
 * document grows with N. Run: node --expose-gc --conditions=source --import tsx bench/account-export.ts [tasks]
 * (default 100000; SQLite in a temp directory)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportAccount } from "../packages/server/src/accounts/lifecycle.js";
import { AccountService } from "../packages/server/src/accounts/service.js";
import { UrlSigner } from "../packages/server/src/storage/signed-urls.js";
import { migrateToLatest, openSqlite } from "../packages/server/src/store/db.js";
import type { LedgerEntriesTable, TasksTable } from "../packages/server/src/store/schema.js";
import { systemClock } from "../packages/server/src/util/clock.js";

const N = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "framegate-export-bench-"));
const store = openSqlite(join(dir, "bench.sqlite"));
const { db } = store;
const ACCOUNT = "acct_export_bench";

async function seed() {
  await migrateToLatest(store);
  const start = Date.now() - 30 * 86_400_000;
  await db
    .insertInto("accounts")
    .values({ id: ACCOUNT, name: "bench", balance: 0, created_at: new Date(start).toISOString() })
    .execute();
  const result = JSON.stringify({
    media: [
      {
        key: "results/x.mp4",
        poster_key: "results/x.jpg",
        mime_type: "video/mp4",
        width: 1280,
        height: 720,
        duration_seconds: 5,
        has_audio: false,
        size_bytes: 1_000_000,
        sha256: "0".repeat(64),
      },
    ],
  });
  for (let i = 0; i < N; i += 1000) {
    const tasks: TasksTable[] = [];
    const ledger: LedgerEntriesTable[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const at = new Date(start + j * 10).toISOString();
      const id = `task_${String(j).padStart(10, "0")}`;
      tasks.push({
        id,
        account_id: ACCOUNT,
        model: "kling-2-6",
        status: "succeeded",
        prompt: "a lighthouse in a storm, slow dolly in, cinematic lighting",
        params: '{"duration":"5","sound":"false","aspect_ratio":"16:9"}',
        references_json: "[]",
        reserved_credits: 55,
        final_credits: 55,
        client_request_id: null,
        provider: "kling",
        upstream_id: `up_${j}`,
        result,
        error_reason: null,
        error_message: null,
        error_detail: null,
        submit_state: null,
        upstream_details: null,
        result_expires_at: new Date(Date.now() + 86_400_000).toISOString(),
        result_purged_at: null,
        created_at: at,
        updated_at: at,
        started_at: at,
        completed_at: at,
      });
      ledger.push(
        {
          id: `led_g${j}`,
          account_id: ACCOUNT,
          amount: 55,
          type: "grant",
          task_id: null,
          reason: null,
          created_at: at,
        },
        {
          id: `led_r${j}`,
          account_id: ACCOUNT,
          amount: -55,
          type: "reserve",
          task_id: id,
          reason: null,
          created_at: at,
        },
      );
    }
    await db.insertInto("tasks").values(tasks).execute();
    await db.insertInto("ledger_entries").values(ledger).execute();
  }
}

async function main() {
  await seed();
  const accounts = new AccountService(db, systemClock, {
    defaultMaxRunningTasks: 4,
    quotas: { maxWebhookEndpoints: 20, maxFileBytes: 2 ** 30, maxFiles: 1000 },
  });
  const signer = new UrlSigner("bench-secret-0123456789abcdef0123456789", () => "http://127.0.0.1:8080");
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  let bytes = 0;
  let chunks = 0;
  const started = performance.now();
  for await (const chunk of exportAccount({ db, clock: systemClock, signer, accounts }, ACCOUNT)) {
    bytes += Buffer.byteLength(chunk);
    if (++chunks % 2000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  }
  const ms = performance.now() - started;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `${N} tasks, ${2 * N} ledger entries: ${mb(bytes)} MB in ${(ms / 1000).toFixed(1)} s ` +
      `(${Math.round(N / (ms / 1000))} tasks/s); heap growth sampled every 2000 chunks: peak ${mb(peak)} MB`,
  );
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
