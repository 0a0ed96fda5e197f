/**
 * Fair sharing of generation capacity between accounts.
 *
 * A task is *running* while it is `processing` or `queued` with a submit in flight or of unknown
 * outcome (submit_state.uncertain): the same tasks the provider caps count. It is *waiting*
 * while it is `queued` with no submit in flight. Two rules decide, in the transaction that claims
 * a provider slot, whether a task of account X may claim one:
 *   1. Cap: X has fewer running tasks than its cap (accounts.max_running_tasks, else the
 *      configured default).
 *   2. Fair hand-out: no other account Y, under its own cap and with a task waiting for this
 *      provider, has fewer running tasks than X. Otherwise X's task waits, and Y's oldest waiting
 *      task is made due now, so the slot goes to the account using the least capacity.
 * Waiting tasks retry rarely; they are woken explicitly instead: whenever a running task stops
 * running (a terminal transition, or a submit that gave its claim back), the next task in fair
 * order (fewest running for its account, then oldest) is made due now in that transaction.
 *
 * Concurrency: the claim transaction locks X's account row first, so two submits of one
 * account (in any process) take turns and cannot both pass the cap. Reads of other accounts
 * are not locked: a stale read can only make X wait once more than needed (it then wakes the
 * other account's task), never let an account past its cap.
 */
import { type ExpressionBuilder, sql } from "kysely";
import type { Queue } from "../queue/queue.js";
import type { Executor } from "../store/db.js";
import { PreparedQuery } from "../store/prepared.js";
import type { Database } from "../store/schema.js";
import { submitJobKey } from "./service.js";

export type SlotDecision =
  | { kind: "go" }
  /** The account already runs `cap` tasks. */
  | { kind: "account_limit"; running: number; cap: number }
  /** Another account using less capacity waits for this provider; its task `woken` was made due. */
  | { kind: "fair_share"; woken: string };

type TasksEb = ExpressionBuilder<Database, "tasks">;

// submit_state is JSON text; `uncertain` is present only while a submit is in flight (JSON.stringify
// drops undefined), and every other string value in it is escaped, so `"uncertain":` matches only the key.
const IN_FLIGHT = '%"uncertain":%';
/**
 * `submit_state like IN_FLIGHT` as literal SQL: the partial index tasks_in_flight (migration 0012)
 * is only used by queries that state its condition literally, not through a bound parameter.
 */
export const IN_FLIGHT_CONDITION = sql<boolean>`submit_state like '%"uncertain":%'`;

/** Queued with no submit in flight (also the condition under which a cancel may end a task at once). */
export function isWaiting(eb: TasksEb) {
  return eb.and([
    eb("tasks.status", "=", "queued"),
    eb.or([eb("tasks.submit_state", "is", null), eb("tasks.submit_state", "not like", IN_FLIGHT)]),
  ]);
}

/** Whether a stored task (e.g. in a terminal hook) was holding a slot. */
export function wasRunning(row: { started_at: string | null; submit_state: string | null }): boolean {
  return row.started_at !== null || (row.submit_state?.includes('"uncertain":') ?? false);
}

export class FairShare {
  constructor(
    private readonly queue: Queue,
    /** ACCOUNT_MAX_RUNNING_TASKS: the cap of accounts without an override. */
    readonly defaultCap: number,
  ) {}

  /**
   * Whether `taskId` of `accountId` may claim a slot of `provider` now. Run it in the claim
   * transaction, before the provider's own cap check: it locks the account row until commit.
   */
  async decide(trx: Executor, input: { taskId: string; accountId: string; provider: string }): Promise<SlotDecision> {
    const account = await accountCapLocked.first(trx, input.accountId);
    const cap = account?.max_running_tasks ?? this.defaultCap;
    const running = await runningByAccount(trx, input.taskId);
    const mine = running.get(input.accountId) ?? 0;
    if (mine >= cap) return { kind: "account_limit", running: mine, cap };
    const fairer = await this.nextWaiting(trx, running, {
      provider: input.provider,
      exceptAccount: input.accountId,
      fewerThan: mine,
    });
    if (!fairer) return { kind: "go" };
    await this.queue.runNow(trx, submitJobKey(fairer.id));
    return { kind: "fair_share", woken: fairer.id };
  }

  /**
   * A running task of `account` stopped running: hands its provider slot to the next task in fair
   * order, and its account slot to the account's own oldest waiting task (without a provider cap
   * that is the slot that matters; when it is not that task's turn, its submit defers again).
   */
  async wakeNext(trx: Executor, opts: { account: string; exceptTask?: string }): Promise<void> {
    const running = await runningByAccount(trx);
    const except = opts.exceptTask !== undefined ? { exceptTask: opts.exceptTask } : {};
    const next = await this.nextWaiting(trx, running, except);
    // When the next task is the account's own, it is also the account's oldest waiting one: no
    // second look. (With no next task at all, the account has none it may start either.)
    const own =
      next === undefined || next.accountId === opts.account
        ? next
        : await this.nextWaiting(trx, running, { ...except, onlyAccount: opts.account });
    const ids = new Set([next?.id, own?.id].filter((id) => id !== undefined));
    // In id order: two wakers touching the same two jobs then lock them in the same order.
    for (const id of [...ids].sort()) await this.queue.runNow(trx, submitJobKey(id));
  }

  /** The account's cap may have been raised: makes as many of its waiting tasks due as it may now start. */
  async wakeAccount(db: Executor, accountId: string): Promise<void> {
    const account = await db
      .selectFrom("accounts")
      .select("max_running_tasks")
      .where("id", "=", accountId)
      .executeTakeFirst();
    if (!account) return;
    const free = (account.max_running_tasks ?? this.defaultCap) - ((await runningByAccount(db)).get(accountId) ?? 0);
    if (free <= 0) return;
    const waiting = await db
      .selectFrom("tasks")
      .select("id")
      .where("account_id", "=", accountId)
      .where((eb) => isWaiting(eb))
      .orderBy("created_at")
      .orderBy("id")
      .limit(free)
      .execute();
    for (const task of waiting) await this.queue.runNow(db, submitJobKey(task.id));
  }

  /**
   * The oldest waiting task of the account that uses the least capacity (then waited longest),
   * among accounts under their cap; optionally only accounts using fewer than `fewerThan`.
   */
  private async nextWaiting(
    db: Executor,
    running: Map<string, number>,
    opts: { provider?: string; exceptAccount?: string; onlyAccount?: string; exceptTask?: string; fewerThan?: number },
  ): Promise<{ id: string; accountId: string } | undefined> {
    const candidates = (await oldestWaitingByAccount(opts).execute(db)).rows
      .map((a) => ({ ...a, running: running.get(a.account_id) ?? 0 }))
      .filter((a) => a.running < (a.max_running_tasks ?? this.defaultCap))
      .filter((a) => opts.fewerThan === undefined || a.running < opts.fewerThan)
      .sort(
        (a, b) => a.running - b.running || a.oldest.localeCompare(b.oldest) || a.account_id.localeCompare(b.account_id),
      );
    const first = candidates[0];
    return first && { id: first.oldest_id, accountId: first.account_id };
  }
}

/**
 * Each account with a waiting task (optionally not refused by `provider`, not `exceptTask`): its
 * cap and its oldest waiting task. One statement, whose cost grows with the number of accounts
 * with queued tasks, not with the tasks queued: the accounts are found by a walk along
 * tasks_status_account_created (status, account_id, created_at, id), one seek per account, and each
 * account's oldest waiting task is the first of its queued tasks in that index that is not in
 * flight (those are at most the running ones). A `group by` over the waiting tasks read every one
 * of them on every finished task: under a backlog of thousands, the worker's largest cost.
 */
export function oldestWaitingByAccount(opts: {
  provider?: string;
  exceptAccount?: string;
  onlyAccount?: string;
  exceptTask?: string;
}) {
  const accounts =
    opts.onlyAccount !== undefined
      ? sql`select ${opts.onlyAccount} as account_id`
      : sql`with recursive queued(account_id) as (
            select min(account_id) from tasks where status = 'queued'
            union all
            select (select min(t.account_id) from tasks t where t.status = 'queued' and t.account_id > q.account_id)
              from queued q where q.account_id is not null
          )
          select account_id from queued where account_id is not null`;
  // A waiting task names a provider in its submit_state only in `refused` (error texts are escaped
  // strings and start with the bare name), so the quoted name means "refused".
  const refusedBy = opts.provider !== undefined ? `%${JSON.stringify(opts.provider)}%` : undefined;
  return sql<{ account_id: string; max_running_tasks: number | null; oldest_id: string; oldest: string }>`
    select x.account_id, x.max_running_tasks, o.id as oldest_id, o.created_at as oldest
    from (
      select a.id as account_id, a.max_running_tasks, (
        select w.id from tasks w
        where w.status = 'queued' and w.account_id = q.account_id
          and (w.submit_state is null or w.submit_state not like ${IN_FLIGHT})
          ${refusedBy !== undefined ? sql`and (w.submit_state is null or w.submit_state not like ${refusedBy})` : sql``}
          ${opts.exceptTask !== undefined ? sql`and w.id <> ${opts.exceptTask}` : sql``}
        order by w.created_at, w.id
        limit 1
      ) as oldest_id
      from (${accounts}) q
      join accounts a on a.id = q.account_id
      ${opts.exceptAccount !== undefined ? sql`where q.account_id <> ${opts.exceptAccount}` : sql``}
    ) x
    join tasks o on o.id = x.oldest_id`;
}

/**
 * Running tasks per account, not counting `exceptTask` (the task deciding about itself).
 *
 * Counted in two parts that indexes answer without reading the queue's backlog: processing tasks
 * from tasks_status_account_created alone, queued ones with a submit in flight from the partial index
 * tasks_in_flight (migration 0012; its condition is repeated here word for word, which is how
 * both databases know they may use it). One query over both read every queued task's row: under
 * a backlog of thousands, most of the worker's database time.
 */
async function runningByAccount(db: Executor, exceptTask?: string): Promise<Map<string, number>> {
  const rows = await runningCounts.execute(db);
  const running = new Map<string, number>();
  for (const r of rows) running.set(r.account_id, (running.get(r.account_id) ?? 0) + Number(r.n));
  if (exceptTask !== undefined) {
    const own = await runningState.first(db, exceptTask);
    const n = own ? (running.get(own.account_id) ?? 0) : 0;
    if (own && n > 0 && countsAsRunning(own)) running.set(own.account_id, n - 1);
  }
  return running;
}

/** Whether a loaded row is running (see the module comment). */
function countsAsRunning(row: { status: string; submit_state: string | null }): boolean {
  return (
    row.status === "processing" || (row.status === "queued" && (row.submit_state?.includes('"uncertain":') ?? false))
  );
}

// Run by every submit and every finish: compiled once (store/prepared.ts).

/** The account's cap, its row locked until commit (PostgreSQL): one claimer per account at a time. */
const accountCapLocked = new PreparedQuery(
  (db, accountId: string) =>
    db.selectFrom("accounts").select("max_running_tasks").where("id", "=", accountId).forUpdate(),
  1,
);

/**
 * runningByAccount's counts. One statement, so both parts come from one snapshot: on PostgreSQL
 * two statements could miss a task accepted (queued in flight -> processing) between them, and
 * let an account past its cap.
 */
const runningCounts = new PreparedQuery(
  (db) =>
    db
      .selectFrom("tasks")
      .select((eb) => ["account_id", eb.fn.countAll<number>().as("n")])
      .where("status", "=", "processing")
      .groupBy("account_id")
      .unionAll(
        db
          .selectFrom("tasks")
          .select((eb) => ["account_id", eb.fn.countAll<number>().as("n")])
          .where("status", "=", "queued")
          .where(IN_FLIGHT_CONDITION)
          .groupBy("account_id"),
      ),
  0,
);

const runningState = new PreparedQuery(
  (db, id: string) =>
    db.selectFrom("tasks").select(["account_id", "status", "submit_state", "started_at"]).where("id", "=", id),
  1,
);
