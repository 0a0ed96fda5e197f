/**
 * How many jobs of each kind wait, run and are put off until later, and how long the earliest of
 * each has been (or will be) due: the queue as operators see it (GET /admin/v1/stats).
 *
 * A job is `running` while a runner holds it, `waiting` when it is due and free to claim (a job
 * whose holder died and whose lease ran out is waiting again), `scheduled` when it is due later
 * (a poll that is not ready, a retry's backoff). Both drivers read the rows they keep: the `jobs`
 * table (SQLite or PostgreSQL) or graphile-worker's jobs. Each compares run_at with the clock it
 * was written with: the server's for the table (TableQueue stamps it), the database's for
 * graphile-worker (its run_at is clock_timestamp() plus a delay).
 *
 * The rows read are the pending jobs only (finished jobs are deleted), so the cost follows the
 * backlog, not the history; the table's (kind, run_at) index serves the grouping.
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";

export type JobState = "waiting" | "running" | "scheduled";

export interface KindDepth {
  kind: string;
  state: JobState;
  count: number;
  /** The earliest run_at among these jobs. */
  earliestRunAt: Date;
}

export interface QueueDepth {
  /** The instant the states were judged at (the database's for graphile-worker). */
  at: Date;
  rows: KindDepth[];
}

export async function queueDepth(db: Executor, driver: "table" | "graphile", now: Date): Promise<QueueDepth> {
  return driver === "graphile" ? graphileDepth(db) : tableDepth(db, now);
}

async function tableDepth(db: Executor, now: Date): Promise<QueueDepth> {
  const at = now.toISOString();
  const state = sql<JobState>`case
    when locked_until is not null and locked_until >= ${at} then 'running'
    when run_at <= ${at} then 'waiting'
    else 'scheduled' end`;
  const rows = await db
    .selectFrom("jobs")
    .select(["kind", state.as("state"), sql<number>`count(*)`.as("n"), sql<string>`min(run_at)`.as("earliest")])
    .groupBy(["kind", sql.raw("2")])
    .execute();
  return {
    at: now,
    rows: rows.map((r) => ({ kind: r.kind, state: r.state, count: Number(r.n), earliestRunAt: new Date(r.earliest) })),
  };
}

/**
 * graphile-worker's jobs through its public view. A row out of attempts and not locked is one
 * graphile-worker will never run again (this queue keeps its own attempt count and removes such
 * rows, see graphile-queue.ts): it is not counted as waiting.
 */
async function graphileDepth(db: Executor): Promise<QueueDepth> {
  const { rows } = await sql<{ kind: string; state: JobState; n: number | string; earliest: Date; at: Date }>`
    select task_identifier as kind,
      case when locked_at is not null then 'running' when run_at <= now() then 'waiting' else 'scheduled' end as state,
      count(*) as n, min(run_at) as earliest, now() as at
    from graphile_worker.jobs
    where locked_at is not null or attempts < max_attempts
    group by 1, 2`.execute(db);
  const at = rows[0]?.at ?? (await sql<{ at: Date }>`select now() as at`.execute(db)).rows[0]?.at ?? new Date();
  return {
    at: new Date(at),
    rows: rows.map((r) => ({ kind: r.kind, state: r.state, count: Number(r.n), earliestRunAt: new Date(r.earliest) })),
  };
}
