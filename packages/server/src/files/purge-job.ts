/**
 * Removing a deleted file's bytes when the last task that used it ends. The task's terminal
 * transaction queues a purge job for each of its files that waits for it, so the job exists
 * exactly when the task's end committed; the job removes the bytes if no other queued or
 * processing task uses the file (another one's end queues its own job). Housekeeping
 * (FileService.collectGarbage) removes whatever a lost job left.
 */
import type { JobHandler, Queue } from "../queue/queue.js";
import type { Tx } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";
import type { FileService } from "./service.js";

export const PURGE_FILE_JOB = "files.purge";

/** Runs inside a task's terminal transaction (generations/transitions.ts OnTerminal). */
export async function queuePurgesAfter(
  trx: Tx,
  deps: { queue: Queue; files: FileService },
  task: Pick<TasksTable, "id" | "references_json">,
): Promise<void> {
  // Most tasks reference no file: no query for them.
  if (task.references_json === "[]") return;
  for (const fileId of await deps.files.pendingPurgesOf(trx, task.id)) {
    await deps.queue.enqueue(trx, { kind: PURGE_FILE_JOB, payload: { fileId } });
  }
}

export function purgeFileJob(files: FileService): JobHandler {
  return {
    async run(payload) {
      await files.purgeDeleted([String(payload.fileId)]);
      return undefined;
    },
  };
}
