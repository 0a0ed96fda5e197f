/**
 * TableQueue's wake-ups: notify wakes only runners of the added jobs' kinds, one per job. With a
 * poll interval far beyond the test's patience, every job below can only start through a wake,
 * so a wake that went to the wrong runner (or none) shows up as a job that never runs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { createLogger } from "../logger.js";
import { openStore } from "../server.js";
import type { StoreHandle } from "../store/db.js";
import { systemClock } from "../util/clock.js";
import type { JobHandler } from "./queue.js";
import { TableQueue } from "./table-queue.js";

const NEVER_MS = 600_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ store: StoreHandle; queue: TableQueue }> {
  const dir = mkdtempSync(join(tmpdir(), "framegate-table-queue-"));
  const store = await openStore(loadConfig({ DATA_DIR: dir, LOG_LEVEL: "silent" }));
  const queue = new TableQueue(store.db, systemClock, createLogger("silent"), {
    leaseMs: 5000,
    pollIntervalMs: NEVER_MS,
  });
  cleanups.push(async () => {
    await queue.stop(500);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, queue };
}

/** A handler that holds each job until released, so runners stay busy while the test looks. */
function holder() {
  const started: string[] = [];
  let release: () => void = () => {};
  let released = new Promise<void>((r) => {
    release = r;
  });
  const handler: JobHandler = {
    async run(payload) {
      started.push(String(payload.n));
      await released;
      return undefined;
    },
  };
  return {
    handler,
    started,
    releaseAll() {
      release();
      released = Promise.resolve();
    },
  };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Lets every runner finish its first (empty) claim and go idle. */
const settle = () => new Promise((r) => setTimeout(r, 200));

describe("TableQueue wake-ups", () => {
  it("jobs added together each wake a runner of their own class, with the other class idle too", async () => {
    const { store, queue } = await setup();
    const gen = holder();
    const hook = holder();
    queue.start([
      { name: "generation", concurrency: 4, handlers: { "gen.a": gen.handler, "gen.b": gen.handler } },
      { name: "webhook", concurrency: 3, handlers: { "hook.deliver": hook.handler } },
    ]);
    await settle();

    // Four jobs of one class in one transaction, one notify: four runners must start.
    await store.db.transaction().execute(async (trx) => {
      for (const n of [1, 2, 3]) await queue.enqueue(trx, { kind: "gen.a", payload: { n } });
      await queue.enqueue(trx, { kind: "gen.b", payload: { n: 4 } });
    });
    queue.notify();
    await until("four generation jobs", () => gen.started.length === 4);
    expect(hook.started).toEqual([]);

    // The other class's runners were left idle, not used up: a delivery still starts at once.
    await queue.enqueue(store.db, { kind: "hook.deliver", payload: { n: "h1" } });
    queue.notify();
    await until("the delivery", () => hook.started.length === 1);

    // A job of a busy class waits for a runner of that class, then runs when one frees up.
    await queue.enqueue(store.db, { kind: "gen.a", payload: { n: 5 } });
    queue.notify();
    gen.releaseAll();
    await until("the fifth generation job", () => gen.started.length === 5);
    hook.releaseAll();
  });

  it("runNow wakes an idle runner of the job's kind", async () => {
    const { store, queue } = await setup();
    const gen = holder();
    gen.releaseAll();
    queue.start([{ name: "generation", concurrency: 2, handlers: { "gen.a": gen.handler } }]);
    await queue.enqueue(store.db, {
      kind: "gen.a",
      payload: { n: "later" },
      key: "k",
      runAt: new Date(Date.now() + NEVER_MS),
    });
    await settle();
    await queue.runNow(store.db, "k");
    await until("the job made due", () => gen.started.length === 1);
    expect(gen.started).toEqual(["later"]);
  });

  it("runNow leaves an idle job that is already due as it is: no write", async () => {
    const { store, queue } = await setup();
    const due = new Date(Date.now() - 1000).toISOString();
    // No runner started: the job stays idle and due.
    await queue.enqueue(store.db, { kind: "gen.a", payload: {}, key: "due", runAt: new Date(due) });
    const changes = async () => (await sql<{ n: number }>`select total_changes() as n`.execute(store.db)).rows[0]?.n;
    const before = await changes();
    await queue.runNow(store.db, "due");
    expect(await changes()).toBe(before);
    const row = await store.db
      .selectFrom("jobs")
      .select(["run_at", "woken"])
      .where("job_key", "=", "due")
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ run_at: due, woken: 0 });
    // A job put off until later is still made due.
    await queue.enqueue(store.db, { kind: "gen.a", payload: {}, key: "later", runAt: new Date(Date.now() + NEVER_MS) });
    await queue.runNow(store.db, "later");
    const later = await store.db
      .selectFrom("jobs")
      .select("run_at")
      .where("job_key", "=", "later")
      .executeTakeFirstOrThrow();
    expect(Date.parse(later.run_at)).toBeLessThanOrEqual(Date.now());
  });

  it("a job put off until later (a future run_at, a retry) wakes a runner when it comes due, without polling", async () => {
    const { store, queue } = await setup();
    const runs: string[] = [];
    const handler: JobHandler = {
      async run(payload, ctx) {
        runs.push(`${payload.n}#${ctx.attempt}`);
        // The first run asks to run again shortly, as a poll that is not ready does.
        if (runs.length === 1) return { retryAt: new Date(Date.now() + 100) };
        return undefined;
      },
    };
    queue.start([{ name: "generation", concurrency: 2, handlers: { "gen.a": handler } }]);
    await settle();
    await queue.enqueue(store.db, { kind: "gen.a", payload: { n: "soon" }, runAt: new Date(Date.now() + 100) });
    queue.notify();
    // The poll interval is ten minutes: only the due-time wakes can run it, then rerun it.
    await until("the job and its retry", () => runs.length === 2);
    expect(runs).toEqual(["soon#1", "soon#1"]);
  });

  it("jobs added by another process are found by the poll, not by notify", async () => {
    // Two queues on one store play two processes: the second one's enqueue cannot notify the first.
    const { store, queue } = await setup();
    const other = new TableQueue(store.db, systemClock, createLogger("silent"), { leaseMs: 5000, pollIntervalMs: 50 });
    const gen = holder();
    gen.releaseAll();
    other.start([{ name: "generation", concurrency: 1, handlers: { "gen.a": gen.handler } }]);
    cleanups.push(() => other.stop(500));
    await queue.enqueue(store.db, { kind: "gen.a", payload: { n: "from elsewhere" } });
    queue.notify();
    await until("the job", () => gen.started.length === 1);
  });
});
