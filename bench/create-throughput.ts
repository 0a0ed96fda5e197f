/**
 * Create-throughput benchmark: starts the embedded server (no worker, so only the API path is
 * measured), fires N creates with C in flight, and checks that the ledger balanced afterwards.
 * Run: npm run bench:create -- [N] [C]
 * With DATABASE_URL set it runs on that PostgreSQL database (jobs added with graphile-worker's
 * add_job, rate-limit store in PostgreSQL) instead of a fresh SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../packages/server/src/config.js";
import { ledgerSummary } from "../packages/server/src/ledger/ledger.js";
import { createLogger } from "../packages/server/src/logger.js";
import { startServer } from "../packages/server/src/server.js";

const total = Number(process.argv[2] ?? 2000);
const inFlight = Number(process.argv[3] ?? 32);
const dir = mkdtempSync(join(tmpdir(), "framegate-bench-"));
const config = loadConfig({
  PORT: "0",
  DATA_DIR: dir,
  LOG_LEVEL: "silent",
  WORKER_CONCURRENCY: "0",
  RATE_LIMIT_CREATE_PER_MIN: "0",
  RATE_LIMIT_READ_PER_MIN: "0",
  BOOTSTRAP_DEV_ACCOUNT: "false",
  ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
});
const server = await startServer(config, { log: createLogger("silent") });
const account = await server.accounts.createAccount({ name: "bench", credits: total * 55 });
const { key } = await server.accounts.createKey(account.id);

const latencies: number[] = [];
let next = 0;
let failures = 0;
const started = performance.now();
async function worker() {
  while (next < total) {
    const i = next++;
    const t0 = performance.now();
    const res = await fetch(`${server.url}/api/v1/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": `bench-${i}` },
      body: JSON.stringify({ model: "kling-2-6", prompt: `benchmark task ${i}`, params: { duration: "5" } }),
    });
    await res.arrayBuffer();
    if (res.status !== 202) failures++;
    latencies.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]?.toFixed(1);
const ledger = await ledgerSummary(server.store.db, account.id);
console.log(
  JSON.stringify(
    {
      creates: total,
      in_flight: inFlight,
      failures,
      seconds: Number(seconds.toFixed(2)),
      per_second: Math.round(total / seconds),
      latency_ms: { p50: pct(50), p95: pct(95), p99: pct(99) },
      balance: ledger?.balance,
      ledger_balanced: ledger?.balance === ledger?.ledger_sum,
    },
    null,
    2,
  ),
);
await server.close();
rmSync(dir, { recursive: true, force: true });
