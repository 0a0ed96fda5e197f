/**
 * The answers of GET /api/v1/generations/{id} kept in memory between polls, on SQLite.
 *
 * Clients poll a task every few seconds for minutes, and between two polls it has almost always
 * not changed. Reading its row and serializing it again was a third of that GET's CPU time
 * (issue 13). This cache keeps the JSON each task was last answered with, and stays exact:
 *
 * - this process's own writes: a TEMP trigger on `tasks` (store/sync-paths.ts) forgets a task
 *   from inside the UPDATE or DELETE that changes it, before its transaction commits;
 * - other connections' writes (another process, the CLI): PRAGMA data_version, read before every
 *   use, moves when one commits, and then everything is forgotten;
 * - time: an answer changes by itself when a reference's file expires (its URL turns null), so
 *   an entry lasts until the first such expiry;
 * - an entry is only ever filled from a read made while the connection was idle, in the same
 *   synchronous run as the version check: no write can land between the read and the store.
 *   While the connection is busy (a write transaction is open), reads go to the database.
 *
 * Entries are looked up by task id and answered only to the account that owns the task; another
 * account's lookup misses and goes to the database, which answers not_found. Bounded: the oldest
 * entry leaves first. Tasks are only ever inserted with fresh ids, so inserts need no watch.
 * On PostgreSQL (several processes write, and no statement runs synchronously) there is none.
 */
import type { Db } from "../store/db.js";
import { dataVersionIfIdle, watchRowChanges } from "../store/sync-paths.js";

interface Entry {
  accountId: string;
  body: string;
  /** Epoch ms from which the body may be out of date (a reference's file has expired). */
  validUntil: number;
}

/** What the cache has done since start, for the metrics. */
export interface AnswerCacheStats {
  hits: number;
  misses: number;
  /** Lookups that went to the database because the connection was busy. */
  bypassed: number;
  entries: number;
}

export class GenerationAnswerCache {
  private readonly entries = new Map<string, Entry>();
  /** PRAGMA data_version at the last use; entries were filled under it. */
  private version: number | undefined;
  private readonly counts = { hits: 0, misses: 0, bypassed: 0 };

  private constructor(
    private readonly db: Db,
    private readonly capacity: number,
  ) {}

  /** The cache for an SQLite store, watching its task rows; undefined on PostgreSQL or with capacity 0. */
  static async open(db: Db, capacity: number): Promise<GenerationAnswerCache | undefined> {
    if (capacity <= 0) return undefined;
    const cache = new GenerationAnswerCache(db, capacity);
    const watched = await watchRowChanges(db, "tasks", (id) => cache.entries.delete(id));
    return watched ? cache : undefined;
  }

  /**
   * Whether the cache can be used in this synchronous run: the connection is idle (a read now sees
   * committed rows only), and every entry still holds, the cache being emptied first if another
   * connection has committed since the last use. Counts a bypass when not.
   */
  usable(): boolean {
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

  /** The task's last answer to this account, if it still holds at `nowMs`. Call after usable(). */
  get(accountId: string, taskId: string, nowMs: number): string | undefined {
    const entry = this.entries.get(taskId);
    if (entry === undefined || entry.accountId !== accountId || nowMs >= entry.validUntil) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    return entry.body;
  }

  /** Keeps an answer built from a row read in the same synchronous run as usable(). */
  set(accountId: string, taskId: string, body: string, validUntil: number): void {
    if (!this.entries.has(taskId) && this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(taskId, { accountId, body, validUntil });
  }

  stats(): AnswerCacheStats {
    return { ...this.counts, entries: this.entries.size };
  }
}
