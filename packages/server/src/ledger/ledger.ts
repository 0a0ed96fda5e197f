/**
 * The credit ledger. Entries are append-only; `accounts.balance` is their running sum, changed
 * only here and only by guarded updates inside the caller's transaction, so a balance can never
 * go negative and the database's unique (task_id, type) index refuses a second reservation or
 * refund for one task.
 */
import { sql } from "kysely";
import { ApiError } from "../errors.js";
import type { Db, Executor, Tx } from "../store/db.js";
import { PreparedQuery } from "../store/prepared.js";
import type { RowCache } from "../store/row-cache.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";

const balanceQuery = new PreparedQuery(
  (db, accountId: string) => db.selectFrom("accounts").select("balance").where("id", "=", accountId),
  1,
);

export async function getBalance(db: Executor, accountId: string): Promise<number | undefined> {
  return (await balanceQuery.first(db, accountId))?.balance;
}

/**
 * The body of GET /api/v1/credits. On SQLite it comes from `answers` (store/row-cache.ts) while
 * the account's row is unchanged, else from a read made at once when the connection is idle
 * (and kept); synchronous then, so the route answers without an await. Otherwise it is read the
 * usual way.
 */
export function creditsAnswer(db: Db, answers: RowCache | undefined, accountId: string): string | Promise<string> {
  // A balance's answer has no expiry of its own: any time will do.
  const body = answers?.answer(accountId, accountId, 0, () => {
    const rows = balanceQuery.readNow(db, accountId);
    return rows && { body: creditsBody(rows[0]?.balance) };
  });
  return body ?? getBalance(db, accountId).then(creditsBody);
}

function creditsBody(balance: number | undefined): string {
  return JSON.stringify({ current_credits: balance ?? 0 });
}

/** The guarded debit of every create: returns the account's id when the balance covered it. */
const debitQuery = new PreparedQuery(
  (db, accountId: string, amount: number) =>
    db
      .updateTable("accounts")
      .set({ balance: sql<number>`balance - ${amount}` })
      .where("id", "=", accountId)
      .where("balance", ">=", amount)
      .returning("id"),
  2,
);

export interface Reservation {
  accountId: string;
  taskId: string;
  amount: number;
}

/** Debits `amount` for a task, or throws insufficient_credits without changing anything. */
export async function reserveCredits(trx: Tx, clock: Clock, input: Reservation): Promise<void> {
  const refused = await debitForReservation(trx, input);
  if (refused) throw refused;
  await recordReservation(trx, clock, input);
}

/**
 * The first half of reserveCredits, for a caller with work between the halves (the create checks
 * its idempotency key once the debit holds the write lock): the guarded debit. Returns the 402 to
 * answer when the balance is short, having changed nothing; otherwise the caller must run
 * recordReservation in the same transaction, or roll back.
 */
export async function debitForReservation(trx: Tx, input: Reservation): Promise<ApiError | undefined> {
  const debited = await debitQuery.first(trx, input.accountId, input.amount);
  if (debited) return undefined;
  return insufficientCredits(input.amount, await getBalance(trx, input.accountId));
}

/** The second half of reserveCredits: the ledger entry of a debit that succeeded. */
export async function recordReservation(trx: Tx, clock: Clock, input: Reservation): Promise<void> {
  await insertEntry(trx, clock, { ...input, amount: -input.amount, type: "reserve", reason: null });
}

/** The 402 a reservation of `amount` gets when the balance is short (also what the PostgreSQL create renders). */
export function insufficientCredits(amount: number, balance: number | undefined | null): ApiError {
  return new ApiError(
    "insufficient_credits",
    `This generation costs ${amount} credits and the balance is ${balance ?? 0}.`,
  );
}

/** Returns a failed task's reservation. Call only from the transaction that won the status CAS. */
export async function refundCredits(
  trx: Tx,
  clock: Clock,
  input: { accountId: string; taskId: string; amount: number; reason: string },
): Promise<void> {
  if (input.amount <= 0) return;
  await insertEntry(trx, clock, { ...input, type: "refund" });
  await trx
    .updateTable("accounts")
    .set({ balance: sql<number>`balance + ${input.amount}` })
    .where("id", "=", input.accountId)
    .execute();
}

/**
 * Settles a succeeded task: the reservation becomes the charge, and any part of it that the
 * final price does not use (metered models) goes back to the balance.
 */
export async function settleCredits(
  trx: Tx,
  clock: Clock,
  input: { accountId: string; taskId: string; reserved: number; final: number },
): Promise<void> {
  const unused = input.reserved - input.final;
  if (unused <= 0) return;
  await insertEntry(trx, clock, {
    accountId: input.accountId,
    taskId: input.taskId,
    amount: unused,
    type: "release",
    reason: "unused reservation",
  });
  await trx
    .updateTable("accounts")
    .set({ balance: sql<number>`balance + ${unused}` })
    .where("id", "=", input.accountId)
    .execute();
}

/** Operator grant (positive) or debit (negative); a debit never takes the balance below 0. */
export async function grantCredits(
  trx: Tx,
  clock: Clock,
  input: { accountId: string; amount: number; reason: string | null },
): Promise<number> {
  if (!Number.isSafeInteger(input.amount) || input.amount === 0) {
    throw new ApiError("validation_failed", "amount must be a non-zero whole number of credits.", {
      details: [{ path: "amount", issue: "must be a non-zero integer" }],
    });
  }
  const updated = await trx
    .updateTable("accounts")
    .set({ balance: sql<number>`balance + ${input.amount}` })
    .where("id", "=", input.accountId)
    .where(sql<boolean>`balance + ${input.amount} >= 0`)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) {
    const balance = await getBalance(trx, input.accountId);
    if (balance === undefined) throw new ApiError("not_found", "Account not found.");
    throw new ApiError(
      "insufficient_credits",
      `A debit of ${-input.amount} credits would take the balance (${balance}) below 0.`,
    );
  }
  await insertEntry(trx, clock, { ...input, taskId: null, type: "grant" });
  return (await getBalance(trx, input.accountId)) ?? 0;
}

type EntryType = "grant" | "reserve" | "refund" | "release";

const entryInsert = new PreparedQuery(
  (
    db,
    id: string,
    accountId: string,
    amount: number,
    type: EntryType,
    taskId: string | null,
    reason: string | null,
    createdAt: string,
  ) =>
    db
      .insertInto("ledger_entries")
      .values({ id, account_id: accountId, amount, type, task_id: taskId, reason, created_at: createdAt }),
  7,
);

async function insertEntry(
  trx: Tx,
  clock: Clock,
  e: { accountId: string; taskId: string | null; amount: number; type: EntryType; reason: string | null },
): Promise<void> {
  await entryInsert.execute(
    trx,
    newId("led"),
    e.accountId,
    e.amount,
    e.type,
    e.taskId,
    e.reason,
    clock.now().toISOString(),
  );
}

export interface LedgerSummary {
  balance: number;
  ledger_sum: number;
  granted: number;
  reserved: number;
  refunded: number;
  released: number;
  entries: number;
}

/** Per-type totals; `balance === ledger_sum` is the invariant the tests check. */
export async function ledgerSummary(db: Executor, accountId: string): Promise<LedgerSummary | undefined> {
  const balance = await getBalance(db, accountId);
  if (balance === undefined) return undefined;
  const rows = await db
    .selectFrom("ledger_entries")
    .select(["type", (eb) => eb.fn.sum<number>("amount").as("total"), (eb) => eb.fn.countAll<number>().as("n")])
    .where("account_id", "=", accountId)
    .groupBy("type")
    .execute();
  const total = (type: string) => Number(rows.find((r) => r.type === type)?.total ?? 0);
  return {
    balance,
    ledger_sum: rows.reduce((sum, r) => sum + Number(r.total), 0),
    granted: total("grant"),
    reserved: -total("reserve"),
    refunded: total("refund"),
    released: total("release"),
    entries: rows.reduce((sum, r) => sum + Number(r.n), 0),
  };
}
