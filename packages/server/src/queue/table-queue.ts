/**
 * A durable queue in the `jobs` table, written with portable Kysely queries. A runner claims a
 * due job by setting a lease (locked_by, locked_until) in one atomic update; while
 * the handler runs, the lease is extended. A process that dies leaves its lease to expire, and
 * then any runner claims the job again: that is how tasks resume after a crash.
 *
 * Each job class has its own runner loops, whose claim selects only that class's kinds: a class
 * whose jobs all hang (deliveries to a dead host) leaves the other classes' runners free.
 */
import type { Logger } from "pino";
import type { Db, Executor } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { PreparedQuery } from "../store/prepared.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId, randomBase62 } from "../util/ids.js";
import {
  DEFAULT_MAX_ATTEMPTS,
  type JobClass,
  type JobHandler,
  type NewJob,
  type Queue,
  retryDelayMs,
  runnableClasses,
} from "./queue.js";

export interface TableQueueOptions {
  leaseMs: number;
  pollIntervalMs: number;
  /** Backoff after a failed attempt n (1-based), before jitter. */
  backoffMs?: (attempt: number) => number;
}

/** An idle runner: the job kinds it claims, and how to wake it. */
interface IdleRunner {
  kinds: ReadonlySet<string>;
  wake: () => void;
}

export class TableQueue implements Queue {
  private readonly workerId = `w_${randomBase62(10)}`;
  private runners: Promise<void>[] = [];
  private stopping = false;
  private idleRunners: IdleRunner[] = [];
  /** Jobs added by this process since the last notify, by kind: notify wakes that many runners. */
  private added = new Map<string, number>();
  /**
   * Wakes that found no idle runner of their kind, per kind: every such runner was busy, and one
   * that is claiming right now may have looked before the job was there. The next runner of the
   * kind whose claim finds nothing looks once more instead of going to sleep. (Counting every
   * notify instead kept idle runners claiming in a loop for as long as jobs kept coming.)
   */
  private readonly missedWakes = new Map<string, number>();
  private readonly running = new Map<string, AbortController>();
  /** Pending wakes for jobs this process put off until later (wakeWhenDue). */
  private readonly dueTimers = new Set<NodeJS.Timeout>();
  /** Each class's claim, compiled once (claimQuery). */
  private readonly claimQueries = new Map<string, ReturnType<typeof claimQuery>>();
  /** Keys of jobs running here that runNow marked: their retry is due at once (runOne). */
  private readonly wokenWhileRunning = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: TableQueueOptions,
  ) {}

  async enqueue(db: Executor, job: NewJob): Promise<void> {
    const now = this.clock.now();
    await enqueueQuery.execute(
      db,
      newId("job"),
      job.kind,
      job.key ?? null,
      JSON.stringify(job.payload),
      (job.runAt ?? now).toISOString(),
      job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      now.toISOString(),
    );
    if (job.runAt && job.runAt.getTime() > now.getTime()) this.wakeWhenDue(job.kind, job.runAt);
    else this.added.set(job.kind, (this.added.get(job.kind) ?? 0) + 1);
  }

  async runNow(db: Executor, key: string): Promise<void> {
    // A running job is marked instead (its release then makes the retry it asks for due now): the
    // wake is not lost when it comes between the handler deciding to wait and the release. One
    // statement, so on PostgreSQL a release committing meanwhile is seen (the row lock makes the
    // update re-read the row) rather than each half missing the other.
    // A job that is idle and due already is left alone: nothing to write, and no runner to wake
    // for it beyond the one its own arrival woke (fair share wakes the next waiting task on every
    // finish, and under a backlog that task's submit is mostly just due, not put off).
    const woken = await runNowQuery.execute(db, this.clock.now().toISOString(), key);
    // One runner of the job's kind, as for an added job: waking every idle runner for each wake
    // (fair share's, a freed webhook slot's) made each cost dozens of empty claims. A job running
    // here gets its runner woken when it puts itself back (runOne).
    for (const job of woken) {
      if (job.locked_by === this.workerId) this.wokenWhileRunning.add(key);
      else if (job.locked_by === null) this.added.set(job.kind, (this.added.get(job.kind) ?? 0) + 1);
    }
    this.notify();
  }

  /**
   * Wakes one idle runner per job added (or woken by runNow) since the last call, among the
   * runners that claim its kind: waking every runner for every job made each job cost dozens of
   * empty claims (the other class's runners, and the runners that lost the race). A runner that
   * is busy now claims again when it finishes anyway; jobs due later wake a runner when they come
   * due (wakeWhenDue). Nothing recorded: nothing to wake.
   */
  notify(): void {
    const added = this.added;
    this.added = new Map();
    if (added.size === 0) return;
    const stillIdle: IdleRunner[] = [];
    for (const runner of this.idleRunners) {
      const kind = [...runner.kinds].find((k) => (added.get(k) ?? 0) > 0);
      if (kind === undefined) {
        stillIdle.push(runner);
        continue;
      }
      added.set(kind, (added.get(kind) ?? 0) - 1);
      runner.wake();
    }
    this.idleRunners = stillIdle;
    for (const [kind, n] of added) if (n > 0) this.missedWakes.set(kind, (this.missedWakes.get(kind) ?? 0) + n);
  }

  /**
   * Wakes one idle runner of `kind` when a job this process scheduled for later (a poll that is not
   * ready, a retry, a delivery waiting for a slot) comes due. Without it such a job waited for some
   * runner's poll interval on top of its delay, or the interval had to be short, which made every
   * idle runner claim (a write) many times a second for nothing. Jobs put off by other processes
   * are still found by polling. A wake for a job that is gone costs one empty claim.
   */
  private wakeWhenDue(kind: string, runAt: Date): void {
    if (this.stopping) return;
    const timer = setTimeout(
      () => {
        this.dueTimers.delete(timer);
        this.wakeOne(kind);
      },
      Math.max(0, runAt.getTime() - this.clock.now().getTime()),
    );
    timer.unref();
    this.dueTimers.add(timer);
  }

  private wakeOne(kind: string): void {
    this.added.set(kind, (this.added.get(kind) ?? 0) + 1);
    this.notify();
  }

  start(classes: JobClass[]): void {
    this.stopping = false;
    for (const jobClass of runnableClasses(classes)) {
      for (let i = 0; i < jobClass.concurrency; i++) this.runners.push(this.runLoop(jobClass.handlers));
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const timer of this.dueTimers) clearTimeout(timer);
    this.dueTimers.clear();
    for (const runner of this.idleRunners.splice(0)) runner.wake();
    const all = Promise.all(this.runners);
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
    ]);
    if (timedOut) {
      for (const controller of this.running.values()) controller.abort();
      await all;
    }
    this.runners = [];
  }

  private async runLoop(handlers: Record<string, JobHandler>): Promise<void> {
    const kinds = Object.keys(handlers);
    const kindSet = new Set(kinds);
    // A wake that found every runner of these kinds busy: this one, back from an empty claim, looks again.
    const takeMissedWake = () => {
      let missed = false;
      for (const kind of kinds) missed = this.missedWakes.delete(kind) || missed;
      return missed;
    };
    // A job this runner finished, whose row is deleted in the transaction of the next claim: one
    // commit per job instead of two. Until then the lease still holds it, so nobody else runs it.
    let done: string | undefined;
    while (!this.stopping) {
      let claimed = false;
      try {
        const outcome = await this.runOne(handlers, kinds, done);
        done = undefined;
        claimed = outcome.claimed;
        done = outcome.done;
      } catch (error) {
        this.log.error({ err: error }, "queue runner error");
      }
      if (!claimed && !this.stopping && !takeMissedWake()) await this.idle(kindSet);
    }
    if (done !== undefined) {
      await completeQuery
        .execute(this.db, done, this.workerId)
        .catch((error) => this.log.error({ err: error, jobId: done }, "could not complete a finished job"));
    }
  }

  /** Waits for a notify meant for this runner, or the poll interval (jobs added by other processes). */
  private idle(kinds: ReadonlySet<string>): Promise<void> {
    return new Promise((resolve) => {
      const runner: IdleRunner = { kinds, wake: done };
      const timer = setTimeout(() => {
        this.idleRunners = this.idleRunners.filter((r) => r !== runner);
        resolve();
      }, this.opts.pollIntervalMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.idleRunners.push(runner);
    });
  }

  /**
   * Claims one due job of `kinds` (one class), if any, in one statement: the oldest such due job
   * whose lease is free gets ours. On PostgreSQL the candidate row is locked, and rows other runners are claiming right
   * now are skipped rather than waited for; SQLite runs the statement under its write lock.
   */
  private async claim(kinds: string[], done: string | undefined) {
    const now = this.clock.now();
    const key = kinds.join("\n");
    let query = this.claimQueries.get(key);
    if (!query) {
      query = claimQuery(kinds.length);
      this.claimQueries.set(key, query);
    }
    const claim = (db: Executor) =>
      query.first(db, this.workerId, addMs(now, this.opts.leaseMs).toISOString(), now.toISOString(), ...kinds);
    if (done === undefined) return claim(this.db);
    return writeTransaction(this.db, async (trx) => {
      await completeQuery.execute(trx, done, this.workerId);
      return claim(trx);
    });
  }

  /**
   * Completes `done` (the runner's last job) and claims the next due job, if any, and runs it.
   * Returns whether a job was claimed, and the job to complete with the next claim.
   */
  private async runOne(
    handlers: Record<string, JobHandler>,
    kinds: string[],
    done: string | undefined,
  ): Promise<{ claimed: boolean; done?: string }> {
    const job = await this.claim(kinds, done);
    if (!job) return { claimed: false };
    const handler = handlers[job.kind];
    if (!handler) return { claimed: true };
    const controller = new AbortController();
    this.running.set(job.id, controller);
    const heartbeat = setInterval(() => void this.extendLease(job.id), Math.max(50, this.opts.leaseMs / 3));
    const payload = JSON.parse(job.payload) as Record<string, unknown>;
    let finished = false;
    try {
      const result = await handler.run(payload, { jobId: job.id, attempt: job.attempts, signal: controller.signal });
      if (result?.retryAt) {
        // A poll that is not ready yet is not a failure: it keeps its attempt count. A wake
        // (runNow) that came while it ran makes it due now instead.
        await this.release(job.id, { run_at: result.retryAt.toISOString(), attempts: job.attempts - 1 }, true);
        if (job.job_key !== null && this.wokenWhileRunning.delete(job.job_key)) this.wakeOne(job.kind);
        else this.wakeWhenDue(job.kind, result.retryAt);
      } else {
        finished = true;
      }
    } catch (error) {
      await this.failed(job, handler, payload, error, controller.signal.aborted);
    } finally {
      // The lease is no longer extended: the row is deleted with the next claim, well within it.
      clearInterval(heartbeat);
      this.running.delete(job.id);
      if (job.job_key !== null) this.wokenWhileRunning.delete(job.job_key);
    }
    return finished ? { claimed: true, done: job.id } : { claimed: true };
  }

  private async failed(
    job: { id: string; kind: string; attempts: number; max_attempts: number },
    handler: JobHandler,
    payload: Record<string, unknown>,
    error: unknown,
    aborted: boolean,
  ): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    if (aborted) {
      // Shutdown interrupted the job: hand it back untouched for the next process.
      await this.release(job.id, { run_at: this.clock.now().toISOString(), attempts: job.attempts - 1 });
      return;
    }
    if (job.attempts >= job.max_attempts) {
      this.log.error({ jobId: job.id, kind: job.kind, err: error }, "job exhausted its attempts");
      try {
        await handler.exhausted?.(payload, error);
        await this.db.deleteFrom("jobs").where("id", "=", job.id).execute();
      } catch (hookError) {
        this.log.error({ jobId: job.id, err: hookError }, "exhausted hook failed; job kept for retry");
        await this.release(job.id, { run_at: addMs(this.clock.now(), 60_000).toISOString(), last_error: message });
      }
      return;
    }
    const delay = retryDelayMs(job.attempts, this.opts.backoffMs);
    this.log.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts, delayMs: delay, err: error }, "job failed");
    const retryAt = addMs(this.clock.now(), delay);
    await this.release(job.id, { run_at: retryAt.toISOString(), last_error: message });
    this.wakeWhenDue(job.kind, retryAt);
  }

  /** Hands a claimed job back; `wakeable`: a wake marked while it ran (runNow) makes it due now. */
  private async release(
    jobId: string,
    changes: { run_at: string; attempts?: number; last_error?: string },
    wakeable = false,
  ): Promise<void> {
    const now = this.clock.now().toISOString();
    if (wakeable && changes.attempts !== undefined && changes.last_error === undefined) {
      // The common release (a job that asked to run later), compiled once.
      await releaseWakeableQuery.execute(this.db, jobId, this.workerId, now, changes.run_at, changes.attempts);
      return;
    }
    await this.db
      .updateTable("jobs")
      .set((eb) => ({
        ...changes,
        run_at: wakeable ? eb.case().when("woken", "=", 1).then(now).else(changes.run_at).end() : changes.run_at,
        woken: 0,
        locked_by: null,
        locked_until: null,
      }))
      .where("id", "=", jobId)
      .where("locked_by", "=", this.workerId)
      .execute();
  }

  private async extendLease(jobId: string): Promise<void> {
    try {
      await this.db
        .updateTable("jobs")
        .set({ locked_until: addMs(this.clock.now(), this.opts.leaseMs).toISOString() })
        .where("id", "=", jobId)
        .where("locked_by", "=", this.workerId)
        .execute();
    } catch (error) {
      this.log.warn({ jobId, err: error }, "could not extend job lease");
    }
  }
}

/**
 * The claim of a class with `kindCount` kinds, built and compiled once (store/prepared.ts): runners
 * claim after every job and whenever woken, and building the statement each time cost about as
 * much as running it. Arguments: runner id, lease end, now, then the kinds.
 */
function claimQuery(kindCount: number) {
  return new PreparedQuery(
    (db, lockedBy: string, lockedUntil: string, now: string, ...kinds: string[]) =>
      db
        .updateTable("jobs")
        .set({ locked_by: lockedBy, locked_until: lockedUntil, attempts: (eb) => eb("attempts", "+", 1) })
        .where("id", "=", (eb) =>
          eb
            .selectFrom("jobs")
            .select("id")
            .where("run_at", "<=", now)
            .where((w) => w.or([w("locked_until", "is", null), w("locked_until", "<", now)]))
            .where("kind", "in", kinds)
            .orderBy("run_at")
            .limit(1)
            .forUpdate()
            .skipLocked(),
        )
        .returningAll(),
    3 + kindCount,
  );
}

// A job is added and completed for every step of every task: compiled once as well.
const enqueueQuery = new PreparedQuery(
  (
    db,
    id: string,
    kind: string,
    key: string | null,
    payload: string,
    runAt: string,
    maxAttempts: number,
    createdAt: string,
  ) =>
    db
      .insertInto("jobs")
      .values({
        id,
        kind,
        job_key: key,
        payload,
        run_at: runAt,
        attempts: 0,
        max_attempts: maxAttempts,
        locked_by: null,
        locked_until: null,
        last_error: null,
        created_at: createdAt,
      })
      .onConflict((oc) => oc.column("job_key").doNothing()),
  7,
);

/** Deletes a finished job, only while this runner still holds its lease. */
const completeQuery = new PreparedQuery(
  (db, id: string, lockedBy: string) => db.deleteFrom("jobs").where("id", "=", id).where("locked_by", "=", lockedBy),
  2,
);

/**
 * runNow's statement: an idle job put off until later becomes due now; a running one is marked
 * (woken) so that the retry it asks for is due at once. Arguments: now, the job's key.
 */
const runNowQuery = new PreparedQuery(
  (db, now: string, key: string) =>
    db
      .updateTable("jobs")
      .set((eb) => ({
        run_at: eb.case().when("locked_by", "is", null).then(now).else(eb.ref("run_at")).end(),
        woken: eb.case().when("locked_by", "is", null).then(eb.ref("woken")).else(1).end(),
      }))
      .where("job_key", "=", key)
      .where((eb) => eb.or([eb("locked_by", "is not", null), eb("run_at", ">", now)]))
      .returning(["kind", "locked_by"]),
  2,
);

/**
 * Hands back a job that asked to run later, with its attempt count; a wake marked while it ran
 * makes it due now. Arguments: job id, runner id, now, run_at, attempts.
 */
const releaseWakeableQuery = new PreparedQuery(
  (db, id: string, lockedBy: string, now: string, runAt: string, attempts: number) =>
    db
      .updateTable("jobs")
      .set((eb) => ({
        run_at: eb.case().when("woken", "=", 1).then(now).else(runAt).end(),
        attempts,
        woken: 0,
        locked_by: null,
        locked_until: null,
      }))
      .where("id", "=", id)
      .where("locked_by", "=", lockedBy),
  5,
);
