/**
 * Rate limits shared by several API processes (DESIGN §2): two RateLimits instances, each with
 * its own connection, stand for two processes. On PostgreSQL and Redis they spend one budget,
 * also when their consumes race; a store that goes away leaves each process its own in-memory
 * budget instead of failing requests. In memory (the embedded default) nothing is shared.
 *
 * The Redis suite runs a throwaway redis-server on 127.0.0.1; without the binary it is skipped,
 * except in CI (CI=true), which installs it (.ci/run) and so fails when it is missing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRateLimits, type LimitName, RateLimits } from "../src/http/rate-limit.js";
import { freePort } from "./process-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

const BUDGET = 5;
const PER_MINUTE: Record<LimitName, number> = { create: BUDGET, upload: 0, read: 0, write: 0 };

/** Consumes one `create` point; the outcome as "ok r=<remaining>" or the error's code. */
async function attempt(limits: RateLimits, subject: string): Promise<string> {
  try {
    const headers = await limits.consume("create", subject);
    return `ok r=${/;r=(\d+);/.exec(headers.RateLimit ?? "")?.[1]}`;
  } catch (error) {
    const { code, headers } = error as { code?: string; headers?: Record<string, string> };
    if (code !== "rate_limited") throw error;
    expect(Number(headers?.["Retry-After"])).toBeGreaterThanOrEqual(1);
    expect(Number(headers?.["Retry-After"])).toBeLessThanOrEqual(60);
    return code;
  }
}

/** Three consumes on each instance, one after the other: the budget of 5 is spent once. */
async function expectSharedBudget(a: RateLimits, b: RateLimits, subject: string) {
  const outcomes = [];
  for (const limits of [a, a, a, b, b, b]) outcomes.push(await attempt(limits, subject));
  expect(outcomes).toEqual(["ok r=4", "ok r=3", "ok r=2", "ok r=1", "ok r=0", "rate_limited"]);
}

/** 20 consumes at once, split across both instances: exactly the budget gets through. */
async function expectRaceHoldsBudget(a: RateLimits, b: RateLimits, subject: string) {
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(i % 2 === 0 ? a : b, subject)));
  expect(outcomes.filter((o) => o.startsWith("ok")).length).toBe(BUDGET);
  expect(outcomes.filter((o) => o === "rate_limited").length).toBe(20 - BUDGET);
}

/** After the shared store is gone: answers (no throw) from a per-process budget. */
async function expectPerProcessFallback(limits: RateLimits, subject: string) {
  const outcomes = [];
  for (let i = 0; i <= BUDGET; i++) outcomes.push(await attempt(limits, subject));
  expect(outcomes).toEqual(["ok r=4", "ok r=3", "ok r=2", "ok r=1", "ok r=0", "rate_limited"]);
}

// The store-independent suites run once, in the SQLite project (npm test).
describe.runIf(TEST_STORE === "sqlite")("rate limits in memory (embedded default)", () => {
  it("two instances do not share a budget: each process has its own", async () => {
    const a = new RateLimits(PER_MINUTE);
    const b = await createRateLimits(PER_MINUTE, { kind: "memory" });
    for (const limits of [a, b]) {
      for (let i = 0; i < BUDGET; i++) expect(await attempt(limits, "key_mem")).toMatch(/^ok/);
      expect(await attempt(limits, "key_mem")).toBe("rate_limited");
      await limits.close();
    }
  });
});

describe.runIf(TEST_STORE === "postgres")("rate limits shared in PostgreSQL", () => {
  let dataDir: string;
  const pools: pg.Pool[] = [];
  let a: RateLimits;
  let b: RateLimits;

  /** A pool of its own, as each API process has. */
  async function newPool(): Promise<pg.Pool> {
    const pool = new pg.Pool({ connectionString: (await testStoreEnv(dataDir)).DATABASE_URL, max: 4 });
    pool.on("error", () => {});
    pools.push(pool);
    return pool;
  }

  beforeAll(async () => {
    // Made here, not when the suite is collected: a skipped suite would leave it behind.
    dataDir = mkdtempSync(join(tmpdir(), "framegate-rate-limit-"));
    const [poolA, poolB] = await Promise.all([newPool(), newPool()]);
    // Started together on an empty database: both create the table, neither fails.
    [a, b] = await Promise.all([
      createRateLimits(PER_MINUTE, { kind: "postgres", pool: poolA }),
      createRateLimits(PER_MINUTE, { kind: "postgres", pool: poolB }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    if (!dataDir) return;
    await dropTestDatabase(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("3 consumes on each process: 5 succeed, the 6th is rate_limited with Retry-After", async () => {
    await expectSharedBudget(a, b, "key_pg_seq");
  });

  it("20 racing consumes across both processes let exactly the budget through", async () => {
    await expectRaceHoldsBudget(a, b, "key_pg_race");
  });

  it("several processes starting at once on an existing table all start", async () => {
    const starts = await Promise.all(
      Array.from({ length: 4 }, async () => createRateLimits(PER_MINUTE, { kind: "postgres", pool: await newPool() })),
    );
    expect(await attempt(starts[0] as RateLimits, "key_pg_seq")).toBe("rate_limited");
  });

  it("without PostgreSQL, consume answers from the per-process insurance limiter", async () => {
    const pool = await newPool();
    const limits = await createRateLimits(PER_MINUTE, { kind: "postgres", pool });
    await pool.end();
    await expectPerProcessFallback(limits, "key_pg_down");
  });
});

/** The redis-server binary on PATH, or in /usr/bin or /usr/sbin (Debian's package). */
function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin", "/usr/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

const REDIS_SERVER = findRedisServer();
const IN_CI = process.env.CI === "true";

/** A redis-server on 127.0.0.1 that persists nothing; resolves once it accepts connections. */
async function startRedis(bin: string, port: number): Promise<ChildProcess> {
  const proc = spawn(bin, ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${output}`));
    });
  });
  return proc;
}

async function stopRedis(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  await exited;
}

describe.skipIf(TEST_STORE !== "sqlite" || (!REDIS_SERVER && !IN_CI))(
  `rate limits shared in Redis${REDIS_SERVER ? "" : " (no redis-server on PATH, /usr/bin or /usr/sbin)"}`,
  () => {
    let redis: ChildProcess | undefined;
    let a: RateLimits;
    let b: RateLimits;

    beforeAll(async () => {
      if (!REDIS_SERVER) throw new Error("CI=true but redis-server is not installed (.ci/run installs it)");
      const port = await freePort();
      redis = await startRedis(REDIS_SERVER, port);
      const url = `redis://127.0.0.1:${port}`;
      // Each with its own client, as each API process has.
      [a, b] = await Promise.all([
        createRateLimits(PER_MINUTE, { kind: "redis", url }),
        createRateLimits(PER_MINUTE, { kind: "redis", url }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()]);
      if (redis) await stopRedis(redis);
    });

    it("3 consumes on each process: 5 succeed, the 6th is rate_limited with Retry-After", async () => {
      await expectSharedBudget(a, b, "key_redis_seq");
    });

    it("20 racing consumes across both processes let exactly the budget through", async () => {
      await expectRaceHoldsBudget(a, b, "key_redis_race");
    });

    it("with Redis stopped, consume answers from the per-process insurance limiter", async () => {
      await stopRedis(redis as ChildProcess);
      await expectPerProcessFallback(a, "key_redis_down");
    });
  },
);
