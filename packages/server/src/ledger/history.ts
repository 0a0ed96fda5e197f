/**
 * An account's ledger, newest first, each entry with the balance right after it.
 *
 * Entries are ordered by (created_at, id), a total order; the balance after an entry is the sum
 * of every entry up to it in that order. Since the balance always equals the sum of all entries
 * (ledger.ts), that is also the current balance less the entries after it. A page is read in two
 * steps, each bounded by the page rather than by the account's history:
 * 1. the page itself: the filtered entries, newest first, after the cursor (store/pagination.ts);
 * 2. the balances: the current balance, less the sum of the entries newer than the page's first
 *    entry, less a running (window) sum over the entries between the page's first and last, all
 *    in one statement so that PostgreSQL reads them from one snapshot. Each condition on
 *    (created_at, id) carries a plain range on created_at, so the index seeks to its start. The window runs over that
 *    span only: SQLite materialises a window's whole input, so a window over every entry newer
 *    than the page cost ~0.9 s for the first page of an account with 200,000 entries; this takes
 *    under a millisecond there (bench/usage-history.ts).
 * An entry committed after step 1 with an older created_at (its transaction began earlier) is
 * counted where it belongs in step 2, so the balances always describe one state of the ledger.
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";
import { type Cursor, newestFirst, resolveCursor } from "../store/pagination.js";
import type { LedgerEntriesTable } from "../store/schema.js";

export type LedgerEntryType = LedgerEntriesTable["type"];

export interface LedgerEntryObject {
  id: string;
  object: "ledger_entry";
  type: LedgerEntryType;
  amount: number;
  balance_after: number;
  task_id: string | null;
  reason: string | null;
  created_at: string;
}

export interface LedgerQuery {
  limit: number;
  startingAfter?: string;
  types?: LedgerEntryType[];
  /** Inclusive lower bound on created_at (stored ISO form). */
  createdAfter?: string;
  /** Exclusive upper bound on created_at (stored ISO form). */
  createdBefore?: string;
}

export async function listLedgerEntries(
  db: Executor,
  accountId: string,
  query: LedgerQuery,
): Promise<{ data: LedgerEntryObject[]; has_more: boolean }> {
  const cursor = await resolveCursor(query.startingAfter, (id) =>
    db
      .selectFrom("ledger_entries")
      .select(["created_at", "id"])
      .where("id", "=", id)
      .where("account_id", "=", accountId)
      .executeTakeFirst(),
  );

  let q = db
    .selectFrom("ledger_entries")
    .select(["id", "type", "amount", "task_id", "reason", "created_at"])
    .where("account_id", "=", accountId);
  if (query.types && query.types.length > 0) q = q.where("type", "in", query.types);
  if (query.createdAfter) q = q.where("created_at", ">=", query.createdAfter);
  if (query.createdBefore) q = q.where("created_at", "<", query.createdBefore);
  // Implied by the cursor's own condition, but as a plain range it lets the index start there.
  if (cursor) q = q.where("created_at", "<=", cursor.created_at);
  const page = await newestFirst<Omit<LedgerEntriesTable, "account_id">>(q, cursor, query.limit);

  const balances = await balancesAfter(db, accountId, page.data);
  return {
    data: page.data.map((row) => serializeEntry(row, balances.get(row.id) ?? 0)),
    has_more: page.has_more,
  };
}

/**
 * The balance right after each of `rows` (one page, newest first), by entry id. The window sums
 * every entry of the span, filtered out of the page or not; only the page's rows are returned.
 */
async function balancesAfter(db: Executor, accountId: string, rows: Cursor[]): Promise<Map<string, number>> {
  const newest = rows[0];
  const oldest = rows.at(-1);
  if (!newest || !oldest) return new Map();
  const { rows: found } = await sql<{ id: string; balance_after: number | string }>`
    select w.id, w.balance_after from (select s.id,
      (select balance from accounts where id = ${accountId})
      - (select coalesce(sum(n.amount), 0) from ledger_entries n
          where n.account_id = ${accountId} and n.created_at >= ${newest.created_at}
            and (n.created_at > ${newest.created_at} or n.id > ${newest.id}))
      - coalesce(sum(s.amount) over (order by s.created_at desc, s.id desc rows between unbounded preceding and 1 preceding), 0)
        as balance_after
    from ledger_entries s
    where s.account_id = ${accountId}
      and s.created_at between ${oldest.created_at} and ${newest.created_at}
      and (s.created_at < ${newest.created_at} or s.id <= ${newest.id})
      and (s.created_at > ${oldest.created_at} or s.id >= ${oldest.id})
    ) w
    where w.id in (${sql.join(rows.map((r) => r.id))})
  `.execute(db);
  return new Map(found.map((r) => [r.id, Number(r.balance_after)]));
}

function serializeEntry(row: Omit<LedgerEntriesTable, "account_id">, balanceAfter: number): LedgerEntryObject {
  return {
    id: row.id,
    object: "ledger_entry",
    type: row.type,
    amount: Number(row.amount),
    balance_after: balanceAfter,
    task_id: row.task_id,
    reason: row.reason,
    created_at: row.created_at,
  };
}
