/**
 * The Queue contract (queue/queue.ts), checked the same way on every driver: the `jobs` table
 * (both stores) and graphile-worker (PostgreSQL). Jobs commit or roll back with the caller's
 * transaction, keys dedupe, "not ready yet" is not a failure, failures back off and end in the
 * exhausted hook once, runNow makes a waiting job due, and a stop hands a running job back to
 * the next process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { GraphileQueue, type GraphileQueueOptions } from "../src/queue/graphile-queue.js";
import type { JobClass, JobContext, JobHandler, Queue } from "../src/queue/queue.js";
import { TableQueue } from "../src/queue/table-queue.js";
import { openStore } from "../src/server.js";
import type { StoreHandle } from "../src/store/db.js";
import { systemClock } from "../src/util/clock.js";
import { TEST_ENV } from "./harness.js";
import { freePort, sleep } from "./process-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

type Driver = "table" | "graphile";
const DRIVERS: Driver[] = TEST_STORE === "postgres" ? ["table", "graphile"] : ["table"];
const log = createLogger("silent");

interface Setup {
  store: StoreHandle;
  /** A queue of this driver on the shared store (call again for a second "process"). */
  queue(): Queue;
}

describe.each(DRIVERS)("queue contract: %s", (driver) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(): Promise<Setup> {
    const dir = mkdtempSync(join(tmpdir(), "framegate-queue-"));
    const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)), QUEUE_DRIVER: driver });
    const store = await openStore(config);
    const queues: Queue[] = [];
    cleanups.push(async () => {
      await Promise.all(queues.map((q) => q.stop(500)));
      await store.close();
      await dropTestDatabase(dir);
      rmSync(dir, { recursive: true, force: true });
    });
    const opts = { leaseMs: 2000, pollIntervalMs: 20, graceMs: 300 };
    return {
      store,
      queue() {
        const q =
          driver === "graphile"
            ? new GraphileQueue(store.db, systemClock, log, { ...opts, connectionString: config.databaseUrl as string })
            : new TableQueue(store.db, systemClock, log, opts);
        queues.push(q);
        return q;
      },
    };
  }

  /** A handler recording each run; `behave` decides what a run does. */
  function recorder(behave: (run: number, ctx: JobContext) => Promise<undefined | { retryAt: Date }> | undefined) {
    const runs: { payload: Record<string, unknown>; attempt: number; at: number }[] = [];
    const exhausted: unknown[] = [];
    const handler: JobHandler = {
      async run(payload, ctx) {
        runs.push({ payload, attempt: ctx.attempt, at: Date.now() });
        return behave(runs.length, ctx);
      },
      async exhausted(_payload, error) {
        exhausted.push(error);
      },
    };
    return { handler, runs, exhausted };
  }

  async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it("a job added in a rolled-back transaction never runs; a committed one runs once", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const r = recorder(async () => undefined);
    q.start(only({ work: r.handler }, 2));
    await store.db
      .transaction()
      .execute(async (trx) => {
        await q.enqueue(trx, { kind: "work", payload: { n: "rolled back" }, key: "k-rollback" });
        throw new Error("roll back");
      })
      .catch(() => {});
    await store.db
      .transaction()
      .execute((trx) => q.enqueue(trx, { kind: "work", payload: { n: "kept" }, key: "k-kept" }));
    q.notify();
    await until("the committed job", () => r.runs.length === 1);
    await sleep(300);
    expect(r.runs.map((x) => x.payload)).toEqual([{ n: "kept" }]);
  });

  it("a second job with a queued key is a no-op", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const r = recorder(async () => undefined);
    const runAt = new Date(Date.now() + 400);
    await q.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "same", runAt });
    await q.enqueue(store.db, { kind: "work", payload: { n: 2 }, key: "same", runAt });
    q.start(only({ work: r.handler }, 2));
    await until("the job", () => r.runs.length === 1);
    await sleep(600);
    expect(r.runs.map((x) => x.payload)).toEqual([{ n: 1 }]);
  });

  it("retryAt runs the job again later without counting a failure", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const r = recorder(async (run) => (run < 3 ? { retryAt: new Date(Date.now() + 150) } : undefined));
    q.start(only({ work: r.handler }, 1));
    await q.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "poll", maxAttempts: 1 });
    q.notify();
    await until("three runs", () => r.runs.length === 3);
    expect(r.runs.map((x) => x.attempt)).toEqual([1, 1, 1]);
    for (let i = 1; i < 3; i++) {
      expect((r.runs[i]?.at ?? 0) - (r.runs[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(140);
    }
    expect(r.exhausted).toEqual([]);
  });

  it("a failing job is retried with backoff, then handed to exhausted once and dropped", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const r = recorder(async (run) => {
      throw new Error(`failure ${run}`);
    });
    q.start(only({ work: r.handler }, 1));
    await q.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "fails", maxAttempts: 2 });
    q.notify();
    await until("exhausted", () => r.exhausted.length === 1);
    expect(r.runs.map((x) => x.attempt)).toEqual([1, 2]);
    // The first retry waits about a second (±20 %).
    expect((r.runs[1]?.at ?? 0) - (r.runs[0]?.at ?? 0)).toBeGreaterThanOrEqual(750);
    expect((r.exhausted[0] as Error).message).toBe("failure 2");
    await sleep(1500);
    expect(r.runs).toHaveLength(2);
    // The key is free again: a new job with it runs.
    await q.enqueue(store.db, { kind: "work", payload: { n: 2 }, key: "fails", maxAttempts: 1 });
    q.notify();
    await until("the new job", () => r.runs.length === 3);
  });

  it("runNow makes a job waiting under a key due at once", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const r = recorder(async () => undefined);
    q.start(only({ work: r.handler }, 1));
    await q.enqueue(store.db, { kind: "work", payload: {}, key: "later", runAt: new Date(Date.now() + 60_000) });
    await sleep(200);
    expect(r.runs).toHaveLength(0);
    await q.runNow(store.db, "later");
    await until("the job made due", () => r.runs.length === 1);
  });

  it("runNow while the job runs: the retry it then asks for is due at once, and only that one", async () => {
    const { store, queue } = await setup();
    const q = queue();
    let gate: (() => void) | undefined;
    const r = recorder(async (run) => {
      if (run === 1) await new Promise<void>((resolve) => (gate = resolve));
      return { retryAt: new Date(Date.now() + 60_000) };
    });
    q.start(only({ work: r.handler }, 1));
    await q.enqueue(store.db, { kind: "work", payload: {}, key: "busy" });
    q.notify();
    await until("the first run", () => gate !== undefined);
    // The wake comes while the job runs, before it asks to run again in a minute.
    await q.runNow(store.db, "busy");
    gate?.();
    await until("the run the wake made due", () => r.runs.length === 2);
    // The wake was taken: the second run's own retry waits its minute.
    await sleep(500);
    expect(r.runs).toHaveLength(2);
  });

  it.runIf(TEST_STORE === "postgres")(
    "a wake whose transaction commits after the running job put itself back is not lost",
    async () => {
      const { store, queue } = await setup();
      const q = queue();
      let gate: (() => void) | undefined;
      let answered = false;
      const r = recorder(async (run) => {
        if (run === 1) await new Promise<void>((resolve) => (gate = resolve));
        answered = true;
        return { retryAt: new Date(Date.now() + 60_000) };
      });
      q.start(only({ work: r.handler }, 1));
      await q.enqueue(store.db, { kind: "work", payload: {}, key: "racing" });
      q.notify();
      await until("the first run", () => gate !== undefined);
      // The waker's transaction is still open when the job asks to run again: its putting back
      // happens meanwhile (or waits for it), and the wake must reach the job either way.
      await store.db.transaction().execute(async (trx) => {
        await q.runNow(trx, "racing");
        gate?.();
        await until("the first run's answer", () => answered);
        await sleep(200);
      });
      await until("the run the wake made due", () => r.runs.length === 2);
    },
  );

  it("stop hands a running job back: another process runs it, without a failed attempt", async () => {
    const { store, queue } = await setup();
    const first = queue();
    const r = recorder(
      (run, ctx) =>
        new Promise((resolve, reject) => {
          if (run > 1) return resolve(undefined);
          ctx.signal.addEventListener("abort", () => reject(new Error("aborted by shutdown")));
        }),
    );
    first.start(only({ work: r.handler }, 1));
    await first.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "long", maxAttempts: 1 });
    first.notify();
    await until("the first run", () => r.runs.length === 1);
    await first.stop(300);
    const second = queue();
    second.start(only({ work: r.handler }, 1));
    await until("the run in the next process", () => r.runs.length === 2, 10_000);
    expect(r.runs.map((x) => x.attempt)).toEqual([1, 1]);
    expect(r.exhausted).toEqual([]);
  });

  it("a class whose runners are all busy does not delay a job of another class", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const slow = blocking();
    const fast = recorder(async () => undefined);
    await q.start([
      { name: "slow", concurrency: 2, handlers: { slow: slow.handler } },
      { name: "fast", concurrency: 1, handlers: { fast: fast.handler } },
    ]);
    for (let i = 0; i < 4; i++) await q.enqueue(store.db, { kind: "slow", payload: { i }, key: `slow-${i}` });
    q.notify();
    await until("both slow runners busy", () => slow.running >= 2);
    await q.enqueue(store.db, { kind: "fast", payload: {}, key: "fast" });
    q.notify();
    // The slow class's jobs are all still held: the fast one ran on a runner of its own.
    await until("the fast job, while every slow runner is held", () => fast.runs.length === 1, 5000);
    expect(slow.running).toBe(2);
    expect(slow.started).toBe(2);
    slow.releaseAll();
    await until("every slow job", () => slow.finished === 4);
  });

  it("each class runs at most its own concurrency at once", async () => {
    const { store, queue } = await setup();
    const q = queue();
    const a = blocking();
    const b = blocking();
    await q.start([
      { name: "a", concurrency: 2, handlers: { a: a.handler } },
      { name: "b", concurrency: 3, handlers: { b: b.handler } },
    ]);
    for (let i = 0; i < 6; i++) {
      await q.enqueue(store.db, { kind: "a", payload: { i }, key: `a-${i}` });
      await q.enqueue(store.db, { kind: "b", payload: { i }, key: `b-${i}` });
    }
    q.notify();
    await until("five jobs running", () => a.running + b.running >= 5);
    // Time for a runner of the other class (or a spare one) to pick up more, were it allowed to.
    await sleep(400);
    expect([a.running, b.running]).toEqual([2, 3]);
    // Released one at a time, each class drains with its own runners, never above its limit.
    while (a.finished < 6 || b.finished < 6) {
      a.releaseOne();
      b.releaseOne();
      await sleep(30);
    }
    expect([a.maxRunning, b.maxRunning]).toEqual([2, 3]);
  });
});

/** A handler whose runs wait until the test releases them (or a shutdown aborts them). */
function blocking() {
  const waiting: (() => void)[] = [];
  let open = false;
  const state = {
    started: 0,
    running: 0,
    maxRunning: 0,
    finished: 0,
    releaseOne() {
      waiting.shift()?.();
    },
    /** Releases every waiting run, and lets later runs through at once. */
    releaseAll() {
      open = true;
      for (const release of waiting.splice(0)) release();
    },
    handler: {
      run: (_payload: Record<string, unknown>, ctx: JobContext) =>
        new Promise<undefined>((resolve, reject) => {
          state.started++;
          state.running++;
          state.maxRunning = Math.max(state.maxRunning, state.running);
          let settled = false;
          const done = (error?: Error) => {
            if (settled) return;
            settled = true;
            state.running--;
            if (error) return reject(error);
            state.finished++;
            resolve(undefined);
          };
          if (open) return done();
          waiting.push(() => done());
          ctx.signal.addEventListener("abort", () => done(new Error("aborted by shutdown")));
        }),
    } satisfies JobHandler,
  };
  return state;
}

describe.runIf(TEST_STORE === "postgres")("graphile-worker connections", () => {
  it("connections the server closes (restart, admin) are replaced: no crash, jobs still run", async () => {
    const { store, queue, close } = await graphileFixture();
    try {
      const runs: unknown[] = [];
      await queue.start(only({ work: { run: async (p) => void runs.push(p) } }, 2));
      await queue.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "before" });
      await pollFor(() => runs.length === 1);
      // Every other session on this database goes: graphile-worker's idle and LISTEN connections.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()`.execute(store.db);
      await queue.enqueue(store.db, { kind: "work", payload: { n: 2 }, key: "after" });
      await pollFor(() => runs.length === 2, 20_000);
      expect(runs).toEqual([{ n: 1 }, { n: 2 }]);
      // And at shutdown: once stop resolves, nothing of the queue is left to be cut off (a
      // connection still closing then would raise an error nobody listens to).
      await queue.stop(300);
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()`.execute(store.db);
      // A terminated backend takes a moment to leave pg_stat_activity; a connection the queue
      // opened again after stop would stay, and fail this wait.
      const others = async () =>
        (
          await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()`.execute(store.db)
        ).rows[0]?.n;
      await expect.poll(others, { timeout: 5_000, interval: 50 }).toBe(0);
      await sleep(300);
    } finally {
      await close();
    }
  });

  it("a job completion the database cuts off does not stop the class: its workers restart, no job is lost", async () => {
    const { config, store, queue, close } = await graphileFixture({ restartDelayMs: 50 });
    // Ends every other session on the database, over and over, while it runs.
    const killer = new pg.Client({ connectionString: config.databaseUrl as string });
    await killer.connect();
    let storming = false;
    let firstKill: () => void = () => {};
    const killed = new Promise<void>((resolve) => {
      firstKill = resolve;
    });
    const storm = async () => {
      while (storming) {
        await killer.query(`select pg_terminate_backend(pid) from pg_stat_activity
                            where datname = current_database() and pid <> pg_backend_pid()`);
        firstKill();
        await sleep(2);
      }
    };
    try {
      const runs = new Map<number, number>();
      let stormDone: Promise<void> | undefined;
      await queue.start(
        only(
          {
            work: {
              run: async (p) => {
                const n = (p as { n: number }).n;
                runs.set(n, (runs.get(n) ?? 0) + 1);
                // The storm starts before the first job returns, so its completion is what is cut off.
                if (n === 1 && !storming && !stormDone) {
                  storming = true;
                  stormDone = storm();
                  await killed;
                }
                return undefined;
              },
            },
          },
          2,
        ),
      );
      await queue.enqueue(store.db, { kind: "work", payload: { n: 1 }, key: "j1" });
      await pollFor(() => storming);
      await sleep(1500);
      storming = false;
      await stormDone;
      // The class is still (or again) working: new jobs run, and every job ran at least once.
      for (const n of [2, 3]) await queue.enqueue(store.db, { kind: "work", payload: { n }, key: `j${n}` });
      await pollFor(() => runs.has(2) && runs.has(3), 20_000);
      expect(runs.get(1)).toBeGreaterThanOrEqual(1);
      await expect.poll(() => queue.problem(), { timeout: 10_000 }).toBeUndefined();
      // Nothing is left behind: every job completed (a job whose completion was lost ran again).
      const left = async () =>
        (await sql<{ n: number }>`select count(*)::int as n from graphile_worker.jobs`.execute(store.db)).rows[0]?.n;
      await expect.poll(left, { timeout: 10_000, interval: 100 }).toBe(0);
    } finally {
      storming = false;
      await killer.end().catch(() => {});
      await close();
    }
  });

  it("every class's worker pool beats (crash recovery covers each) and stop deregisters them all", async () => {
    const { store, queue, close } = await graphileFixture();
    const pools = () => store.db.selectFrom("queue_pools").select("id").execute();
    try {
      await queue.start([
        { name: "one", concurrency: 1, handlers: { one: { run: async () => undefined } } },
        { name: "two", concurrency: 2, handlers: { two: { run: async () => undefined } } },
      ]);
      const deadline = Date.now() + 10_000;
      while ((await pools()).length < 2 && Date.now() < deadline) await sleep(50);
      expect(await pools()).toHaveLength(2);
      await queue.stop(300);
      expect(await pools()).toHaveLength(0);
    } finally {
      await close();
    }
  });

  it("start rejects when graphile-worker cannot reach its database (the process then exits)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "framegate-queue-"));
    const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)) });
    const store = await openStore(config);
    try {
      const port = await freePort(); // nothing listens there
      const queue = new GraphileQueue(store.db, systemClock, log, {
        connectionString: `postgres://nobody@127.0.0.1:${port}/none`,
        leaseMs: 2000,
        pollIntervalMs: 20,
        graceMs: 100,
      });
      await expect(queue.start(only({ work: { run: async () => undefined } }, 1))).rejects.toThrow();
      await queue.stop(100);
    } finally {
      await store.close();
      await dropTestDatabase(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A GraphileQueue (lease 2 s, polling every 20 ms) on a fresh database; close() stops and drops it all. */
async function graphileFixture(opts: Partial<GraphileQueueOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "framegate-queue-"));
  const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)) });
  const store = await openStore(config);
  const queue = new GraphileQueue(store.db, systemClock, log, {
    connectionString: config.databaseUrl as string,
    leaseMs: 2000,
    pollIntervalMs: 20,
    graceMs: 300,
    ...opts,
  });
  const close = async () => {
    await queue.stop(300);
    await store.close();
    await dropTestDatabase(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  return { config, store, queue, close };
}

/** One class of jobs, as a queue with a single class sees it. */
function only(handlers: Record<string, JobHandler>, concurrency: number): JobClass[] {
  return [{ name: "test", concurrency, handlers }];
}

async function pollFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(20);
  }
}
