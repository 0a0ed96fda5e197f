/**
 * Usage over a range of UTC buckets, for one account or (operators) for all of them.
 *
 * This is a read-only report over two domains' tables, so it lives apart from both:
 * - Task counts come from `tasks`, by the bucket the task was created in: a bucket's
 *   tasks_created splits into succeeded + failed + canceled + those still running, and a past
 *   bucket's tasks_created never changes. A failed task whose error reason is `canceled` counts
 *   as canceled only.
 * - Credits come from `ledger_entries`, by the bucket the entry was written in, so the buckets
 *   add up to the ledger over the same range: credits_charged = reservations less the unused
 *   part released at settlement, credits_refunded = refunds, credits_granted = operator grants
 *   less operator debits. Over the whole history, granted − charged + refunded is the balance.
 *
 * Each query reads only the range: a range on created_at behind account_id, which the indexes
 * tasks_account_created and ledger_entries_account_created serve. Across all accounts the scope
 * is `account_id in (select id from accounts)`, which keeps those indexes usable (one seek per
 * account) instead of reading every row ever written. Buckets are grouped in SQL by a prefix of
 * the stored ISO text, which reads the same on SQLite and PostgreSQL.
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";
import { BUCKET_KEY_LENGTH, type BucketRange, bucketStartOfKey } from "./time-range.js";

export interface TaskCounts {
  tasks_created: number;
  tasks_succeeded: number;
  tasks_failed: number;
  tasks_canceled: number;
}

export interface CreditTotals {
  credits_charged: number;
  credits_refunded: number;
  credits_granted: number;
}

export type UsageCounts = TaskCounts & CreditTotals;
export type UsageBucket = { start: string } & UsageCounts;

export interface AccountUsage {
  object: "usage";
  granularity: BucketRange["granularity"];
  start: string;
  end: string;
  data: UsageBucket[];
  totals: UsageCounts;
}

export interface AdminUsage extends AccountUsage {
  account_id: string | null;
  by_account: ({ account_id: string; name: string | null } & UsageCounts)[];
  by_provider: ({ provider: string | null } & TaskCounts & Omit<CreditTotals, "credits_granted">)[];
  refunds: { count: number; credits: number; by_reason: { reason: string | null; count: number; credits: number }[] };
}

/** One account's rows, or every account's (through the accounts table, see above). */
type Scope = { accountId: string } | { all: true };

const zeroCounts = (): UsageCounts => ({
  tasks_created: 0,
  tasks_succeeded: 0,
  tasks_failed: 0,
  tasks_canceled: 0,
  credits_charged: 0,
  credits_refunded: 0,
  credits_granted: 0,
});

function inScope(scope: Scope, column: "tasks.account_id" | "ledger_entries.account_id") {
  return "accountId" in scope
    ? sql<boolean>`${sql.ref(column)} = ${scope.accountId}`
    : sql<boolean>`${sql.ref(column)} in (select id from accounts)`;
}

/** Task counts by `group` (a SQL expression over tasks) for tasks created in the range. */
async function taskCounts(db: Executor, scope: Scope, range: BucketRange, group: ReturnType<typeof sql.raw>) {
  const rows = await db
    .selectFrom("tasks")
    .select([
      group.as("k"),
      sql<number>`count(*)`.as("created"),
      sql<number>`sum(case when status = 'succeeded' then 1 else 0 end)`.as("succeeded"),
      sql<number>`sum(case when status = 'failed' and error_reason = 'canceled' then 1 else 0 end)`.as("canceled"),
      sql<number>`sum(case when status = 'failed' and coalesce(error_reason, '') <> 'canceled' then 1 else 0 end)`.as(
        "failed",
      ),
    ])
    .where(inScope(scope, "tasks.account_id"))
    .where("tasks.created_at", ">=", range.start)
    .where("tasks.created_at", "<", range.end)
    .groupBy(sql.raw("1"))
    .execute();
  return rows.map((r) => ({
    key: r.k as string | null,
    counts: {
      tasks_created: Number(r.created),
      tasks_succeeded: Number(r.succeeded),
      tasks_failed: Number(r.failed),
      tasks_canceled: Number(r.canceled),
    },
  }));
}

/** Ledger sums by `group` (a SQL expression) and entry type, for entries written in the range. */
async function ledgerSums(
  db: Executor,
  scope: Scope,
  range: BucketRange,
  group: ReturnType<typeof sql.raw>,
  opts: { joinTasks?: boolean } = {},
) {
  let q = db
    .selectFrom("ledger_entries")
    .$if(opts.joinTasks === true, (qb) => qb.leftJoin("tasks", "tasks.id", "ledger_entries.task_id"))
    .select([group.as("k"), "ledger_entries.type as type", sql<number>`sum(ledger_entries.amount)`.as("total")])
    .where(inScope(scope, "ledger_entries.account_id"))
    .where("ledger_entries.created_at", ">=", range.start)
    .where("ledger_entries.created_at", "<", range.end);
  if (opts.joinTasks) q = q.where("ledger_entries.task_id", "is not", null);
  const rows = await q.groupBy([sql.raw("1"), "ledger_entries.type"]).execute();
  return rows.map((r) => ({ key: r.k as string | null, type: r.type, total: Number(r.total) }));
}

/** Adds a ledger sum of one entry type to the credit totals it belongs to. */
function addCredits(into: CreditTotals, type: string, total: number) {
  if (type === "reserve") into.credits_charged += -total;
  else if (type === "release") into.credits_charged -= total;
  else if (type === "refund") into.credits_refunded += total;
  else if (type === "grant") into.credits_granted += total;
}

function addTaskCounts(into: TaskCounts, counts: TaskCounts) {
  into.tasks_created += counts.tasks_created;
  into.tasks_succeeded += counts.tasks_succeeded;
  into.tasks_failed += counts.tasks_failed;
  into.tasks_canceled += counts.tasks_canceled;
}

const bucketKey = (range: BucketRange, column: string) =>
  sql.raw(`substr(${column}, 1, ${BUCKET_KEY_LENGTH[range.granularity]})`);

/** Every bucket of the range, empty ones included (as zeros), oldest first, and their totals. */
async function bucketsOf(db: Executor, scope: Scope, range: BucketRange) {
  const byStart = new Map<string, UsageBucket>(range.buckets.map((start) => [start, { start, ...zeroCounts() }]));
  const bucket = (key: string | null) =>
    key === null ? undefined : byStart.get(bucketStartOfKey(key, range.granularity));
  for (const row of await taskCounts(db, scope, range, bucketKey(range, "tasks.created_at"))) {
    const b = bucket(row.key);
    if (b) addTaskCounts(b, row.counts);
  }
  for (const row of await ledgerSums(db, scope, range, bucketKey(range, "ledger_entries.created_at"))) {
    const b = bucket(row.key);
    if (b) addCredits(b, row.type, row.total);
  }
  const data = [...byStart.values()];
  const totals = zeroCounts();
  for (const b of data) {
    addTaskCounts(totals, b);
    totals.credits_charged += b.credits_charged;
    totals.credits_refunded += b.credits_refunded;
    totals.credits_granted += b.credits_granted;
  }
  return { data, totals };
}

export async function accountUsage(db: Executor, accountId: string, range: BucketRange): Promise<AccountUsage> {
  const { data, totals } = await bucketsOf(db, { accountId }, range);
  return { object: "usage", granularity: range.granularity, start: range.start, end: range.end, data, totals };
}

/** The operators' report: the same buckets over every account (or one), with breakdowns. */
export async function adminUsage(db: Executor, range: BucketRange, accountId?: string): Promise<AdminUsage> {
  const scope: Scope = accountId ? { accountId } : { all: true };
  const { data, totals } = await bucketsOf(db, scope, range);

  const accounts = new Map<string, { account_id: string; name: string | null } & UsageCounts>();
  const account = (id: string) => entryOf(accounts, id, () => ({ account_id: id, name: null, ...zeroCounts() }));
  for (const row of await taskCounts(db, scope, range, sql.raw("tasks.account_id"))) {
    addTaskCounts(account(row.key as string), row.counts);
  }
  for (const row of await ledgerSums(db, scope, range, sql.raw("ledger_entries.account_id"))) {
    addCredits(account(row.key as string), row.type, row.total);
  }
  if (accounts.size > 0) {
    const names = await db
      .selectFrom("accounts")
      .select(["id", "name"])
      .where("id", "in", [...accounts.keys()])
      .execute();
    for (const { id, name } of names) account(id).name = name;
  }

  type ProviderRow = AdminUsage["by_provider"][number];
  const providers = new Map<string | null, ProviderRow & { credits_granted: number }>();
  const provider = (key: string | null) => entryOf(providers, key, () => ({ provider: key, ...zeroCounts() }));
  for (const row of await taskCounts(db, scope, range, sql.raw("tasks.provider"))) {
    addTaskCounts(provider(row.key), row.counts);
  }
  for (const row of await ledgerSums(db, scope, range, sql.raw("tasks.provider"), { joinTasks: true })) {
    addCredits(provider(row.key), row.type, row.total);
  }

  const reasons = await db
    .selectFrom("ledger_entries")
    .select([
      "ledger_entries.reason as reason",
      sql<number>`count(*)`.as("n"),
      sql<number>`sum(ledger_entries.amount)`.as("total"),
    ])
    .where(inScope(scope, "ledger_entries.account_id"))
    .where("ledger_entries.type", "=", "refund")
    .where("ledger_entries.created_at", ">=", range.start)
    .where("ledger_entries.created_at", "<", range.end)
    .groupBy("ledger_entries.reason")
    .execute();
  const byReason = reasons
    .map((r) => ({ reason: r.reason, count: Number(r.n), credits: Number(r.total) }))
    .sort((a, b) => b.credits - a.credits || String(a.reason).localeCompare(String(b.reason)));

  return {
    object: "usage",
    granularity: range.granularity,
    start: range.start,
    end: range.end,
    account_id: accountId ?? null,
    data,
    totals,
    by_account: [...accounts.values()].sort(
      (a, b) => b.credits_charged - a.credits_charged || cmp(a.account_id, b.account_id),
    ),
    by_provider: [...providers.values()]
      .map(({ credits_granted: _unused, ...rest }) => rest)
      .sort((a, b) => b.credits_charged - a.credits_charged || cmp(a.provider ?? "", b.provider ?? "")),
    refunds: {
      count: byReason.reduce((n, r) => n + r.count, 0),
      credits: byReason.reduce((n, r) => n + r.credits, 0),
      by_reason: byReason,
    },
  };
}

/** The map's value for `key`, made and stored first when there is none. */
function entryOf<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  const found = map.get(key);
  if (found !== undefined) return found;
  const made = make();
  map.set(key, made);
  return made;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
