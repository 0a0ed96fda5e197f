/**
 * What must still hold after the load: read from the server's own database, never from its API,
 * so a server that answered 202 without committing (or committed twice) is caught.
 */
import type { CreateTracker } from "./load.js";
import type { StoreReader } from "./store-reader.js";

export interface LedgerTotals {
  balance: number;
  /** Per entry type; reservations are negative amounts. */
  granted: number;
  reserved: number;
  refunded: number;
  released: number;
  entries: number;
}

export async function ledgerTotals(db: StoreReader, accountId: string): Promise<LedgerTotals> {
  const [account] = await db.all<{ balance: number }>("SELECT balance FROM accounts WHERE id = ?", [accountId]);
  if (!account) throw new Error(`account ${accountId} is not in the database`);
  const rows = await db.all<{ type: string; total: number; n: number }>(
    "SELECT type, SUM(amount) AS total, COUNT(*) AS n FROM ledger_entries WHERE account_id = ? GROUP BY type",
    [accountId],
  );
  const total = (type: string) => Number(rows.find((r) => r.type === type)?.total ?? 0);
  return {
    balance: Number(account.balance),
    granted: total("grant"),
    reserved: -total("reserve"),
    refunded: total("refund"),
    released: total("release"),
    entries: rows.reduce((sum, r) => sum + Number(r.n), 0),
  };
}

export interface CreateCheck {
  ok: boolean;
  problems: string[];
  tasks: number;
  accepted: number;
  /** Requests cut off when the load stopped, and how many of those the server had committed. */
  cutOff: number;
  cutOffCommitted: number;
  ledger: LedgerTotals;
  /** Submit jobs missing for a task; null when this store's queue could not be inspected. */
  tasksWithoutJob: number | null;
  /** How many accounts the creates were spread over, when more than one (each checked on its own). */
  accounts?: number;
}

/**
 * After a create run without a worker: the balance is what was granted minus every reservation,
 * each task has exactly one reservation and its submit job, and the tasks are exactly the
 * creates answered 202 plus some of those whose answer was cut off when the load stopped.
 */
export async function checkCreates(db: StoreReader, accountId: string, tracker: CreateTracker): Promise<CreateCheck> {
  await waitUntilQuiet(db, accountId);
  return db.snapshot(() => checkCreatesIn(db, accountId, tracker));
}

/** Waits (up to 10 s) until the account's task count stops moving: cut-off creates have landed. */
export async function waitUntilQuiet(db: StoreReader, accountId: string): Promise<void> {
  const count = async () =>
    Number((await db.all<{ n: number }>("SELECT COUNT(*) AS n FROM tasks WHERE account_id = ?", [accountId]))[0]?.n);
  let last = await count();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = await count();
    if (now === last) return;
    last = now;
  }
}

async function checkCreatesIn(db: StoreReader, accountId: string, tracker: CreateTracker): Promise<CreateCheck> {
  const problems: string[] = [];
  const ledger = await ledgerTotals(db, accountId);
  const tasks = await db.all<{ id: string; client_request_id: string | null; reserved_credits: number }>(
    "SELECT id, client_request_id, reserved_credits FROM tasks WHERE account_id = ?",
    [accountId],
  );
  const sent = new Set(tracker.sent);
  const seen = new Set<string>();
  let cutOffCommitted = 0;
  let reservedByTasks = 0;
  for (const task of tasks) {
    reservedByTasks += Number(task.reserved_credits);
    const id = task.client_request_id;
    if (id === null || !sent.has(id)) problems.push(`task ${task.id} was not created by this run (${id})`);
    else if (seen.has(id)) problems.push(`client_request_id ${id} has more than one task`);
    else if (!tracker.accepted.has(id)) cutOffCommitted++;
    if (id !== null) seen.add(id);
  }
  for (const id of tracker.accepted) if (!seen.has(id)) problems.push(`create ${id} was answered 202 but has no task`);
  const cutOff = tracker.sent.length - tracker.accepted.size;
  if (cutOffCommitted > cutOff) problems.push(`${cutOffCommitted} unanswered creates committed, more than were sent`);

  if (ledger.balance !== ledger.granted - ledger.reserved + ledger.refunded + ledger.released) {
    problems.push(`balance ${ledger.balance} is not the sum of the ledger`);
  }
  if (ledger.refunded !== 0 || ledger.released !== 0) problems.push("refunds or releases without a worker");
  if (ledger.reserved !== reservedByTasks) {
    problems.push(`reservations total ${ledger.reserved}, the tasks reserved ${reservedByTasks}`);
  }
  const [orphans] = await db.all<{ n: number }>(
    `SELECT COUNT(*) AS n FROM tasks t WHERE t.account_id = ? AND (
       SELECT COUNT(*) FROM ledger_entries l WHERE l.task_id = t.id AND l.type = 'reserve') <> 1`,
    [accountId],
  );
  if (Number(orphans?.n) !== 0) problems.push(`${orphans?.n} tasks without exactly one reservation`);

  const tasksWithoutJob = await countTasksWithoutSubmitJob(db, accountId);
  if (tasksWithoutJob) problems.push(`${tasksWithoutJob} tasks without their submit job`);
  return {
    ok: problems.length === 0,
    problems: problems.slice(0, 10),
    tasks: tasks.length,
    accepted: tracker.accepted.size,
    cutOff,
    cutOffCommitted,
    ledger,
    tasksWithoutJob,
  };
}

/**
 * The checks of a create scenario spread over several accounts, each checked on its own account
 * (checkCreates), as one: the counts and ledger totals summed, every account's problems kept
 * (named by account), and the totals checked again as a whole: the balances sum to the grants
 * less the reservations, and the tasks to the answered creates plus the cut-off ones that landed.
 */
export function combineCreateChecks(perAccount: { accountId: string; check: CreateCheck }[]): CreateCheck {
  const problems: string[] = [];
  const sum = (pick: (c: CreateCheck) => number) => perAccount.reduce((total, a) => total + pick(a.check), 0);
  for (const { accountId, check } of perAccount) {
    for (const problem of check.problems) problems.push(`${accountId}: ${problem}`);
  }
  const ledger: LedgerTotals = {
    balance: sum((c) => c.ledger.balance),
    granted: sum((c) => c.ledger.granted),
    reserved: sum((c) => c.ledger.reserved),
    refunded: sum((c) => c.ledger.refunded),
    released: sum((c) => c.ledger.released),
    entries: sum((c) => c.ledger.entries),
  };
  const combined: CreateCheck = {
    ok: false,
    problems,
    tasks: sum((c) => c.tasks),
    accepted: sum((c) => c.accepted),
    cutOff: sum((c) => c.cutOff),
    cutOffCommitted: sum((c) => c.cutOffCommitted),
    ledger,
    tasksWithoutJob: perAccount.some((a) => a.check.tasksWithoutJob === null)
      ? null
      : sum((c) => c.tasksWithoutJob ?? 0),
  };
  if (ledger.balance !== ledger.granted - ledger.reserved + ledger.refunded + ledger.released) {
    problems.push(`all accounts: balances total ${ledger.balance}, not the sum of their ledgers`);
  }
  if (combined.tasks !== combined.accepted + combined.cutOffCommitted) {
    problems.push(
      `all accounts: ${combined.tasks} tasks, not ${combined.accepted} answered + ${combined.cutOffCommitted} cut off`,
    );
  }
  combined.ok = problems.length === 0;
  combined.problems = problems.slice(0, 10);
  if (perAccount.length > 1) combined.accounts = perAccount.length;
  return combined;
}

/** The submit job is keyed `submit:<task id>` in either queue (the jobs table, or graphile-worker's). */
async function countTasksWithoutSubmitJob(db: StoreReader, accountId: string): Promise<number | null> {
  const jobs = db.dialect === "sqlite" ? "jobs j WHERE j.job_key" : "graphile_worker._private_jobs j WHERE j.key";
  try {
    const [row] = await db.all<{ n: number }>(
      `SELECT COUNT(*) AS n FROM tasks t WHERE t.account_id = ? AND NOT EXISTS (
         SELECT 1 FROM ${jobs} = 'submit:' || t.id)`,
      [accountId],
    );
    return Number(row?.n ?? 0);
  } catch {
    return null; // another queue layout: reported as unchecked rather than guessed
  }
}

export interface EndToEndProgress {
  /** Every task of the account, whether or not its create was answered before a timeout. */
  total: number;
  terminal: number;
  succeeded: number;
  failed: number;
  /** Terminal tasks whose credits are settled: captured (succeeded) or refunded once (failed). */
  settled: number;
  /** Terminal tasks with their generation.succeeded / generation.failed event recorded. */
  withEvent: number;
  deliveredEvents: number;
  /** Σ final_credits: what the terminal tasks were charged. */
  charged: number;
  /** Server clock: the first task's creation and the last terminal event's commit. */
  firstCreatedAt: string | null;
  lastEventAt: string | null;
}

export function endToEndProgress(db: StoreReader, accountId: string): Promise<EndToEndProgress> {
  return db.snapshot(() => readEndToEndProgress(db, accountId));
}

async function readEndToEndProgress(db: StoreReader, accountId: string): Promise<EndToEndProgress> {
  const [row] = await db.all<{
    total: number;
    terminal: number;
    succeeded: number;
    failed: number;
    settled: number;
    charged: number;
    first_created: string | null;
  }>(
    `SELECT
       COUNT(*) AS total,
       SUM(CASE WHEN t.status IN ('succeeded', 'failed') THEN 1 ELSE 0 END) AS terminal,
       SUM(CASE WHEN t.status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
       SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END) AS failed,
       SUM(CASE
         WHEN t.status = 'succeeded' AND t.final_credits = t.reserved_credits
           AND NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.task_id = t.id AND l.type = 'refund') THEN 1
         WHEN t.status = 'failed' AND t.final_credits = 0
           AND (SELECT SUM(l.amount) FROM ledger_entries l WHERE l.task_id = t.id AND l.type = 'refund') = t.reserved_credits THEN 1
         ELSE 0 END) AS settled,
       SUM(t.final_credits) AS charged,
       MIN(t.created_at) AS first_created
     FROM tasks t WHERE t.account_id = ?`,
    [accountId],
  );
  const [events] = await db.all<{ n: number; last: string | null }>(
    `SELECT COUNT(*) AS n, MAX(e.created_at) AS last FROM webhook_events e
     WHERE e.account_id = ? AND e.type IN ('generation.succeeded', 'generation.failed')`,
    [accountId],
  );
  const [delivered] = await db.all<{ n: number }>(
    `SELECT COUNT(DISTINCT d.event_id) AS n FROM webhook_deliveries d
     JOIN webhook_events e ON e.id = d.event_id
     WHERE e.account_id = ? AND d.status = 'succeeded' AND e.type IN ('generation.succeeded', 'generation.failed')`,
    [accountId],
  );
  return {
    total: Number(row?.total ?? 0),
    terminal: Number(row?.terminal ?? 0),
    succeeded: Number(row?.succeeded ?? 0),
    failed: Number(row?.failed ?? 0),
    settled: Number(row?.settled ?? 0),
    withEvent: Number(events?.n ?? 0),
    deliveredEvents: Number(delivered?.n ?? 0),
    charged: Number(row?.charged ?? 0),
    firstCreatedAt: isoOrNull(row?.first_created),
    lastEventAt: isoOrNull(events?.last),
  };
}

/** Timestamps are ISO text on SQLite and may come back as Date objects from pg. */
function isoOrNull(value: string | Date | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : value;
}
