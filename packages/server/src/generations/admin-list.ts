/**
 * The operators' task list (GET /admin/v1/tasks): every account's tasks, newest first, filtered
 * by account, model, provider, status and a creation range, with the refunds of the whole
 * filtered set (not only of the page shown).
 *
 * Which index serves which question (migrations 0001, 0013, 0020):
 * - with `account_id` (and `status`): tasks_account_created / tasks_status_account_created, one
 *   account's range, already in the page's order;
 * - with `status` alone: tasks_status_created, one status's range in the page's order (queued and
 *   processing are a small slice; failed ones are what an operator looks for);
 * - otherwise: tasks_created, walked newest first from the cursor (or `created_before`).
 * `model` and `provider` are checked on the rows that walk reaches: there are a handful of each,
 * so an index on them would select little and cost every create and submit a write.
 */
import type { TaskStatus } from "@framegate/contract";
import type { SelectQueryBuilder } from "kysely";
import { ApiError } from "../errors.js";
import { refundsOfTasks } from "../ledger/refund-totals.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Db } from "../store/db.js";
import { newestFirst } from "../store/pagination.js";
import type { Database, TasksTable } from "../store/schema.js";
import { serializeTask } from "./serialize.js";

export interface AdminTaskFilters {
  accountId?: string;
  model?: string;
  provider?: string;
  status?: TaskStatus;
  /** Inclusive (ISO). */
  createdAfter?: string;
  /** Exclusive (ISO). */
  createdBefore?: string;
}

/** A task as operators see it: the public object and what only they may see. */
export function adminTask(row: TasksTable, signer: UrlSigner, now: Date) {
  const parse = (text: string | null) => (text ? (JSON.parse(text) as unknown) : null);
  return {
    task: serializeTask(row, signer, now),
    account_id: row.account_id,
    provider: row.provider,
    // Kept even when the task timed out, so a late upstream result can be recovered.
    upstream_id: row.upstream_id,
    upstream_details: parse(row.upstream_details),
    submit_state: parse(row.submit_state),
    error_detail: row.error_detail,
  };
}

export type AdminTask = ReturnType<typeof adminTask>;

/** `query` narrowed to the tasks the filters name. */
export function filterAdminTasks<O>(
  query: SelectQueryBuilder<Database, "tasks", O>,
  f: AdminTaskFilters,
): SelectQueryBuilder<Database, "tasks", O> {
  let q = query;
  if (f.accountId !== undefined) q = q.where("tasks.account_id", "=", f.accountId);
  if (f.status !== undefined) q = q.where("tasks.status", "=", f.status);
  if (f.model !== undefined) q = q.where("tasks.model", "=", f.model);
  if (f.provider !== undefined) q = q.where("tasks.provider", "=", f.provider);
  if (f.createdAfter !== undefined) q = q.where("tasks.created_at", ">=", f.createdAfter);
  if (f.createdBefore !== undefined) q = q.where("tasks.created_at", "<", f.createdBefore);
  return q;
}

export async function listAdminTasks(
  deps: { db: Db; signer: UrlSigner; now: Date },
  filters: AdminTaskFilters,
  page: { limit: number; startingAfter?: string },
): Promise<{ data: AdminTask[]; has_more: boolean; refunds: { count: number; credits: number } }> {
  const { db } = deps;
  let cursor: { created_at: string; id: string } | undefined;
  if (page.startingAfter !== undefined) {
    cursor = await db
      .selectFrom("tasks")
      .select(["created_at", "id"])
      .where("id", "=", page.startingAfter)
      .executeTakeFirst();
    if (!cursor) {
      throw new ApiError("validation_failed", "starting_after does not name a task.", {
        details: [{ path: "starting_after", issue: "unknown id" }],
      });
    }
  }
  const rows = await newestFirst<TasksTable>(
    filterAdminTasks(db.selectFrom("tasks").selectAll(), filters),
    cursor,
    page.limit,
  );
  // Only failed tasks are ever refunded (ledger.refundCredits), so the set summed is the filtered
  // failed tasks: a range of tasks_status_created or tasks_status_account_created.
  const refunds =
    filters.status === undefined || filters.status === "failed"
      ? await refundsOfTasks(
          db,
          filterAdminTasks(db.selectFrom("tasks").select("tasks.id"), { ...filters, status: "failed" }),
        )
      : { count: 0, credits: 0 };
  return {
    data: rows.data.map((row) => adminTask(row, deps.signer, deps.now)),
    has_more: rows.has_more,
    refunds,
  };
}
