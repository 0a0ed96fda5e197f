/**
 * Counts the database statements (round trips on PostgreSQL) one POST /api/v1/generations costs,
 * BEGIN and COMMIT included, by counting at the driver: better-sqlite3 statement runs, or pg
 * client queries. Prints the average over a few creates with and without an Idempotency-Key, a
 * replay, and a GET for comparison (the key lookup every keyed request pays).
 * Run: node --conditions=source --import tsx bench/create-statements.ts   (DATABASE_URL set: on that
 * PostgreSQL database; SHOW_SQL=1 lists the statements of one request)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import pg from "pg";
import { loadConfig } from "../packages/server/src/config.js";
import { createLogger } from "../packages/server/src/logger.js";
import { startServer } from "../packages/server/src/server.js";

let count = 0;
const sqls: string[] = [];
function counting<T extends object>(proto: T, method: string) {
  const record = proto as Record<string, (...args: unknown[]) => unknown>;
  const original = record[method] as (...args: unknown[]) => unknown;
  record[method] = function (this: unknown, ...args: unknown[]) {
    count++;
    const text =
      (this as { source?: string }).source ??
      (typeof args[0] === "string" ? args[0] : (args[0] as { text?: string })?.text);
    if (process.env.SHOW_SQL) sqls.push(String(text).replace(/\s+/g, " ").slice(0, 160));
    return original.apply(this, args);
  };
}

if (process.env.DATABASE_URL) {
  counting(pg.Client.prototype, "query");
} else {
  const probe = new SQLite(":memory:");
  const statementProto = Object.getPrototypeOf(probe.prepare("select 1"));
  for (const m of ["run", "all", "get", "iterate"]) counting(statementProto, m);
  probe.close();
}

const dir = mkdtempSync(join(tmpdir(), "framegate-statements-"));
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
const account = await server.accounts.createAccount({ name: "statements", credits: 100_000 });
const { key } = await server.accounts.createKey(account.id);

async function measure(label: string, times: number, send: (i: number) => Promise<Response>) {
  await (await send(-1)).arrayBuffer(); // warm-up (and the original of a replay)
  sqls.length = 0;
  const before = count;
  for (let i = 0; i < times; i++) {
    const res = await send(i);
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`${label}: HTTP ${res.status}`);
  }
  const perRequest = (count - before) / times;
  console.log(`${label.padEnd(28)} ${perRequest.toFixed(1)} statements/request`);
  if (process.env.SHOW_SQL) for (const s of sqls.slice(0, Math.ceil(sqls.length / times))) console.log(`    ${s}`);
}

const create = (idemKey: string | undefined) =>
  fetch(`${server.url}/api/v1/generations`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      "content-type": "application/json",
      ...(idemKey ? { "idempotency-key": idemKey } : {}),
    },
    body: JSON.stringify({ model: "kling-2-6", prompt: "count my statements", params: { duration: "5" } }),
  });
const n = 20;
try {
  await measure("GET /api/v1/credits", n, () =>
    fetch(`${server.url}/api/v1/credits`, { headers: { authorization: `Bearer ${key}` } }),
  );
  await measure("create, no key", n, () => create(undefined));
  await measure("create, Idempotency-Key", n, (i) => create(`count-${i}`));
  await measure("replay", n, () => create("count--1"));
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
