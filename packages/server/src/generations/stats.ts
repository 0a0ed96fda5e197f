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
import { IN_FLIGHT_CONDITION } from "./fair-share.js";

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

/**
 * The provider slots taken now, per provider, counted as the router's concurrency caps count them
 * (providers/router.ts): tasks processing on a provider, and queued tasks whose submit to it is in
 * flight or of unknown outcome (submit_state.uncertain names it). Both are small slices: the
 * processing ones through the status indexes, the in-flight ones through tasks_in_flight.
 */
export async function providerSlotsInUse(db: Executor): Promise<Map<string, number>> {
  const slots = new Map<string, number>();
  const processing = await db
    .selectFrom("tasks")
    .select(["provider", (eb) => eb.fn.countAll<number>().as("n")])
    .where("status", "=", "processing")
    .groupBy("provider")
    .execute();
  for (const row of processing) {
    if (row.provider !== null) slots.set(row.provider, (slots.get(row.provider) ?? 0) + Number(row.n));
  }
  const inFlight = await db
    .selectFrom("tasks")
    .select("submit_state")
    .where("status", "=", "queued")
    .where(IN_FLIGHT_CONDITION)
    .execute();
  for (const row of inFlight) {
    const provider = uncertainProvider(row.submit_state);
    if (provider !== undefined) slots.set(provider, (slots.get(provider) ?? 0) + 1);
  }
  return slots;
}

function uncertainProvider(submitState: string | null): string | undefined {
  try {
    const state = JSON.parse(submitState ?? "null") as { uncertain?: unknown } | null;
    return typeof state?.uncertain === "string" ? state.uncertain : undefined;
  } catch {
    return undefined;
  }
}
