/**
 * The SQLite store's synchronous read path (CachingSqliteDriver.readIfIdle), reachable from the
 * `Db` that queries are written against. Only the root `Db` of an SQLite store is registered: a
 * transaction's executor, or a PostgreSQL `Db`, always takes the ordinary asynchronous path.
 */
import type { CachingSqliteDriver } from "./sqlite-driver.js";

const drivers = new WeakMap<object, CachingSqliteDriver>();

export function registerIdleReads(db: object, driver: CachingSqliteDriver): void {
  drivers.set(db, driver);
}

/**
 * The rows of a reading statement, run at once when `db` is an SQLite store's idle connection;
 * undefined when the caller must run it the usual way (PostgreSQL, a transaction, a busy connection).
 */
export function readIfIdle<Row>(db: object, sql: string, parameters: readonly unknown[]): Row[] | undefined {
  return drivers.get(db)?.readIfIdle(sql, parameters) as Row[] | undefined;
}
