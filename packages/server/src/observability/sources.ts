/**
 * What a scrape reads of the shared queue: from the database, so any process reports the same
 * numbers. The read is queue/depth.ts's,
 * the same one GET /admin/v1/stats uses; here it runs under a statement timeout on PostgreSQL, so
 * a scrape of a struggling database stops there rather than adding to its load (metrics.ts also
 * bounds how long the scrape waits for it, on SQLite as well).
 */
import { PostgresAdapter, sql } from "kysely";
import { queueDepth } from "../queue/depth.js";
import type { Db } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { type JobCount, QUEUE_STATS_TIMEOUT_MS } from "./metrics.js";

/** PostgreSQL's bound on the scrape's queue read: just past the scrape's own wait. */
const STATEMENT_TIMEOUT_MS = QUEUE_STATS_TIMEOUT_MS + 500;

export function queueJobCounts(db: Db, driver: "table" | "graphile", clock: Clock): () => Promise<JobCount[]> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;
  return async () => {
    const depth = isPostgres
      ? await db.transaction().execute(async (trx) => {
          await sql`set local statement_timeout = ${sql.lit(STATEMENT_TIMEOUT_MS)}`.execute(trx);
          return queueDepth(trx, driver, clock.now());
        })
      : await queueDepth(db, driver, clock.now());
    return depth.rows.map((row) => ({
      kind: row.kind,
      state: row.state,
      count: row.count,
      ...(row.state === "waiting"
        ? { oldestAgeSeconds: Math.max(0, (depth.at.getTime() - row.earliestRunAt.getTime()) / 1000) }
        : {}),
    }));
  };
}
