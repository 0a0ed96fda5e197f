/**
 * Refunds written in recent windows, across accounts (GET /admin/v1/stats): how many failed tasks
 * gave their reservation back, and how many credits that was.
 *
 * One range scan of the widest window through ledger_entries_account_created, reached by
 * `account_id in (select id from accounts)` as in the usage report; every window is summed from it.
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";

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
