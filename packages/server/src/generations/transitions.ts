/**
 * Terminal transitions of a task. Each is a compare-and-set on the previous status inside one
 * transaction with its credit movement, so a late or duplicate worker can never settle or
 * refund twice: only the transaction that flips the status moves credits.
 */
import type { Expression, ExpressionBuilder, SqlBool } from "kysely";
import { refundCredits, settleCredits } from "../ledger/ledger.js";
import type { FailureReason } from "../providers/provider.js";
import type { Db, Tx } from "../store/db.js";
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

/** Runs onTerminal in the transaction; returns the row read for it (undefined when nobody needs it). */
async function afterTerminal(
  trx: Tx,
  taskId: string,
  onTerminal: OnTerminal | undefined,
  committed: OnTerminalCommitted | undefined,
): Promise<TasksTable | undefined> {
  if (!onTerminal && !committed) return undefined;
  const row = await trx.selectFrom("tasks").selectAll().where("id", "=", taskId).executeTakeFirstOrThrow();
  await onTerminal?.(trx, row);
  return row;
}

export async function succeedTask(
  db: Db,
  clock: Clock,
  input: { taskId: string; result: StoredResult },
  onTerminal?: OnTerminal,
  committed?: OnTerminalCommitted,
): Promise<boolean> {
  const ended = await db.transaction().execute(async (trx) => {
    const task = await trx
      .selectFrom("tasks")
      .select(["account_id", "reserved_credits"])
      .where("id", "=", input.taskId)
      .executeTakeFirstOrThrow();
    const now = clock.now().toISOString();
    const final = task.reserved_credits;
    const updated = await trx
      .updateTable("tasks")
      .set({
        status: "succeeded",
        result: JSON.stringify(input.result),
        result_expires_at: input.result.expires_at,
        final_credits: final,
        completed_at: now,
        updated_at: now,
      })
      .where("id", "=", input.taskId)
      .where("status", "=", "processing")
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) return false;
    await settleCredits(trx, clock, {
      accountId: task.account_id,
      taskId: input.taskId,
      reserved: task.reserved_credits,
      final,
    });
    return (await afterTerminal(trx, input.taskId, onTerminal, committed)) ?? true;
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
  const ended = await db.transaction().execute(async (trx) => {
    if (lockAccount !== undefined) {
      await trx.selectFrom("accounts").select("id").where("id", "=", lockAccount).forUpdate().executeTakeFirst();
    }
    const task = await trx
      .selectFrom("tasks")
      .select(["account_id", "reserved_credits"])
      .where("id", "=", input.taskId)
      .executeTakeFirstOrThrow();
    const now = clock.now().toISOString();
    const updated = await trx
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
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) return false;
    await refundCredits(trx, clock, {
      accountId: task.account_id,
      taskId: input.taskId,
      amount: task.reserved_credits,
      reason: `generation failed: ${input.reason}`,
    });
    return (await afterTerminal(trx, input.taskId, onTerminal, committed)) ?? true;
  });
  return afterCommit(db, input.taskId, ended, committed);
}
