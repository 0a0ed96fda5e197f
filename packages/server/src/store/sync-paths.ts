/**
 * The SQLite store's synchronous paths, reachable from the Kysely executors queries are written
 * against (CachingSqliteDriver.readIfIdle and runHeld):
 *
 * - the root `Db` of an SQLite store reads at once when its connection is idle;
 * - a transaction registered with `holdConnection` (the create's group commit) runs its prepared
 *   statements at once, on the connection it holds, until `releaseConnection`.
 *
 * Anything else (PostgreSQL, other transactions, a busy connection) takes Kysely's ordinary path.
 *
 * Two more let a cache of rows stay exact (generations/answer-cache.ts): a watch on this
 * process's own row changes, and the version that moves when another connection commits.
 */
import type { CachingSqliteDriver } from "./sqlite-driver.js";

const drivers = new WeakMap<object, CachingSqliteDriver>();
const held = new WeakMap<object, CachingSqliteDriver>();

export function registerSyncPaths(db: object, driver: CachingSqliteDriver): void {
  drivers.set(db, driver);
}

/**
 * The rows of a reading statement, run at once when `db` is an SQLite store's idle connection;
 * undefined when the caller must run it the usual way (PostgreSQL, a transaction, a busy connection).
 */
export function readIfIdle<Row>(db: object, sql: string, parameters: readonly unknown[]): Row[] | undefined {
  return drivers.get(db)?.readIfIdle(sql, parameters) as Row[] | undefined;
}

/**
 * Marks `trx`, an open transaction of the SQLite store `db`, as one whose prepared statements may
 * run straight on the connection it holds. Call `releaseConnection(trx)` before its COMMIT or
 * ROLLBACK: after that the transaction no longer holds the connection. No effect on PostgreSQL.
 */
export function holdConnection(trx: object, db: object): void {
  const driver = drivers.get(db);
  if (driver) held.set(trx, driver);
}

export function releaseConnection(trx: object): void {
  held.delete(trx);
}

/** The rows of a statement run at once in a transaction marked by holdConnection; else undefined. */
export function runIfHeld<Row>(trx: object, sql: string, parameters: readonly unknown[]): Row[] | undefined {
  return held.get(trx)?.runHeld(sql, parameters) as Row[] | undefined;
}

/**
 * SQLite: PRAGMA data_version, when `db`'s connection is idle; it moves only when another
 * connection commits. Undefined on PostgreSQL and while the connection is busy.
 */
export function dataVersionIfIdle(db: object): number | undefined {
  return drivers.get(db)?.dataVersionIfIdle();
}

/**
 * SQLite: calls `onChange(id)` whenever this process's connection updates or deletes a row of
 * `table`, from inside the statement. Resolves false on PostgreSQL, where nothing is watched.
 */
export async function watchRowChanges(db: object, table: string, onChange: (id: string) => void): Promise<boolean> {
  const driver = drivers.get(db);
  if (!driver) return false;
  await driver.watchRowChanges(table, onChange);
  return true;
}
