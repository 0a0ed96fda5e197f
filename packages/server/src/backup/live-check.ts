/**
 * Is a server using this SQLite file? Every open connection to a WAL database holds a shared lock
 * on its -shm file for as long as it is open, idle or not; a connection in exclusive locking
 * mode cannot start a transaction while any other holds it. So an exclusive transaction that
 * fails at once with SQLITE_BUSY means another process has the database open. This needs no pid
 * file, and it cannot go stale: a killed process's locks go with it.
 */
import Database from "better-sqlite3";

export function isDatabaseInUse(file: string): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("COMMIT");
    return false;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") return true;
    // Not a database at all (or unreadable): nothing serves from it; the caller replaces it.
    return false;
  } finally {
    db?.close();
  }
}
