/**
 * The queue on graphile-worker (PostgreSQL only), for deployments with several worker
 * processes. Jobs are added with `graphile_worker.add_job` on the caller's executor, so a job
 * commits or rolls back with the rows it belongs to, and graphile-worker's LISTEN/NOTIFY wakes
 * an idle worker the moment the transaction commits.
 *
 * The Queue contract is kept exactly, on top of graphile-worker's primitives:
 * - Every job has a key. Adding a job whose key is already queued or running is a no-op
 *   (job_key_mode `unsafe_dedupe`), as in the table queue.
 * - A handler asking to run later, a failed attempt and a job interrupted by shutdown are all
 *   handled the same way: the running job adds its own successor under the same key
 *   (`replace` mode: graphile-worker takes the key off the running row and marks that row
 *   as not retryable), then completes. The successor carries the failure count, so retries,
 *   backoff and the `exhausted` hook behave as in the table queue. Times are relative
 *   ("in 5 s"), so they use PostgreSQL's clock.
 * - Crash recovery: graphile-worker only frees the jobs of a dead process after 4 hours. Each
 *   pool keeps a heartbeat row in `queue_pools`; any live pool releases
 *   (`force_unlock_workers`) the jobs of pools whose heartbeat is older than the lease, and of
 *   pools that never registered, so a killed worker's tasks resume within JOB_LEASE_SECONDS.
 * - Job classes: each class is one graphile-worker `run()` with its own task list (only that
 *   class's kinds) and concurrency, hence its own worker pool id; every one of them beats, and
 *   stop releases what each left locked. They share one connection pool.
 */
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { type JobHelpers, Logger, type Runner, run, runMigrations, type Task } from "graphile-worker";
import { sql } from "kysely";
import pg from "pg";
import type { Logger as Pino } from "pino";
import { type Db, type Executor, withPgMigrationLock } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import {
  type AddJobArgs,
  DEFAULT_MAX_ATTEMPTS,
  type JobClass,
  type JobHandler,
  type NewJob,
  type Queue,
  retryDelayMs,
  runnableClasses,
} from "./queue.js";

export interface GraphileQueueOptions {
  connectionString: string;
  /** A pool whose heartbeat is older than this is dead: its jobs are released. */
  leaseMs: number;
  /** How often idle workers look for jobs that became due (new jobs arrive by NOTIFY). */
  pollIntervalMs: number;
  /** On stop, running jobs get this long to finish before they are aborted and handed back. */
  graceMs: number;
  /** How long graphile-worker waits for a PostgreSQL connection. */
  connectTimeoutMs?: number;
  backoffMs?: (attempt: number) => number;
  /** A class whose worker pool stopped on its own is started again after this (doubling, to 30 s). */
  restartDelayMs?: number;
}

/** What is stored as graphile-worker's payload: ours, plus the attempts already failed. */
interface Envelope {
  p: Record<string, unknown>;
  /** Failed attempts of earlier rows of this job. */
  f: number;
  /** Our attempt budget (graphile-worker's own max_attempts only bounds crash loops). */
  m: number;
}

/** graphile-worker's max_attempts: a row is retried by graphile-worker only after a crash. */
const CRASH_RETRIES = 25;
/** After an exhausted hook failed, the job is tried again this much later. */
const EXHAUSTED_HOOK_RETRY_MS = 60_000;

/** Creates or updates graphile-worker's schema; concurrent callers run it one at a time. */
export async function migrateGraphileWorker(pool: pg.Pool): Promise<void> {
  // graphile-worker's migrations take no lock of their own: the shared migration lock keeps
  // processes starting together on a fresh database from racing to create the schema.
  await withPgMigrationLock(pool, () => runMigrations({ pgPool: pool, logger: silentLogger() }));
}

export class GraphileQueue implements Queue {
  private runners: Runner[] = [];
  private starting: Promise<void> | undefined;
  /** The worker pool id of each run() (one per job class): the ids that lock our jobs. */
  private readonly poolIds = new Set<string>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** notify() calls not yet sent as a NOTIFY, and whether one is being sent. */
  private wakesOwed = 0;
  private waking = false;
  /** Why a class's worker pool is down (it stopped on its own and is not running again yet). */
  private readonly failures = new Map<string, string>();
  private pool: pg.Pool | undefined;
  /** Set by stop(): a class that stops then is not started again. */
  private stopping = new AbortController();
  /** Restarts under way (stop waits for them). */
  private readonly restarts = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Pino,
    private readonly opts: GraphileQueueOptions,
  ) {}

  async enqueue(db: Executor, job: NewJob): Promise<void> {
    const args = this.addJobArgs(job);
    await addJob(db, args.kind, args.payload, args.key, args.delayMs, args.keyMode);
  }

  addJobArgs(job: NewJob): AddJobArgs {
    const delayMs = job.runAt ? job.runAt.getTime() - this.clock.now().getTime() : 0;
    const envelope: Envelope = { p: job.payload, f: 0, m: job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS };
    return {
      kind: job.kind,
      payload: JSON.stringify(envelope),
      key: job.key ?? `once:${newId("job")}`,
      maxAttempts: CRASH_RETRIES,
      keyMode: "unsafe_dedupe",
      delayMs: Math.max(0, Math.round(delayMs)),
    };
  }

  async runNow(db: Executor, key: string): Promise<void> {
    // Reschedules the job, or marks it when it is running so that the retry it asks for comes at
    // once (graphile-worker's reschedule_jobs skips locked jobs): see store/pg-queue-wakes.sql.ts.
    await sql`select framegate_run_now(${key})`.execute(db);
  }

  /**
   * Wakes idle workers in every process for jobs added without NOTIFY (a create's submit job, see
   * store/pg-create-quiet.sql.ts). Jobs added by add_job notified at their commit already. One
   * NOTIFY at a time: calls made meanwhile are sent together as the next one, so a burst of
   * creates costs a few notifies, not one each (NOTIFY takes a lock per database at commit).
   */
  notify(): void {
    this.wakesOwed++;
    if (!this.waking) void this.sendWakes();
  }

  private async sendWakes(): Promise<void> {
    this.waking = true;
    try {
      while (this.wakesOwed > 0) {
        const count = this.wakesOwed;
        this.wakesOwed = 0;
        try {
          await sql`select pg_notify('jobs:insert', ${JSON.stringify({ count })})`.execute(this.db);
        } catch (error) {
          // The jobs are committed: workers still find them when they next poll.
          this.log.warn({ err: error }, "could not wake the workers for new jobs");
        }
      }
    } finally {
      this.waking = false;
    }
  }

  start(classes: JobClass[]): Promise<void> {
    this.stopping = new AbortController();
    const runnable = runnableClasses(classes);
    // One pool for every class: per run(), one LISTEN connection and one for fetching and
    // completing jobs, plus up to `concurrency` completions at once (handlers use the store's
    // own pool, not this one).
    const size = runnable.reduce((sum, c) => sum + c.concurrency + 2, 0);
    this.pool = ownPool(this.opts.connectionString, Math.max(1, size), this.opts.connectTimeoutMs, this.log);
    const pool = this.pool;
    // One class after the other: each run() checks graphile-worker's schema as it starts.
    this.starting = (async () => {
      for (const jobClass of runnable) this.runners.push(await this.runClass(jobClass, pool));
      // Running, checking a connection out of a full pool waits for one to be returned, as in the
      // pool graphile-worker makes itself: its job completions are promises nobody awaits, so a
      // checkout that timed out (a burst of completions while every connection was busy, seen
      // under load) was an unhandled rejection that takes the process down. Only start-up keeps
      // the connect timeout, so an unreachable database still fails the start.
      pool.options.connectionTimeoutMillis = 0;
    })();
    this.heartbeat = setInterval(() => void this.beat(), Math.max(50, Math.floor(this.opts.leaseMs / 3)));
    this.heartbeat.unref();
    return this.starting;
  }

  private async runClass(jobClass: JobClass, pool: pg.Pool): Promise<Runner> {
    const taskList: Record<string, Task> = {};
    for (const [kind, handler] of Object.entries(jobClass.handlers)) {
      taskList[kind] = (payload, helpers) => this.runJob(kind, handler, payload as unknown as Envelope, helpers);
    }
    const events = new EventEmitter();
    let poolId: string | undefined;
    events.on("pool:create", ({ workerPool }: { workerPool: { id: string } }) => {
      poolId = workerPool.id;
      this.poolIds.add(poolId);
      void this.beat();
    });
    const runner = await run({
      pgPool: pool,
      concurrency: jobClass.concurrency,
      pollInterval: this.opts.pollIntervalMs,
      gracefulShutdownAbortTimeout: this.opts.graceMs,
      noHandleSignals: true,
      parsedCronItems: [],
      taskList,
      events,
      logger: graphileLogger(this.log.child({ jobClass: jobClass.name })),
      // Completions go through graphile-worker's batcher (with no delay), which is flushed by
      // stop() before the pool ends; unbatched, a completion is a promise nobody awaits, and a
      // failed one is an unhandled rejection that takes the process down. A batch that fails
      // (0.17's batcher does not retry) shuts the class's pool down: see classStopped.
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    });
    runner.promise.then(
      () => this.classStopped(jobClass, runner, poolId, undefined),
      (error: Error) => this.classStopped(jobClass, runner, poolId, error),
    );
    return runner;
  }

  /**
   * A class's worker pool that stops while the queue runs (graphile-worker shuts a pool down
   * when it cannot write a job's completion, e.g. the database cut the connection) is started
   * again, after restartDelayMs doubling up to 30 s, until it runs or the queue stops. Its jobs
   * are released first: its workers have all finished by now, and a job whose completion was
   * lost runs again (handlers are at-least-once). Until it runs, problem() says so (/readyz).
   */
  private classStopped(jobClass: JobClass, runner: Runner, poolId: string | undefined, error: Error | undefined) {
    if (this.stopping.signal.aborted) return;
    this.runners = this.runners.filter((r) => r !== runner);
    const reason = error?.message ?? "it stopped";
    this.failures.set(jobClass.name, `graphile-worker (${jobClass.name} jobs) stopped: ${reason}`);
    this.log.error({ err: error, jobClass: jobClass.name }, "graphile-worker stopped; starting it again");
    const restart = this.restartClass(jobClass, poolId).finally(() => this.restarts.delete(restart));
    this.restarts.add(restart);
  }

  private async restartClass(jobClass: JobClass, deadPoolId: string | undefined): Promise<void> {
    const signal = this.stopping.signal;
    for (let attempt = 0; ; attempt++) {
      const delay = Math.min(30_000, (this.opts.restartDelayMs ?? 1000) * 2 ** attempt);
      // Ends early (rejects) when the queue stops.
      await sleep(delay, undefined, { signal }).catch(() => {});
      const pool = this.pool;
      if (signal.aborted || !pool) return;
      try {
        if (deadPoolId) {
          await this.releasePools([deadPoolId]);
          this.poolIds.delete(deadPoolId);
          deadPoolId = undefined;
        }
        const runner = await this.runClass(jobClass, pool);
        if (signal.aborted) {
          await runner.stop().catch(() => {});
          return;
        }
        this.runners.push(runner);
        this.failures.delete(jobClass.name);
        this.log.info({ jobClass: jobClass.name, attempt: attempt + 1 }, "graphile-worker started again");
        return;
      } catch (error) {
        this.log.warn({ err: error, jobClass: jobClass.name }, "could not start graphile-worker again; retrying");
      }
    }
  }

  problem(): string | undefined {
    return this.failures.values().next().value;
  }

  async stop(_graceMs: number): Promise<void> {
    this.stopping.abort();
    clearInterval(this.heartbeat);
    await this.starting?.catch(() => {});
    await Promise.all(this.restarts);
    // Waits for running jobs; after graceMs their abort signal fires and runJob hands them back.
    await Promise.all(
      this.runners.map((runner) =>
        runner.stop().catch((error) => this.log.warn({ err: error }, "graphile-worker shutdown")),
      ),
    );
    this.runners = [];
    await this.pool?.end().catch(() => {});
    this.pool = undefined;
    const poolIds = [...this.poolIds];
    this.poolIds.clear();
    if (poolIds.length === 0) return;
    // Whatever graphile-worker's shutdown left locked by these pools (a job fetched as it
    // stopped, a completion it could not write) is released now rather than when the heartbeat
    // goes stale; replaced rows are removed.
    try {
      await this.releasePools(poolIds);
    } catch (error) {
      this.log.warn({ err: error }, "could not release this process's worker pools' jobs at shutdown");
    }
  }

  /** Frees what these (stopped) pools left locked, removes replaced rows, and their heartbeats. */
  private async releasePools(poolIds: string[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await sql`select ${sql.raw(SCHEMA)}.force_unlock_workers(${poolIds}::text[])`.execute(trx);
      await removeReplaced(trx);
      await trx.deleteFrom("queue_pools").where("id", "in", poolIds).execute();
    });
  }

  private async runJob(kind: string, handler: JobHandler, envelope: Envelope, helpers: JobHelpers): Promise<void> {
    const { job, abortSignal: signal } = helpers;
    const key = job.key ?? `once:${newId("job")}`;
    const attempt = envelope.f + job.attempts;
    // The successor under the same key (graphile-worker's `replace`); `wakeable`: a wake that came
    // while this attempt ran (runNow) makes it due at once.
    const again = (delayMs: number, failures: number, wakeable = false) =>
      sql`select framegate_requeue(${kind}, ${JSON.stringify({ ...envelope, f: failures })}::json, ${key},
        ${Math.max(0, Math.round(delayMs))}, ${CRASH_RETRIES}, ${wakeable})`.execute(this.db);
    try {
      const result = await handler.run(envelope.p, { jobId: String(job.id), attempt, signal });
      // Not ready yet (a poll, a webhook retry): not a failure, the count stays.
      if (result?.retryAt) await again(result.retryAt.getTime() - this.clock.now().getTime(), attempt - 1, true);
      return;
    } catch (error) {
      if (signal.aborted) {
        // Shutdown interrupted the job: hand it back untouched for the next process.
        await again(0, attempt - 1);
        return;
      }
      if (attempt >= envelope.m) {
        this.log.error({ jobId: job.id, kind, err: error }, "job exhausted its attempts");
        try {
          await handler.exhausted?.(envelope.p, error);
        } catch (hookError) {
          this.log.error({ jobId: job.id, err: hookError }, "exhausted hook failed; job kept for retry");
          await again(EXHAUSTED_HOOK_RETRY_MS, attempt - 1);
        }
        return;
      }
      const delayMs = retryDelayMs(attempt, this.opts.backoffMs);
      this.log.warn({ jobId: job.id, kind, attempt, delayMs, err: error }, "job failed");
      await again(delayMs, attempt);
    }
  }

  /** Refreshes our pools' heartbeats and releases the jobs of pools that stopped beating. */
  private async beat(): Promise<void> {
    const poolIds = [...this.poolIds];
    if (poolIds.length === 0) return;
    const nowMs = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto("queue_pools")
          .values(poolIds.map((id) => ({ id, heartbeat_ms: nowMs })))
          .onConflict((oc) => oc.column("id").doUpdateSet({ heartbeat_ms: nowMs }))
          .execute();
        await trx
          .deleteFrom("queue_pools")
          .where("heartbeat_ms", "<", sql<number>`${nowMs} - ${this.opts.leaseMs}`)
          .execute();
        const released = await sql<{ locked_by: string }>`
          select distinct locked_by from ${sql.raw(SCHEMA)}.jobs
          where locked_by is not null
            and locked_at < now() - ${this.opts.leaseMs} * interval '1 millisecond'
            and locked_by not in (select id from queue_pools)`.execute(trx);
        const dead = released.rows.map((r) => r.locked_by);
        if (dead.length > 0) {
          await sql`select ${sql.raw(SCHEMA)}.force_unlock_workers(${dead}::text[])`.execute(trx);
          this.log.warn({ pools: dead }, "released the jobs of worker pools that stopped (crashed or killed)");
        }
        await removeReplaced(trx);
      });
    } catch (error) {
      this.log.warn({ err: error }, "queue heartbeat failed");
    }
  }
}

const SCHEMA = "graphile_worker";

/**
 * graphile-worker's connections, in a pool we own: its own pool drops its error listeners as it
 * ends, so a connection the server closes at that moment (a restart, a dropped database) raised
 * an uncaught error and took the process down. Errors are logged (by code) and pg replaces the
 * connection; the pool is ended after graphile-worker has stopped.
 */
function ownPool(connectionString: string, max: number, connectTimeoutMs: number | undefined, log: Pino): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: connectTimeoutMs ?? 10_000 });
  const report = (error: Error & { code?: string }) =>
    log.warn({ reason: error.code ?? error.name }, "graphile-worker database connection lost");
  pool.on("error", report);
  pool.on("connect", (client) => client.on("error", report));
  return pool;
}

/**
 * A job replaced by its successor (runJob's `again`) that then did not complete (killed, or a
 * shutdown) stays behind unkeyed and out of attempts: graphile-worker keeps such rows for
 * inspection, but it never runs again, and our jobs always have a key, so it is removed. Also
 * drops wake marks (queue_wakes) that no running job will take.
 */
async function removeReplaced(db: Executor): Promise<void> {
  await sql`
    select ${sql.raw(SCHEMA)}.complete_jobs(array(
      select id from ${sql.raw(SCHEMA)}.jobs
      where key is null and attempts >= max_attempts and locked_at is null
    ))`.execute(db);
  // A wake left for a running job that then completed (or was released after a crash, when it
  // runs at once anyway) is never taken: only wakes of jobs still running are kept.
  await sql`
    delete from queue_wakes w where not exists (
      select 1 from ${sql.raw(SCHEMA)}.jobs j where j.key = w.job_key and j.locked_at is not null
    )`.execute(db);
}

function addJob(
  db: Executor,
  kind: string,
  envelope: Envelope | string,
  key: string,
  delayMs: number,
  mode: "replace" | "unsafe_dedupe",
): Promise<unknown> {
  return sql`
    select ${sql.raw(SCHEMA)}.add_job(
      ${kind},
      ${typeof envelope === "string" ? envelope : JSON.stringify(envelope)}::json,
      run_at => clock_timestamp() + ${Math.max(0, Math.round(delayMs))} * interval '1 millisecond',
      max_attempts => ${CRASH_RETRIES},
      job_key => ${key},
      job_key_mode => ${mode}
    )`.execute(db);
}

/** graphile-worker's log lines into ours; its per-job "info" lines are debug detail here. */
function graphileLogger(log: Pino): Logger {
  return new Logger((scope) => (level, message, meta) => {
    const fields = { component: "graphile-worker", workerId: scope.workerId, jobId: scope.jobId, ...meta };
    if (level === "error") log.error(fields, message);
    else if (level === "warning") log.warn(fields, message);
    else log.debug(fields, message);
  });
}

function silentLogger(): Logger {
  return new Logger(() => () => {});
}
