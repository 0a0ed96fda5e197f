/**
 * Task outcomes over recent windows, for operators (GET /admin/v1/stats): tasks created in each
 * window, by status, provider and failure reason.
 *
 * One range scan serves every window: the rows created since the earliest start, each counted in
 * the windows it falls in. Across accounts the scope is `account_id in (select id from accounts)`
 * (as in the usage report), which keeps the tasks_account_created index usable, one seek per
 * account, instead of reading every task ever created; the cost follows the widest window's
 * tasks and the number of accounts. The same SQL runs on SQLite and PostgreSQL (times are ISO
 * text on both, compared as text).
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";

export interface TaskOutcomeRow {
  status: TasksTable["status"];
  /** Null while no provider has taken the task. */
  provider: string | null;
  /** Set on failed tasks (provider_error, timeout, canceled, …). */
  reason: string | null;
  /** Tasks of this status, provider and reason created in each window, in the order given. */
  counts: number[];
}

/**
 * Counts per window; each window runs from its start (inclusive, ISO text) to `end` (inclusive).
 * Starts may come in any order; an empty list reads nothing.
 */
export async function taskOutcomes(db: Executor, starts: string[], end: string): Promise<TaskOutcomeRow[]> {
  if (starts.length === 0) return [];
  const earliest = [...starts].sort()[0] as string;
  const perWindow = starts.map((start, i) =>
    sql<number>`sum(case when created_at >= ${start} then 1 else 0 end)`.as(`w${i}`),
  );
  const rows = await db
    .selectFrom("tasks")
    .select(["status", "provider", "error_reason", ...perWindow])
    .where(sql<boolean>`account_id in (select id from accounts)`)
    .where("created_at", ">=", earliest)
    .where("created_at", "<=", end)
    .groupBy(["status", "provider", "error_reason"])
    .execute();
  return rows.map((row) => {
    const values = row as unknown as Record<string, number | string | null>;
    return {
      status: row.status,
      provider: row.provider,
      reason: row.status === "failed" ? row.error_reason : null,
      counts: starts.map((_, i) => Number(values[`w${i}`] ?? 0)),
    };
  });
}
