/**
 * Micro-benchmark of the SQLite store layer alone (no HTTP): the queries a keyed GET runs (API-key
 * lookup joined to its account, then the account's balance or a task), a create-like write
 * transaction (idempotency claim, guarded debit, ledger entry, task, job), and the queue's claim
 * (an UPDATE whose subquery carries FOR UPDATE SKIP LOCKED, which the SQLite store drops).
 *
 * Compares two builds of packages/server/src/store in the same process, round after round, so the
 * machine's load affects both alike: the current one, and the one under BEFORE_STORE (a directory
 * holding an older packages/server/src/store, e.g. from `git archive <rev> packages/server/src/store`).
 * Without BEFORE_STORE it measures the current build only. VARIANTS adds current builds with one
 * lever taken back or one setting changed: no-cache (a one-statement cache), inline (SQLite's own
 * auto-checkpoint), full (SQLITE_SYNCHRONOUS=full), mmap (mmap_size 256 MiB). Ratios are per
 * round against "current", then their median.
 *
 * Run: BEFORE_STORE=/tmp/fg-before/packages/server/src/store VARIANTS=no-cache,inline \
 *        npx tsx bench/sqlite-store.ts      (ROUNDS=5 GETS=20000 CREATES=3000 to change the sizes)
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Kysely, sql } from "kysely";
import type { Database } from "../packages/server/src/store/schema.js";

interface StoreModule {
  openSqlite(
    file: string,
    options?: { statementCacheSize?: number; checkpoint?: "background" | "inline"; synchronous?: "normal" | "full" },
  ): { db: Kysely<Database>; close(): Promise<void>; checkpointer?: { stats(): object } };
  migrateToLatest(store: unknown): Promise<string[]>;
}

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const GETS = Number(process.env.GETS ?? 20_000);
const CREATES = Number(process.env.CREATES ?? 3_000);

const ACCOUNT = "acct_bench";
const KEY_HASH = "h".repeat(64);
const TASKS = 1000;

async function load(dir: string): Promise<StoreModule> {
  return (await import(pathToFileURL(join(resolve(dir), "db.ts")).href)) as StoreModule;
}

async function seed(db: Kysely<Database>): Promise<void> {
  const now = new Date().toISOString();
  await db
    .insertInto("accounts")
    .values({ id: ACCOUNT, name: "bench", balance: 1_000_000_000, created_at: now })
    .execute();
  await db
    .insertInto("api_keys")
    .values({
      id: "key_bench",
      account_id: ACCOUNT,
      name: null,
      prefix: "fg_live_",
      key_hash: KEY_HASH,
      scopes: "generations:write,generations:read",
      created_at: now,
    })
    .execute();
  for (let i = 0; i < TASKS; i++) await insertTask(db, `task_seed_${i}`, now);
}

async function insertTask(db: Kysely<Database>, id: string, now: string): Promise<void> {
  await db
    .insertInto("tasks")
    .values({
      id,
      account_id: ACCOUNT,
      model: "kling-2-6",
      status: "queued",
      prompt: "a red fox running through fresh snow at dawn, cinematic",
      params: '{"duration":5,"aspect_ratio":"16:9"}',
      references_json: "[]",
      reserved_credits: 10,
      final_credits: 0,
      created_at: now,
      updated_at: now,
    })
    .execute();
}

/** The reads of a keyed GET: the key lookup (joined to its account) and the resource. */
async function getLike(db: Kysely<Database>, i: number): Promise<void> {
  const key = await db
    .selectFrom("api_keys")
    .innerJoin("accounts", "accounts.id", "api_keys.account_id")
    .select(["api_keys.id", "api_keys.account_id", "api_keys.scopes", "api_keys.expires_at", "api_keys.revoked_at"])
    .where("api_keys.key_hash", "=", KEY_HASH)
    .executeTakeFirstOrThrow();
  if (i % 2 === 0) {
    await db.selectFrom("accounts").select("balance").where("id", "=", key.account_id).executeTakeFirstOrThrow();
  } else {
    await db
      .selectFrom("tasks")
      .selectAll()
      .where("id", "=", `task_seed_${i % TASKS}`)
      .where("account_id", "=", key.account_id)
      .executeTakeFirstOrThrow();
  }
}

/** One create's writes in one transaction. */
async function createLike(db: Kysely<Database>, id: string): Promise<void> {
  const now = new Date().toISOString();
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("idempotency_keys")
      .values({
        account_id: ACCOUNT,
        method: "POST",
        path: "/api/v1/generations",
        idem_key: id,
        fingerprint: "f".repeat(64),
        state: "in_flight",
        response_status: null,
        response_body: null,
        locked_until: now,
        created_at: now,
        expires_at: now,
      })
      .execute();
    const debited = await trx
      .updateTable("accounts")
      .set((eb) => ({ balance: eb("balance", "-", 10) }))
      .where("id", "=", ACCOUNT)
      .where("balance", ">=", 10)
      .executeTakeFirst();
    if (debited.numUpdatedRows !== 1n) throw new Error("out of credits");
    await trx
      .insertInto("ledger_entries")
      .values({
        id: `le_${id}`,
        account_id: ACCOUNT,
        amount: -10,
        type: "reserve",
        task_id: id,
        reason: null,
        created_at: now,
      })
      .execute();
    await insertTask(trx as unknown as Kysely<Database>, id, now);
    await trx
      .insertInto("jobs")
      .values({
        id: `job_${id}`,
        kind: "submit",
        job_key: null,
        payload: JSON.stringify({ taskId: id }),
        run_at: now,
        attempts: 0,
        max_attempts: 10,
        locked_by: null,
        locked_until: null,
        last_error: null,
        created_at: now,
      })
      .execute();
    await trx
      .updateTable("idempotency_keys")
      .set({ state: "completed", response_status: 202, response_body: `{"id":"${id}"}` })
      .where("account_id", "=", ACCOUNT)
      .where("idem_key", "=", id)
      .execute();
  });
}

/** The queue's claim: row locks in a subquery (dropped on SQLite). */
async function claimLike(db: Kysely<Database>): Promise<void> {
  const now = new Date().toISOString();
  await db
    .updateTable("jobs")
    .set({ locked_by: "bench", locked_until: now })
    .where("id", "=", (eb) =>
      eb
        .selectFrom("jobs")
        .select("id")
        .where("run_at", "<=", "0")
        .where((w) => w.or([w("locked_until", "is", null), w("locked_until", "<", now)]))
        .where("kind", "in", ["submit", "poll"])
        .orderBy("run_at")
        .limit(1)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .executeTakeFirst();
}

interface Variant {
  options?: Parameters<StoreModule["openSqlite"]>[1];
  mmapBytes?: number;
}

const VARIANTS: Record<string, Variant> = {
  // A one-entry cache misses whenever two SQL texts alternate: every query prepares again.
  "no-cache": { options: { statementCacheSize: 1 } },
  inline: { options: { checkpoint: "inline" } },
  full: { options: { synchronous: "full" } },
  mmap: { mmapBytes: 256 * 1024 * 1024 },
};

interface Subject {
  name: string;
  db: Kysely<Database>;
  dir: string;
  close(): Promise<void>;
  creates: number;
  /** Largest -wal file seen (sampled every 100 creates). */
  walPeak: number;
  /** Each create-like transaction's duration: an inline checkpoint shows up in the tail. */
  createMs: number[];
  checkpointer?: { stats(): object };
}

function walSize(dir: string): number {
  try {
    return statSync(join(dir, "framegate.db-wal")).size;
  } catch {
    return 0;
  }
}

async function open(name: string, mod: StoreModule, variant: Variant = {}): Promise<Subject> {
  const dir = mkdtempSync(join(tmpdir(), `framegate-bench-${name}-`));
  const store = mod.openSqlite(join(dir, "framegate.db"), variant.options);
  await mod.migrateToLatest(store);
  if (variant.mmapBytes) await sql.raw(`pragma mmap_size = ${variant.mmapBytes}`).execute(store.db);
  await seed(store.db);
  return {
    name,
    db: store.db,
    dir,
    close: () => store.close(),
    creates: 0,
    walPeak: 0,
    createMs: [],
    checkpointer: store.checkpointer,
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main() {
  const currentModule = await load("packages/server/src/store");
  const subjects: Subject[] = [];
  if (process.env.BEFORE_STORE) subjects.push(await open("before", await load(process.env.BEFORE_STORE)));
  subjects.push(await open("current", currentModule));
  // Variants of the current build, one lever taken back each (VARIANTS=no-cache,inline,...).
  for (const name of (process.env.VARIANTS ?? "").split(",").filter(Boolean)) {
    const variant = VARIANTS[name];
    if (!variant) throw new Error(`unknown variant ${name}; known: ${Object.keys(VARIANTS).join(", ")}`);
    subjects.push(await open(name, currentModule, variant));
  }

  const scenarios: Record<string, (s: Subject) => Promise<number>> = {
    "get-like (2 selects)": async (s) => {
      const seconds = await timed(async () => {
        for (let i = 0; i < GETS; i++) await getLike(s.db, i);
      });
      return GETS / seconds;
    },
    "create-like (1 tx, 6 writes)": async (s) => {
      const seconds = await timed(async () => {
        for (let i = 0; i < CREATES; i++) {
          const start = process.hrtime.bigint();
          await createLike(s.db, `task_${s.creates++}`);
          s.createMs.push(Number(process.hrtime.bigint() - start) / 1e6);
          if (i % 100 === 0) s.walPeak = Math.max(s.walPeak, walSize(s.dir));
        }
      });
      return CREATES / seconds;
    },
    "claim (subquery FOR UPDATE)": async (s) => {
      const seconds = await timed(async () => {
        for (let i = 0; i < GETS; i++) await claimLike(s.db);
      });
      return GETS / seconds;
    },
  };

  const results: Record<string, Record<string, number[]>> = {};
  // Round 0 warms up (JIT, page cache) and is not counted.
  for (let round = -1; round < ROUNDS; round++) {
    for (const [scenario, run] of Object.entries(scenarios)) {
      // Alternate the order each round so neither build always runs second.
      const order = Math.abs(round) % 2 === 0 ? subjects : [...subjects].reverse();
      for (const s of order) {
        const perSecond = await run(s);
        if (round < 0) continue;
        const byScenario = results[scenario] ?? {};
        byScenario[s.name] = [...(byScenario[s.name] ?? []), perSecond];
        results[scenario] = byScenario;
      }
    }
  }

  for (const [scenario, bySubject] of Object.entries(results)) {
    const cells = subjects.map((s) => `${s.name} ${Math.round(median(bySubject[s.name] ?? [0]))}/s`);
    // Ratios to "current" per round (the rounds interleave the subjects, so load drifts cancel).
    const current = bySubject.current ?? [];
    const ratios = subjects
      .filter((s) => s.name !== "current")
      .map((s) => {
        const perRound = (bySubject[s.name] ?? []).map((x, i) => x / (current[i] ?? 1));
        return `${s.name}/current ${median(perRound).toFixed(2)} (${perRound.map((r) => r.toFixed(2)).join(" ")})`;
      });
    console.log(
      `${scenario.padEnd(30)} ${cells.join("  ")}${ratios.length ? `\n${" ".repeat(31)}${ratios.join("; ")}` : ""}`,
    );
  }
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  for (const s of subjects) {
    const sorted = [...s.createMs].sort((a, b) => a - b);
    const at = (q: number) => (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(2);
    console.log(
      `${s.name}: create-like ms p50 ${at(0.5)} p99 ${at(0.99)} p99.9 ${at(0.999)} max ${at(1)}` +
        ` (${sorted.filter((ms) => ms > 5).length} of ${sorted.length} over 5 ms)`,
    );
  }
  for (const s of subjects) {
    console.log(
      `${s.name}: -wal file ${mib(walSize(s.dir))} after ${s.creates} creates, at most ${mib(s.walPeak)};`,
      s.checkpointer ? JSON.stringify(s.checkpointer.stats()) : "no background checkpointer",
    );
    await s.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

await main();
