/**
 * Terminal transitions of a task. Each is a compare-and-set on the previous status inside one
 * transaction with its credit movement, so a late or duplicate worker can never settle or
 * refund twice: only the transaction that flips the status moves credits.
 */
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from "kysely";
import { refundCredits, settleCredits } from "../ledger/ledger.js";
import type { FailureReason } from "../providers/provider.js";
import type { Db, Tx } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { PreparedQuery } from "../store/prepared.js";
import type { Database, TasksTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { isWaiting } from "./fair-share.js";
import { publishTaskChange } from "./live/changes.js";
import { publicFailureMessage, type StoredResult } from "./serialize.js";

/** Runs inside the transaction of a terminal transition (webhook events are recorded there). */
export type OnTerminal = (trx: Tx, task: TasksTable) => Promise<void>;

/**
 * Told after a terminal transition committed, with the task as committed (metrics): never for a
 * transition that changed nothing or rolled back.
 */
export type OnTerminalCommitted = (task: TasksTable) => void;

/**
 * Runs onTerminal in the transaction with the row as the transition's UPDATE … RETURNING left it;
 * returns that row (true when nobody needs it).
 */
async function afterTerminal(
  trx: Tx,
  row: TasksTable,
  onTerminal: OnTerminal | undefined,
  committed: OnTerminalCommitted | undefined,
): Promise<TasksTable | true> {
  if (!onTerminal && !committed) return true;
  await onTerminal?.(trx, row);
  return row;
}

export async function succeedTask(
  db: Db,
  clock: Clock,
  input: { taskId: string; result: StoredResult; upstreamDetails?: string },
  onTerminal?: OnTerminal,
  committed?: OnTerminalCommitted,
): Promise<boolean> {
  const ended = await writeTransaction(db, async (trx) => {
    const now = clock.now().toISOString();
    // Fixed price: the final charge is the reservation. One statement flips the status and
    // returns the row the settlement and the terminal hooks need.
    const row = await succeedQuery.first(
      trx,
      input.taskId,
      JSON.stringify(input.result),
      input.result.expires_at,
      now,
      input.upstreamDetails ?? null,
    );
    if (!row) return false;
    await settleCredits(trx, clock, {
      accountId: row.account_id,
      taskId: input.taskId,
      reserved: row.reserved_credits,
      final: row.final_credits,
    });
    return afterTerminal(trx, row, onTerminal, committed);
  });
  return afterCommit(db, input.taskId, ended, committed);
}

/** After the commit: followers in this process (and, through it, in others) re-read the task. */
function afterCommit(
  db: Db,
  taskId: string,
  ended: TasksTable | boolean,
  committed: OnTerminalCommitted | undefined,
): boolean {
  if (ended === false) return false;
  publishTaskChange(db, taskId);
  if (ended !== true) committed?.(ended);
  return true;
}

export async function failTask(
  db: Db,
  clock: Clock,
  input: {
    taskId: string;
    reason: FailureReason;
    detail?: string;
    /** Replaces the fixed sentence of `reason` when the client should know more (own account limits). */
    publicMessage?: string;
  },
  onTerminal?: OnTerminal,
  committed?: OnTerminalCommitted,
): Promise<boolean> {
  return failWhere(db, clock, input, (eb) => eb("status", "in", ["queued", "processing"]), onTerminal, committed);
}

/**
 * What a cancel saw and may end: a queued task with no submit in flight, or a processing task on
 * the upstream task its provider just cancelled. The UPDATE repeats the condition, so a submit
 * that claimed the task meanwhile (submit_state.uncertain written) or a finish that got there
 * first makes the cancel change nothing. On PostgreSQL the row lock orders the two; on SQLite
 * the single writer does.
 */
export type CancelGuard = { status: "queued" } | { status: "processing"; upstreamId: string };

export async function cancelTask(
  db: Db,
  clock: Clock,
  input: { taskId: string; accountId: string; guard: CancelGuard; detail: string },
  onTerminal?: OnTerminal,
  committed?: OnTerminalCommitted,
): Promise<boolean> {
  const { guard } = input;
  return failWhere(
    db,
    clock,
    { taskId: input.taskId, reason: "canceled", detail: input.detail },
    (eb) =>
      guard.status === "queued"
        ? isWaiting(eb)
        : eb.and([eb("status", "=", "processing"), eb("upstream_id", "=", guard.upstreamId)]),
    onTerminal,
    committed,
    // A submit's claim locks the account row and then writes the task row; taking them in the
    // same order keeps a cancel and a claim of the same task from deadlocking on PostgreSQL.
    input.accountId,
  );
}

/** The failed transition: when `condition` still holds, fail the task and refund its reservation. */
async function failWhere(
  db: Db,
  clock: Clock,
  input: { taskId: string; reason: FailureReason; detail?: string; publicMessage?: string },
  condition: (eb: ExpressionBuilder<Database, "tasks">) => Expression<SqlBool>,
  onTerminal: OnTerminal | undefined,
  committed: OnTerminalCommitted | undefined,
  lockAccount?: string,
): Promise<boolean> {
  const ended = await writeTransaction(db, async (trx) => {
    if (lockAccount !== undefined) {
      await trx.selectFrom("accounts").select("id").where("id", "=", lockAccount).forUpdate().executeTakeFirst();
    }
    const now = clock.now().toISOString();
    const row = await trx
      .updateTable("tasks")
      .set({
        status: "failed",
        final_credits: 0,
        error_reason: input.reason,
        // Clients get a fixed sentence per reason; upstream wording can leak internals.
        error_message: input.publicMessage ?? publicFailureMessage(input.reason),
        error_detail: input.detail?.slice(0, 2000) ?? null,
        completed_at: now,
        updated_at: now,
      })
      .where("id", "=", input.taskId)
      .where(condition)
      .returningAll()
      .executeTakeFirst();
    if (!row) return false;
    await refundCredits(trx, clock, {
      accountId: row.account_id,
      taskId: input.taskId,
      amount: row.reserved_credits,
      reason: `generation failed: ${input.reason}`,
    });
    return afterTerminal(trx, row, onTerminal, committed);
  });
  return afterCommit(db, input.taskId, ended, committed);
}

/**
 * processing -> succeeded, compiled once (store/prepared.ts): the final charge is the reservation,
 * and upstream details are kept unless new ones are given. Arguments: task, result JSON, its
 * expiry, now, upstream details or null.
 */
const succeedQuery = new PreparedQuery(
  (db, id: string, result: string, expiresAt: string, now: string, details: string | null) =>
    db
      .updateTable("tasks")
      .set((eb) => ({
        status: "succeeded",
        result,
        result_expires_at: expiresAt,
        final_credits: eb.ref("reserved_credits"),
        completed_at: now,
        updated_at: now,
        upstream_details: sql<string | null>`coalesce(${details}, upstream_details)`,
      }))
      .where("id", "=", id)
      .where("status", "=", "processing")
      .returningAll(),
  5,
);
