/**
 * The invariants of stored files, for `framegate verify` (ops/verify.ts). Read-only.
 *
 * - file_bytes: a file that can still be used (not deleted), or a deleted one whose bytes wait for
 *   a running task (purge_pending), has its bytes in storage.
 * - file objects (orphan_objects, with generations/invariants.ts): which stored files/… objects a
 *   file row still owns. Uploads in flight (tmp/…) are not files yet.
 */
import type { Findings } from "../ops/findings.js";
import type { Storage } from "../storage/storage.js";
import type { Executor } from "../store/db.js";

const PAGE = 500;
const STAT_CONCURRENCY = 8;

/** Files live under `files/<file id>.<extension>` (service.ts). */
export const FILE_PREFIX = "files/";
/** Uploads being received (`tmp/<file id>.upload`); housekeeping removes stale ones. */
export const UPLOAD_STAGING_PREFIX = "tmp/";

export async function checkFileBytes(db: Executor, storage: Storage, findings: Findings): Promise<void> {
  const check = findings.check("file_bytes", "files");
  let after = "";
  for (;;) {
    const files = await db
      .selectFrom("files")
      .select(["id", "storage_key", "deleted_at"])
      .where("id", ">", after)
      .where((eb) => eb.or([eb("deleted_at", "is", null), eb("purge_pending", "=", 1)]))
      .orderBy("id")
      .limit(PAGE)
      .execute();
    if (files.length === 0) return;
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const file = files[next++] as (typeof files)[number];
        check.checked++;
        if (!(await storage.stat(file.storage_key))) {
          const state = file.deleted_at === null ? "live" : "deleted, bytes kept for a running task";
          findings.violation(
            "file_bytes",
            file.id,
            `file ${file.id} (${state}): ${file.storage_key} is missing from storage`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, files.length) }, worker));
    after = (files.at(-1) as { id: string }).id;
  }
}

/** For stored objects under FILE_PREFIX: why no file owns each, or nothing when one does. */
export async function unreferencedFiles(db: Executor, keys: string[]): Promise<Map<string, string>> {
  // The key names its file (files/<id>.<extension>), so rows are found by primary key.
  const idOf = (key: string) => key.slice(FILE_PREFIX.length).replace(/\.[^./]*$/, "");
  const ids = [...new Set(keys.map(idOf))];
  const rows = ids.length
    ? await db
        .selectFrom("files")
        .select(["id", "storage_key", "deleted_at", "purge_pending"])
        .where("id", "in", ids)
        .execute()
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out = new Map<string, string>();
  for (const key of keys) {
    const file = byId.get(idOf(key));
    if (!file || file.storage_key !== key) out.set(key, "no file row has this storage key");
    else if (file.deleted_at !== null && Number(file.purge_pending) !== 1) {
      out.set(key, `file ${file.id} was deleted at ${file.deleted_at}`);
    }
  }
  return out;
}
