/**
 * The check a create makes inside its own transaction that the files it references are still
 * live. References are resolved before that transaction (references.ts), so an account's
 * DELETE /api/v1/files/{id} may have committed in between; a task must never reference a file
 * whose bytes are about to go. On PostgreSQL the rows are locked FOR SHARE, so a delete that
 * comes after waits for the create and then sees its task (FileService.delete); SQLite runs one
 * write transaction at a time. The PostgreSQL create function makes the same check in SQL
 * (store/pg-create-live-files.sql.ts).
 */
import type { ErrorDetail } from "@framegate/contract";
import { SqliteAdapter } from "kysely";
import { ApiError } from "../errors.js";
import type { Executor } from "../store/db.js";

/** What a reference to a missing, foreign or deleted file is told: the same for all three. */
export const UNKNOWN_FILE_ISSUE = "names no file of this account; upload it with POST /api/v1/files";

/**
 * The ids among `fileIds` that are live files of the account. In a create's transaction on
 * PostgreSQL (`lock`), their rows stay locked against a delete until it commits.
 */
export async function liveFileIds(
  db: Executor,
  accountId: string,
  fileIds: string[],
  opts: { lock: boolean },
): Promise<Set<string>> {
  if (fileIds.length === 0) return new Set();
  let q = db
    .selectFrom("files")
    .select("id")
    .where("id", "in", [...new Set(fileIds)])
    .where("account_id", "=", accountId)
    .where("deleted_at", "is", null);
  if (opts.lock && !(db.getExecutor().adapter instanceof SqliteAdapter)) q = q.forShare();
  const rows = await q.execute();
  return new Set(rows.map((r) => r.id));
}

/** The validation error for the references (by position) whose files are not in `live`, if any. */
export function goneReferences(fileIds: string[], live: Set<string>): ApiError | undefined {
  const details: ErrorDetail[] = [];
  for (const [index, fileId] of fileIds.entries()) {
    if (!live.has(fileId))
      details.push({ path: `params.referenceMediaItems[${index}].url`, issue: UNKNOWN_FILE_ISSUE });
  }
  const first = details[0];
  if (!first) return undefined;
  return new ApiError("validation_failed", `Invalid reference media: ${first.path} ${first.issue}.`, { details });
}
