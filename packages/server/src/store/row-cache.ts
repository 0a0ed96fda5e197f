/**
 * Answers derived from one database row each, kept in memory until that row changes (SQLite).
 *
 * Clients poll: a task every few seconds for the minutes a video takes, the balance from
 * dashboards. Between two polls the row has almost always not changed, and reading it and
 * serializing it again was most of what such a GET cost beyond HTTP itself (issue 13). A RowCache
 * keeps the answer (the response body) each row was last served with, and stays exact:
 *
 * - this process's own writes: a TEMP trigger on the table (sync-paths.ts) forgets a row's answer
 *   from inside the UPDATE or DELETE that changes it, before its transaction commits;
 * - other connections' writes (another process, the CLI): PRAGMA data_version, read before every
 *   use, moves when one commits, and then every answer is forgotten;
 * - time: an answer that changes by itself at some moment (a task's reference whose file expires)
 *   is kept only until then;
 * - an answer is only ever stored from a read made while the connection was idle, in the same
 *   synchronous run as the version check: no write can land between the read and the store.
 *   While the connection is busy (a write transaction is open), reads go to the database.
 *
 * Every answer belongs to one account and is given to that account only; another account's lookup
 * misses (and the database then answers not_found). Bounded: the oldest answer leaves first. Rows
 * are inserted with fresh ids only, so inserts need no watch. On PostgreSQL (several processes
 * write, and no statement runs synchronously) there is none.
 */
import type { Db } from "./db.js";
import { dataVersionIfIdle, watchRowChanges } from "./sync-paths.js";

interface Entry {
  owner: string;
  body: string;
  /** Epoch ms from which the body may be out of date. */
  validUntil: number;
}

/** What a cache has done since start, for the metrics. */
export interface RowCacheStats {
  hits: number;
  misses: number;
  /** Lookups that went to the database because the connection was busy. */
  bypassed: number;
  entries: number;
}

export class RowCache {
  private readonly entries = new Map<string, Entry>();
  /** PRAGMA data_version at the last use; the entries were stored under it. */
  private version: number | undefined;
  private readonly counts = { hits: 0, misses: 0, bypassed: 0 };

  private constructor(
    private readonly db: Db,
    private readonly capacity: number,
  ) {}

  /**
   * A cache of answers made from rows of `table` (keyed by its `id` column) of an SQLite store;
   * undefined on PostgreSQL or with capacity 0.
   */
  static async open(db: Db, table: string, capacity: number): Promise<RowCache | undefined> {
    if (capacity <= 0) return undefined;
    const cache = new RowCache(db, capacity);
    const watched = await watchRowChanges(db, table, (id) => cache.entries.delete(id));
    return watched ? cache : undefined;
  }

  /**
   * The answer for `rowId` as `owner` sees it at `nowMs`: the kept one, else the one `read` makes
   * now, kept from then on. `read` runs in the same synchronous run as the version check, so
   * nothing can commit in between; it returns undefined when it cannot read at once (and may
   * throw, a not_found for instance). Undefined when the connection is busy or `read` could not
   * read: the caller then reads the usual way, and nothing is kept.
   */
  answer(
    rowId: string,
    owner: string,
    nowMs: number,
    read: () => { body: string; validUntil?: number } | undefined,
  ): string | undefined {
    if (!this.usable()) return undefined;
    const kept = this.kept(rowId, owner, nowMs);
    if (kept !== undefined) return kept;
    const made = read();
    if (made !== undefined) this.keep(rowId, owner, made.body, made.validUntil ?? Number.POSITIVE_INFINITY);
    return made?.body;
  }

  /**
   * Whether the cache can be used in this synchronous run: the connection is idle (a read now sees
   * committed rows only), and every answer still holds, the cache being emptied first if another
   * connection has committed since the last use. Counts a bypass when not.
   */
  private usable(): boolean {
    const version = dataVersionIfIdle(this.db);
    if (version === undefined) {
      this.counts.bypassed++;
      return false;
    }
    if (version !== this.version) {
      this.entries.clear();
      this.version = version;
    }
    return true;
  }

  private kept(rowId: string, owner: string, nowMs: number): string | undefined {
    const entry = this.entries.get(rowId);
    if (entry === undefined || entry.owner !== owner || nowMs >= entry.validUntil) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    return entry.body;
  }

  private keep(rowId: string, owner: string, body: string, validUntil: number): void {
    if (!this.entries.has(rowId) && this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(rowId, { owner, body, validUntil });
  }

  stats(): RowCacheStats {
    return { ...this.counts, entries: this.entries.size };
  }
}
