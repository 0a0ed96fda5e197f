/**
 * Newest-first keyset pagination shared by every list endpoint: order by (created_at, id)
 * descending, continue strictly after the cursor row, and fetch one extra row to know has_more.
 */
import { ApiError } from "../errors.js";

export interface Cursor {
  created_at: string;
  id: string;
}

/** Columns of the listed table, qualified when the query joins others. */
export interface PageColumns {
  createdAt: string;
  id: string;
}

export function unknownCursor(): ApiError {
  return new ApiError("validation_failed", "starting_after does not name one of your objects.", {
    details: [{ path: "starting_after", issue: "unknown id" }],
  });
}

/**
 * The cursor row that `starting_after` names, found by `lookup`, which must look only among the
 * caller's own rows; undefined without `starting_after`, a validation error when it names none.
 */
export async function resolveCursor(
  startingAfter: string | undefined,
  lookup: (id: string) => Promise<Cursor | undefined>,
): Promise<Cursor | undefined> {
  if (!startingAfter) return undefined;
  const cursor = await lookup(startingAfter);
  if (!cursor) throw unknownCursor();
  return cursor;
}

/**
 * Runs `query` (a Kysely select over the listed table) as one page. The cursor must already be
 * resolved within the caller's account, so a foreign id can never position a page.
 */
export async function newestFirst<T>(
  // biome-ignore lint/suspicious/noExplicitAny: any Kysely select builder over a table with created_at and id
  query: any,
  cursor: Cursor | undefined,
  limit: number,
  columns: PageColumns = { createdAt: "created_at", id: "id" },
): Promise<{ data: T[]; has_more: boolean }> {
  const rows = (await newestFirstQuery(query, cursor, limit, columns).execute()) as T[];
  return { data: rows.slice(0, limit), has_more: rows.length > limit };
}

/** The statement newestFirst runs: `limit + 1` rows after the cursor, newest first (tests read its plan). */
export function newestFirstQuery(
  // biome-ignore lint/suspicious/noExplicitAny: any Kysely select builder over a table with created_at and id
  query: any,
  cursor: Cursor | undefined,
  limit: number,
  columns: PageColumns = { createdAt: "created_at", id: "id" },
  // biome-ignore lint/suspicious/noExplicitAny: the same builder, narrowed
): any {
  let q = query;
  if (cursor) {
    // The leading `<=` restates the OR's bound on its own, so the planner starts the index walk at
    // the cursor instead of walking down from the newest row (SQLite does not derive it from the OR).
    q = q.where(columns.createdAt, "<=", cursor.created_at).where(
      // biome-ignore lint/suspicious/noExplicitAny: expression builder of the same query
      (eb: any) =>
        eb.or([
          eb(columns.createdAt, "<", cursor.created_at),
          eb.and([eb(columns.createdAt, "=", cursor.created_at), eb(columns.id, "<", cursor.id)]),
        ]),
    );
  }
  return q
    .orderBy(columns.createdAt, "desc")
    .orderBy(columns.id, "desc")
    .limit(limit + 1);
}
