/**
 * A consistent copy of a live SQLite database through SQLite's online backup API
 * (better-sqlite3's `db.backup()`), not a file copy: a copy of the file while the server writes
 * could tear pages, and would miss whatever is still only in the WAL.
 *
 * The backup runs on a connection of its own in a worker thread. It copies every page in ONE
 * step: SQLite restarts an incremental backup whenever another connection commits between two
 * steps, so a server that keeps writing could starve a step-by-step copy forever. One step
 * holds a single read transaction for the whole copy; in WAL mode that blocks no reader or writer
 * of the serving process (only a checkpoint cannot rewind the WAL past it until it ends). The
 * thread keeps that work off the event loop of the process that asked for it (the server, for
 * scheduled backups).
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
const source = new Database(workerData.source, { fileMustExist: true });
// The serving connection may hold the write lock for a moment; the backup's read does not need
// it in WAL mode, but opening may have to wait for a recovery or a checkpoint.
source.pragma("busy_timeout = 10000");
source
  .backup(workerData.destination, { progress: () => 0x7fffffff })
  .then((progress) => {
    source.close();
    parentPort.postMessage({ ok: true, pages: progress.totalPages });
  })
  .catch((error) => {
    try { source.close(); } catch {}
    parentPort.postMessage({ ok: false, message: String(error && error.message || error), code: error && error.code });
  });
`;

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

/** Copies `source` (a SQLite file, possibly in use) to `destination` (must not exist); resolves with its page count. */
export function snapshotSqlite(source: string, destination: string): Promise<{ pages: number }> {
  const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
  return new Promise((resolve, reject) => {
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { driverPath, source, destination } });
    let settled = false;
    worker.once("message", (message: { ok: true; pages: number } | { ok: false; message: string; code?: string }) => {
      settled = true;
      if (message.ok) resolve({ pages: message.pages });
      else
        reject(
          new SnapshotError(`the SQLite backup failed: ${message.code ? `${message.code}: ` : ""}${message.message}`),
        );
    });
    worker.once("error", (error) => {
      settled = true;
      reject(new SnapshotError(`the SQLite backup thread failed: ${error.message}`));
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new SnapshotError(`the SQLite backup thread exited (code ${code}) before it finished`));
    });
  });
}
