/**
 * Refunds written in recent windows, across accounts (GET /admin/v1/stats): how many failed tasks
 * gave their reservation back, and how many credits that was.
 *
 * One range scan of the widest window through ledger_entries_account_created, reached by
 * `account_id in (select id from accounts)` as in the usage report; every window is summed from it.
 */
import { type SelectQueryBuilder, sql } from "kysely";
import type { Executor } from "../store/db.js";
import type { Database } from "../store/schema.js";

export interface RefundTotals {
  count: number;
  credits: number;
}

/** Totals per window, in the order of `starts`; each window runs from its start to `end` (both inclusive, ISO text). */
export async function refundTotals(db: Executor, starts: string[], end: string): Promise<RefundTotals[]> {
  if (starts.length === 0) return [];
  const earliest = [...starts].sort()[0] as string;
  const row = await db
    .selectFrom("ledger_entries")
    .select(
      starts.flatMap((start, i) => [
        sql<number>`coalesce(sum(case when created_at >= ${start} then 1 else 0 end), 0)`.as(`n${i}`),
        sql<number>`coalesce(sum(case when created_at >= ${start} then amount else 0 end), 0)`.as(`c${i}`),
      ]),
    )
    .where(sql<boolean>`account_id in (select id from accounts)`)
    .where("type", "=", "refund")
    .where("created_at", ">=", earliest)
    .where("created_at", "<=", end)
    .executeTakeFirst();
  const values = (row ?? {}) as Record<string, number | string | null>;
  return starts.map((_, i) => ({ count: Number(values[`n${i}`] ?? 0), credits: Number(values[`c${i}`] ?? 0) }));
}

/**
 * The refunds of a set of tasks (GET /admin/v1/tasks): `taskIds` is a subquery of task ids,
 * built by the tasks' own domain. Each task has at most one refund entry (unique index
 * ledger_entries_task_type), reached through that index.
 */
export async function refundsOfTasks(
  db: Executor,
  taskIds: SelectQueryBuilder<Database, "tasks", { id: string }>,
): Promise<RefundTotals> {
  const row = await refundsOfTasksQuery(db, taskIds).executeTakeFirst();
  return { count: Number(row?.n ?? 0), credits: Number(row?.c ?? 0) };
}

/** The statement of refundsOfTasks (its tests read SQLite's plan of it). */
export function refundsOfTasksQuery(db: Executor, taskIds: SelectQueryBuilder<Database, "tasks", { id: string }>) {
  return db
    .selectFrom("ledger_entries")
    .select([sql<number>`count(*)`.as("n"), sql<number>`coalesce(sum(amount), 0)`.as("c")])
    .where("type", "=", "refund")
    .where("task_id", "in", taskIds);
}
