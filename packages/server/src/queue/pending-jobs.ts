/**
 * The jobs still waiting or running, of both drivers, read a page at a time for `framegate
 * verify` (generations/invariants.ts matches their keys to tasks). The jobs table always exists;
 * graphile-worker's tables exist on PostgreSQL once QUEUE_DRIVER=graphile has run, and a database
 * that switched drivers can hold jobs in both, so both are read whenever they are there.
 *
 * graphile-worker keeps a replaced job (its successor took the key) unkeyed and out of attempts
 * until housekeeping removes it; it never runs again, so only keyed rows count here.
 */
import { sql } from "kysely";
import type { Dialect, Executor } from "../store/db.js";

export interface PendingJob {
  /** Where it is queued: "jobs" (the table queue) or "graphile_worker". */
  queue: "jobs" | "graphile_worker";
  id: string;
  key: string;
  runAt: string;
  /** Claimed by a runner right now. */
  running: boolean;
}

const PAGE = 500;

export async function* pendingJobPages(db: Executor, dialect: Dialect): AsyncIterable<PendingJob[]> {
  let after = "";
  for (;;) {
    const rows = await db
      .selectFrom("jobs")
      .select(["id", "job_key", "run_at", "locked_until"])
      .where("id", ">", after)
      .where("job_key", "is not", null)
      .orderBy("id")
      .limit(PAGE)
      .execute();
    if (rows.length === 0) break;
    yield rows.map((r) => ({
      queue: "jobs",
      id: r.id,
      key: r.job_key as string,
      runAt: r.run_at,
      running: r.locked_until !== null,
    }));
    after = (rows.at(-1) as { id: string }).id;
  }
  if (dialect === "postgres" && (await graphileInstalled(db))) yield* graphilePages(db);
}

async function graphileInstalled(db: Executor): Promise<boolean> {
  const { rows } = await sql<{ found: unknown }>`select to_regclass('graphile_worker.jobs') as found`.execute(db);
  return rows[0]?.found != null;
}

async function* graphilePages(db: Executor): AsyncIterable<PendingJob[]> {
  let after = 0;
  for (;;) {
    const { rows } = await sql<{ id: number; key: string; run_at: Date; locked_at: Date | null }>`
      select id, key, run_at, locked_at from graphile_worker.jobs
      where id > ${after} and key is not null
      order by id limit ${PAGE}`.execute(db);
    if (rows.length === 0) return;
    yield rows.map((r) => ({
      queue: "graphile_worker",
      id: String(r.id),
      key: r.key,
      runAt: new Date(r.run_at).toISOString(),
      running: r.locked_at !== null,
    }));
    after = Number((rows.at(-1) as { id: number }).id);
  }
}
