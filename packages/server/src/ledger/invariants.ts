/**
 * The ledger's own invariants, for `framegate verify` (ops/verify.ts). Read-only; tables are read
 * a page at a time in key order, so memory does not grow with the number of accounts or entries.
 *
 * - balances: every account's balance equals the sum of its ledger entries (ledger.ts keeps the
 *   balance as their running sum).
 * - ledger_references: an entry of a task (reserve, refund, release) names a task that exists and
 *   belongs to the same account; a grant names none.
 */
import { sql } from "kysely";
import type { Findings } from "../ops/findings.js";
import type { Executor } from "../store/db.js";

const PAGE = 500;
const TASK_ENTRY_TYPES = ["reserve", "refund", "release"];

export async function checkBalances(db: Executor, findings: Findings): Promise<void> {
  const check = findings.check("balances", "accounts");
  let after = "";
  for (;;) {
    // Balance and ledger sum in one statement, so both come from one snapshot even while a
    // server keeps debiting and refunding (two queries could straddle a commit).
    const accounts = await db
      .selectFrom("accounts as a")
      .select([
        "a.id",
        "a.balance",
        (eb) =>
          eb
            .selectFrom("ledger_entries as l")
            .select(sql<number>`coalesce(sum(l.amount), 0)`.as("total"))
            .whereRef("l.account_id", "=", "a.id")
            .as("total"),
        (eb) =>
          eb
            .selectFrom("ledger_entries as l")
            .select(sql<number>`count(*)`.as("n"))
            .whereRef("l.account_id", "=", "a.id")
            .as("n"),
      ])
      .where("a.id", ">", after)
      .orderBy("a.id")
      .limit(PAGE)
      .execute();
    if (accounts.length === 0) return;
    for (const account of accounts) {
      check.checked++;
      const total = Number(account.total ?? 0);
      if (Number(account.balance) !== total) {
        findings.violation(
          "balances",
          account.id,
          `account ${account.id}: balance is ${account.balance} but its ${Number(account.n ?? 0)} ledger entries sum to ${total}`,
        );
      }
    }
    after = (accounts.at(-1) as { id: string }).id;
  }
}

export async function checkLedgerReferences(db: Executor, findings: Findings): Promise<void> {
  const check = findings.check("ledger_references", "entries");
  let after = "";
  for (;;) {
    const entries = await db
      .selectFrom("ledger_entries as l")
      .leftJoin("tasks as t", "t.id", "l.task_id")
      .select(["l.id", "l.type", "l.task_id", "l.account_id", "t.id as found_task", "t.account_id as task_account"])
      .where("l.id", ">", after)
      .orderBy("l.id")
      .limit(PAGE)
      .execute();
    if (entries.length === 0) return;
    for (const e of entries) {
      check.checked++;
      const problem = entryProblem(e);
      if (problem) findings.violation("ledger_references", e.id, `ledger entry ${e.id} (${e.type}): ${problem}`);
    }
    after = (entries.at(-1) as { id: string }).id;
  }
}

function entryProblem(e: {
  type: string;
  task_id: string | null;
  account_id: string;
  found_task: string | null;
  task_account: string | null;
}): string | undefined {
  if (e.type === "grant") return e.task_id === null ? undefined : `a grant names task ${e.task_id}`;
  if (!TASK_ENTRY_TYPES.includes(e.type)) return `unknown entry type "${e.type}"`;
  if (e.task_id === null) return "names no task";
  if (e.found_task === null) return `task ${e.task_id} does not exist`;
  if (e.task_account !== e.account_id) {
    return `task ${e.task_id} belongs to account ${e.task_account}, the entry to ${e.account_id}`;
  }
  return undefined;
}
