/**
 * Result retention: once a result's expires_at has passed, its signed URLs no longer work, so
 * its media are deleted from storage. The task keeps its metadata (sizes, hashes) for the record.
 */
import type { Logger } from "pino";
import type { Storage } from "../storage/storage.js";
import type { Db } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import type { StoredResult } from "./serialize.js";

const BATCH = 100;

/** Removes a task's stored result media (videos and posters) from storage; a no-op without a result. */
export async function deleteResultMedia(storage: Storage, result: string | null): Promise<void> {
  const media = result ? (JSON.parse(result) as StoredResult).media : [];
  for (const item of media) {
    await storage.delete(item.key);
    if (item.poster_key) await storage.delete(item.poster_key);
  }
}

/** Deletes the media of expired results; returns how many tasks were purged. */
export async function purgeExpiredResults(deps: {
  db: Db;
  storage: Storage;
  clock: Clock;
  log: Logger;
}): Promise<number> {
  const { db, storage, clock, log } = deps;
  let purged = 0;
  for (;;) {
    const now = clock.now().toISOString();
    const due = await db
      .selectFrom("tasks")
      .select(["id", "result"])
      .where("result_purged_at", "is", null)
      .where("result_expires_at", "<=", now)
      .limit(BATCH)
      .execute();
    for (const task of due) {
      await deleteResultMedia(storage, task.result);
      await db.updateTable("tasks").set({ result_purged_at: now }).where("id", "=", task.id).execute();
      purged++;
    }
    if (due.length < BATCH) break;
  }
  if (purged > 0) log.info({ purged }, "deleted expired result media");
  return purged;
}
