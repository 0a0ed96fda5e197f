/**
 * The job queue seen by the rest of the code. Delivery is at least once: a handler may run
 * again after a crash, so handlers read stored state and are idempotent. Jobs are added in
 * the caller's transaction, so a job exists exactly when the rows it belongs to do.
 */
import type { Executor } from "../store/db.js";

export interface NewJob {
  kind: string;
  payload: Record<string, unknown>;
  runAt?: Date;
  /** At most one pending job per key; adding a second one is a no-op. */
  key?: string;
  maxAttempts?: number;
}

export interface JobContext {
  jobId: string;
  attempt: number;
  signal: AbortSignal;
}

/** A handler returns nothing when done, or asks to run again later (a poll that is not ready). */
export type JobResult = undefined | { retryAt: Date };

export interface JobHandler {
  run(payload: Record<string, unknown>, ctx: JobContext): Promise<JobResult>;
  /** Called once when the job has failed maxAttempts times, before it is dropped. */
  exhausted?(payload: Record<string, unknown>, error: unknown): Promise<void>;
}

/**
 * A class of jobs with runners of its own: its runners claim only its kinds, so jobs of one
 * class (slow webhook deliveries, say) can never occupy the slots of another (generations).
 */
export interface JobClass {
  /** For logs: "generation", "webhook". */
  name: string;
  /** How many of this class's jobs run at once in this process (0: none here). */
  concurrency: number;
  /** The job kinds of this class and their handlers; a kind belongs to one class only. */
  handlers: Record<string, JobHandler>;
}

/** A job as graphile-worker's `add_job` takes it. */
export interface AddJobArgs {
  kind: string;
  /** The stored payload, as JSON text. */
  payload: string;
  key: string;
  maxAttempts: number;
  keyMode: "replace" | "unsafe_dedupe";
  /** run_at is the database's clock_timestamp() plus this. */
  delayMs: number;
}

export interface Queue {
  enqueue(db: Executor, job: NewJob): Promise<void>;
  /**
   * graphile-worker only: what enqueue() would pass to `add_job`, so SQL that adds the job
   * itself (the PostgreSQL create function) adds exactly the same job.
   */
  addJobArgs?(job: NewJob): AddJobArgs;
  /** Starts each class's runners, which claim only that class's due jobs; rejects when they cannot start. */
  start(classes: JobClass[]): void | Promise<void>;
  /** Why the runners stopped working, if they did (readiness reports it); undefined when fine. */
  problem?(): string | undefined;
  /**
   * Makes the pending job with this key due now (no-op when there is none). When the job is
   * running, the retry it then asks for (JobResult.retryAt) is due at once instead: a wake that
   * comes while the job decides to wait is not lost. Failure backoff is kept.
   */
  runNow(db: Executor, key: string): Promise<void>;
  /** Wakes idle runners (a job was just added in this process). */
  notify(): void;
  /** Stops claiming, waits up to graceMs for running jobs, then aborts and releases the rest. */
  stop(graceMs: number): Promise<void>;
}

/** Jobs are retried this many times unless they say otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 10;

/** Wait before retrying after failed attempt n (1-based): doubling from 1 s up to 60 s, ±20 % jitter. */
export function retryDelayMs(attempt: number, backoffMs?: (attempt: number) => number): number {
  const base = backoffMs?.(attempt) ?? Math.min(60_000, 1000 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The classes that will actually run (some runners, some kinds); throws when a kind is in two classes. */
export function runnableClasses(classes: JobClass[]): JobClass[] {
  const owner = new Map<string, string>();
  for (const c of classes) {
    for (const kind of Object.keys(c.handlers)) {
      const other = owner.get(kind);
      if (other !== undefined) throw new Error(`job kind ${kind} is in two classes: ${other} and ${c.name}`);
      owner.set(kind, c.name);
    }
  }
  return classes.filter((c) => c.concurrency > 0 && Object.keys(c.handlers).length > 0);
}
