/**
 * Uploaded (or fetched) reference files: streaming into storage under a hard size cap, content
 * inspection, policy checks, and the owner-only file object. Nothing is recorded until every
 * check has passed; a rejected upload leaves no object and no row behind.
 *
 * Inspection (sniffing, ffprobe) needs the bytes in a local file. With local storage the upload
 * is received as a temporary storage object and renamed into place once accepted; with a storage
 * that has no local paths (S3) it is spooled to a local directory, inspected there and only then
 * uploaded under its final key, so the bucket never holds an unchecked upload.
 *
 * Account quotas (accounts/quotas.ts) bound the bytes and number of an account's live files
 * (not deleted, not expired). They are checked early without a lock, so an account that is
 * full is refused before its upload is read or inspected, and decisively when the row is
 * inserted: under the account's lock, in the insert's transaction.
 */
import { readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import {
  checkImageConstraints,
  type FileDeletion,
  type FileKind,
  type FileObject,
  type MediaLimit,
  type ModelEntry,
  uploadLimit,
} from "@framegate/contract";
import type { ExpressionBuilder } from "kysely";
import type { Logger } from "pino";
import {
  fileBytesQuotaExceeded,
  fileCountQuotaExceeded,
  lockQuotas,
  type Quotas,
  readQuotas,
} from "../accounts/quotas.js";
import { ApiError } from "../errors.js";
import { extensionFor } from "../media/mime.js";
import type { Metrics } from "../observability/metrics.js";
import { FsStorage } from "../storage/fs.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Storage } from "../storage/storage.js";
import type { Db, Executor } from "../store/db.js";
import { newestFirst, resolveCursor } from "../store/pagination.js";
import type { Database, FilesTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import { type InspectionPool, InspectionPoolBusy } from "./inspect/pool.js";
import type { Inspection } from "./inspect/types.js";
import type { DurationTokens } from "./tokens.js";

export interface ReceivedUpload {
  fileId: string;
  /** Key of the received bytes in the staging storage (see FileService.staging). */
  tmpKey: string;
  size: number;
  sha256: string;
}

export interface AcceptInput {
  kind: FileKind;
  model: ModelEntry | undefined;
  name: string | null;
  clientRequestId: string | null;
  sourceUrl?: string;
}

export interface FileListQuery {
  limit: number;
  startingAfter?: string;
  kind?: FileKind;
}

/** How many of the tasks still using a deleted file its answer names. */
const PENDING_TASKS_SHOWN = 20;

/** What a delete did: 200 when the bytes are gone, 202 when running tasks keep them for now. */
export interface DeleteOutcome {
  status: 200 | 202;
  body: FileDeletion;
}

export interface FileServiceDeps {
  db: Db;
  clock: Clock;
  storage: Storage;
  signer: UrlSigner;
  tokens: DurationTokens;
  ffmpegPath: string;
  /** Inspects files in worker threads, each within its time budget (one pool per server). */
  inspector: InspectionPool;
  retentionMs: number;
  /** Defaults of the account quotas; here maxFileBytes and maxFiles count. */
  quotas: Quotas;
  log: Logger;
  /** Where uploads wait for inspection when the storage has no local paths; default: the OS temp dir. */
  spoolDir?: string;
  /** Where accepted bytes and inspection times are counted. */
  metrics?: Metrics;
}

/**
 * No `Connection: close` here: Node would destroy the socket as soon as the answer is written,
 * with the client still sending, and the reset often destroys the 413 before the client reads
 * it. Without it, @hono/node-server drains the rest of the body for a while (500 ms, 64 MB)
 * and then closes the connection, so the client gets the answer.
 */
export function fileTooLarge(limitBytes: number, what = "The file"): ApiError {
  const mb = Math.round((limitBytes / 1024 / 1024) * 10) / 10;
  return new ApiError("file_too_large", `${what} is larger than the ${mb} MB (${limitBytes} bytes) allowed.`);
}

/** What an account's live files take: their number and bytes. */
interface FileUsage {
  count: number;
  bytes: number;
}

/** The quota error for storing `size` more bytes (undefined: any file at all), or undefined when it fits. */
function quotaProblem(quotas: Quotas, usage: FileUsage, size: number | undefined): ApiError | undefined {
  if (usage.count >= quotas.maxFiles) return fileCountQuotaExceeded(usage.count, quotas.maxFiles);
  if (usage.bytes + (size ?? 1) > quotas.maxFileBytes) {
    return fileBytesQuotaExceeded(size, usage.bytes, quotas.maxFileBytes);
  }
  return undefined;
}

/**
 * A received upload waits under tmp/ only while it is inspected (seconds, bounded by
 * INSPECT_TIMEOUT); one untouched for this long was left by a process that died meanwhile.
 */
const STALE_UPLOAD_MS = 3600_000;

/** Passes bytes through and fails as soon as more than `maxBytes` went by. */
function sizeCap(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > maxBytes) done(fileTooLarge(maxBytes));
      else done(null, chunk);
    },
  });
}

export class FileService {
  /** Where received uploads wait for inspection: the storage itself, or a local spool. */
  private readonly staging: Storage;

  constructor(private readonly deps: FileServiceDeps) {
    this.staging =
      deps.storage.localPath("tmp/probe") !== undefined
        ? deps.storage
        : new FsStorage(deps.spoolDir ?? join(tmpdir(), "framegate-uploads"));
  }

  /** Streams `source` into a temporary local file; memory use does not depend on the file size. */
  async receive(source: Readable, maxBytes: number): Promise<ReceivedUpload> {
    const fileId = newId("file");
    const tmpKey = `tmp/${fileId}.upload`;
    const cap = sizeCap(maxBytes);
    source.on("error", (error) => cap.destroy(error));
    // The source can fail before putStream's pipeline listens (it awaits a mkdir first); the
    // pipeline still sees the destroyed stream and rejects, but an unheard 'error' would crash us.
    cap.on("error", () => {});
    try {
      const stored = await this.staging.putStream(tmpKey, source.pipe(cap));
      return { fileId, tmpKey, size: stored.size, sha256: stored.sha256 };
    } catch (error) {
      source.resume();
      await this.staging.delete(tmpKey).catch(() => {});
      throw error;
    }
  }

  /**
   * Refuses at once (quota_exceeded) when the account cannot store another file, so a full
   * account's upload is not read at all. Advisory: the check at insert decides.
   */
  async assertRoomForAnotherFile(accountId: string): Promise<void> {
    const quotas = await readQuotas(this.deps.db, accountId, this.deps.quotas);
    const problem = quotaProblem(quotas, await this.usage(this.deps.db, accountId), undefined);
    if (problem) throw problem;
  }

  private async usage(db: Executor, accountId: string): Promise<FileUsage> {
    const row = await db
      .selectFrom("files")
      .select((eb) => [eb.fn.countAll<number>().as("count"), eb.fn.sum<number | null>("size_bytes").as("bytes")])
      .where("account_id", "=", accountId)
      .where("deleted_at", "is", null)
      .where("expires_at", ">", this.deps.clock.now().toISOString())
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), bytes: Number(row.bytes ?? 0) };
  }

  async discard(upload: ReceivedUpload): Promise<void> {
    await this.staging.delete(upload.tmpKey).catch(() => {});
  }

  /** Puts the accepted upload under its final key in storage. */
  private async commit(upload: ReceivedUpload, key: string): Promise<void> {
    const { storage } = this.deps;
    if (this.staging === storage) {
      await storage.move(upload.tmpKey, key);
      return;
    }
    const stored = await storage.putFile(key, this.stagedPath(upload));
    if (stored.sha256 !== upload.sha256 || stored.size !== upload.size) {
      await storage.delete(key).catch(() => {});
      throw new Error(`upload ${upload.fileId} changed while being stored`);
    }
    await this.discard(upload);
  }

  private stagedPath(upload: ReceivedUpload): string {
    const path = this.staging.localPath(upload.tmpKey);
    if (!path) throw new Error("file inspection needs a local copy");
    return path;
  }

  /** Checks a received upload against the kind and model policy; stores it, or discards it and throws. */
  async accept(accountId: string, upload: ReceivedUpload, input: AcceptInput): Promise<FileObject> {
    try {
      return await this.check(accountId, upload, input);
    } catch (error) {
      await this.discard(upload);
      throw error;
    }
  }

  private async check(accountId: string, upload: ReceivedUpload, input: AcceptInput): Promise<FileObject> {
    const { storage, db, clock } = this.deps;
    const limit = policyFor(input.kind, input.model);
    if (upload.size > limit.max_bytes) throw fileTooLarge(limit.max_bytes);
    // Before inspection, which costs far more than this query.
    const early = quotaProblem(
      await readQuotas(db, accountId, this.deps.quotas),
      await this.usage(db, accountId),
      upload.size,
    );
    if (early) throw early;
    const inspection = await this.inspect(upload, input.kind, limit);
    if (!inspection.ok) throw new ApiError(inspection.code, inspection.message);
    if (input.model && input.kind === "image" && inspection.width && inspection.height) {
      const problem = checkImageConstraints(limit, inspection.width, inspection.height);
      if (problem) {
        throw new ApiError("validation_failed", `${input.model.id} cannot use this image: ${problem}.`, {
          details: [{ path: "file", issue: problem }],
        });
      }
    }
    const now = clock.now();
    const row: FilesTable = {
      id: upload.fileId,
      account_id: accountId,
      kind: input.kind,
      mime_type: inspection.mimeType,
      size_bytes: upload.size,
      sha256: upload.sha256,
      width: inspection.width,
      height: inspection.height,
      duration_seconds: inspection.durationSeconds,
      storage_key: `files/${upload.fileId}.${extensionFor(inspection.mimeType)}`,
      name: input.name,
      client_request_id: input.clientRequestId,
      source_url: input.sourceUrl ?? null,
      created_at: now.toISOString(),
      expires_at: addMs(now, this.deps.retentionMs).toISOString(),
      deleted_at: null,
      purge_pending: 0,
    };
    await this.commit(upload, row.storage_key);
    try {
      await db.transaction().execute(async (trx) => {
        const quotas = await lockQuotas(trx, accountId, this.deps.quotas);
        const problem = quotaProblem(quotas, await this.usage(trx, accountId), upload.size);
        if (problem) throw problem;
        await trx.insertInto("files").values(row).execute();
      });
    } catch (error) {
      await storage.delete(row.storage_key).catch(() => {});
      throw error;
    }
    this.deps.metrics?.recordUploadAccepted(input.kind, upload.size);
    return this.serialize(row);
  }

  /** Runs inspection in the pool; a full pool is a temporary refusal, not a failure. */
  private async inspect(upload: ReceivedUpload, kind: FileKind, limit: MediaLimit): Promise<Inspection> {
    const startedAt = performance.now();
    try {
      const { inspection, threadId } = await this.deps.inspector.inspect(this.stagedPath(upload), {
        kind,
        allowedMimeTypes: limit.mime_types,
        ffmpegPath: this.deps.ffmpegPath,
      });
      const ms = performance.now() - startedAt;
      this.deps.log.debug({ fileId: upload.fileId, threadId, ms: Math.round(ms), ok: inspection.ok }, "file inspected");
      this.deps.metrics?.recordInspection(kind, inspection.ok ? "accepted" : "rejected", ms / 1000);
      return inspection;
    } catch (error) {
      const busy = error instanceof InspectionPoolBusy;
      this.deps.metrics?.recordInspection(kind, busy ? "busy" : "error", (performance.now() - startedAt) / 1000);
      if (!busy) throw error;
      throw new ApiError("service_unavailable", "Too many files are being inspected right now; retry shortly.", {
        headers: { "Retry-After": String(error.retryAfterSeconds) },
      });
    }
  }

  serialize(row: FilesTable): FileObject {
    const expiresAt = new Date(row.expires_at);
    const hasDuration = row.kind !== "image" && row.duration_seconds !== null;
    return {
      id: row.id,
      object: "file",
      kind: row.kind,
      mime_type: row.mime_type,
      size_bytes: row.size_bytes,
      sha256: row.sha256,
      width: row.width,
      height: row.height,
      duration_seconds: hasDuration ? row.duration_seconds : null,
      duration_token:
        hasDuration && row.duration_seconds !== null
          ? this.deps.tokens.issue(row.id, row.duration_seconds, expiresAt)
          : null,
      url: this.deps.signer.signMediaUrl(row.storage_key, expiresAt),
      name: row.name,
      client_request_id: row.client_request_id,
      created_at: row.created_at,
      expires_at: row.expires_at,
    };
  }

  /** The account's live file, or undefined (missing, another account's, or garbage-collected). */
  async findOwned(accountId: string, fileId: string): Promise<FilesTable | undefined> {
    return this.deps.db
      .selectFrom("files")
      .selectAll()
      .where("id", "=", fileId)
      .where("account_id", "=", accountId)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
  }

  async get(accountId: string, fileId: string): Promise<FileObject> {
    const row = await this.findOwned(accountId, fileId);
    if (!row) throw new ApiError("not_found", "File not found.");
    return this.serialize(row);
  }

  /** The account's live files, newest first (deleted and collected ones are history, not listed). */
  async list(accountId: string, query: FileListQuery): Promise<{ data: FileObject[]; has_more: boolean }> {
    const { db } = this.deps;
    let q = db.selectFrom("files").selectAll().where("account_id", "=", accountId).where("deleted_at", "is", null);
    if (query.kind) q = q.where("kind", "=", query.kind);
    const cursor = await resolveCursor(query.startingAfter, (id) =>
      db
        .selectFrom("files")
        .select(["created_at", "id"])
        .where("id", "=", id)
        .where("account_id", "=", accountId)
        .executeTakeFirst(),
    );
    const page = await newestFirst<FilesTable>(q, cursor, query.limit);
    return { data: page.data.map((row) => this.serialize(row)), has_more: page.has_more };
  }

  /**
   * Deletes the account's file: from now on it is not listed, not usable by a new task, and not
   * counted by the quotas. Its bytes go now, unless queued or processing tasks still use it (a
   * submit, a retry or the upstream's own fetch of the URL may still read them): then the file is
   * left marked purge_pending and its bytes go when the last of those tasks ends (a purge job
   * queued by that task's terminal transition; housekeeping retries whatever is left over, so a
   * crash between the mark and the removal delays it, never leaks it).
   *
   * Against a create that references the file at the same moment: the mark is an UPDATE of the
   * file's row, and a create locks the rows of its files (FOR SHARE on PostgreSQL; SQLite runs one
   * writer at a time) and checks they are not deleted. A create that committed first is found
   * below among the tasks still using the file; one that comes after fails as for an unknown file.
   */
  async delete(accountId: string, fileId: string): Promise<DeleteOutcome> {
    const { db, clock } = this.deps;
    const now = clock.now().toISOString();
    const users = await db.transaction().execute(async (trx) => {
      const marked = await trx
        .updateTable("files")
        .set({ deleted_at: now, purge_pending: 1 })
        .where("id", "=", fileId)
        .where("account_id", "=", accountId)
        .where("deleted_at", "is", null)
        .executeTakeFirst();
      // Missing, another account's, or deleted already: all the same 404, as for GET.
      if (Number(marked.numUpdatedRows) !== 1) throw new ApiError("not_found", "File not found.");
      return trx
        .selectFrom("task_references")
        .innerJoin("tasks", "tasks.id", "task_references.task_id")
        .select("tasks.id")
        .distinct()
        .where("task_references.file_id", "=", fileId)
        .where("tasks.status", "in", ["queued", "processing"])
        .orderBy("tasks.id")
        .limit(PENDING_TASKS_SHOWN)
        .execute();
    });
    // The delete has committed: a storage that fails now leaves the removal to housekeeping, and
    // the answer says the bytes are still pending rather than failing a delete that happened.
    const removed =
      users.length === 0 &&
      (await this.purgeDeleted([fileId]).catch((error) => {
        this.deps.log.warn({ fileId, err: error }, "could not remove a deleted file's bytes yet");
        return 0;
      })) === 1;
    if (removed) {
      return {
        status: 200,
        body: { id: fileId, object: "file", deleted: true, storage: "removed", pending_tasks: [] },
      };
    }
    return {
      status: 202,
      body: {
        id: fileId,
        object: "file",
        deleted: true,
        storage: "pending_removal",
        pending_tasks: users.map((u) => u.id),
      },
    };
  }

  /**
   * Removes the bytes of deleted files (all pending ones, or those of `fileIds`) that no queued
   * or processing task uses; returns how many. Safe to run anywhere, any number of times: a
   * deleted file gains no new task, so once none is running none will be, and removing an object
   * twice is a no-op. A file whose removal fails stays pending (the others still go) and the call
   * then throws, so a purge job is retried; housekeeping retries too.
   */
  async purgeDeleted(fileIds?: string[]): Promise<number> {
    const { db, storage } = this.deps;
    if (fileIds?.length === 0) return 0;
    let q = db
      .selectFrom("files")
      .select(["id", "storage_key"])
      .where("purge_pending", "=", 1)
      .where(({ not, exists, selectFrom }) => not(exists(runningUsers(selectFrom))));
    if (fileIds) q = q.where("id", "in", fileIds);
    const due = await q.limit(500).execute();
    let removed = 0;
    let failure: unknown;
    for (const file of due) {
      try {
        await storage.delete(file.storage_key);
        await db.updateTable("files").set({ purge_pending: 0 }).where("id", "=", file.id).execute();
        removed++;
      } catch (error) {
        failure ??= error;
      }
    }
    if (removed > 0) this.deps.log.info({ files: removed }, "removed the bytes of deleted files");
    if (failure) throw failure;
    return removed;
  }

  /** The deleted files of `task` whose bytes wait for it (and maybe others) to end. */
  async pendingPurgesOf(db: Executor, taskId: string): Promise<string[]> {
    const rows = await db
      .selectFrom("task_references")
      .innerJoin("files", "files.id", "task_references.file_id")
      .select("files.id")
      .where("task_references.task_id", "=", taskId)
      .where("files.purge_pending", "=", 1)
      .execute();
    return [...new Set(rows.map((r) => r.id))];
  }

  /** A still-valid file this account fetched from `sourceUrl` before, to avoid fetching twice. */
  async findFetched(accountId: string, sourceUrl: string): Promise<FilesTable | undefined> {
    return this.deps.db
      .selectFrom("files")
      .selectAll()
      .where("account_id", "=", accountId)
      .where("source_url", "=", sourceUrl)
      .where("deleted_at", "is", null)
      .where("expires_at", ">", addMs(this.deps.clock.now(), 3600_000).toISOString())
      .orderBy("created_at", "desc")
      .executeTakeFirst();
  }

  /**
   * Deletes the bytes of expired files that no queued or processing task uses; a task that
   * started with a file keeps it until the task finishes.
   */
  async collectGarbage(): Promise<number> {
    const { db, storage, clock, log } = this.deps;
    const now = clock.now().toISOString();
    const due = await db
      .selectFrom("files")
      .select(["id", "storage_key"])
      .where("deleted_at", "is", null)
      .where("expires_at", "<=", now)
      .where(({ not, exists, selectFrom }) => not(exists(runningUsers(selectFrom))))
      .limit(500)
      .execute();
    for (const file of due) {
      await storage.delete(file.storage_key);
      await db.updateTable("files").set({ deleted_at: now }).where("id", "=", file.id).execute();
    }
    const leftovers = (await storage.sweepPartials(STALE_UPLOAD_MS)) + (await this.sweepStagedUploads());
    if (due.length || leftovers) log.info({ files: due.length, leftovers }, "deleted expired files");
    // Deleted files whose bytes waited for a task: normally removed when it ended; this catches
    // what a crash or a lost purge job left.
    const purged = await this.purgeDeleted().catch((error) => {
      log.error({ err: error }, "could not remove the bytes of some deleted files; will retry");
      return 0;
    });
    return due.length + purged;
  }

  /**
   * Removes what a process killed mid-upload left in the staging tmp/ directory (the storage's,
   * or the spool's): partial writes and received uploads whose inspection never finished. Only
   * files older than STALE_UPLOAD_MS go, since other processes may share the directory. Cheap
   * (one directory), so it also runs at start-up. Ages are file times: wall clock, not `clock`.
   */
  async sweepStagedUploads(): Promise<number> {
    const dir = this.staging.localPath("tmp");
    if (dir === undefined) return 0;
    const names = await readdir(dir).catch(() => [] as string[]);
    const cutoff = Date.now() - STALE_UPLOAD_MS;
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith(".upload") && !name.endsWith(".part")) continue;
      const path = join(dir, name);
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    if (removed > 0) this.deps.log.info({ removed }, "removed stale temporary uploads");
    return removed;
  }
}

/** The queued or processing tasks that use the outer query's file (files.id). */
function runningUsers(selectFrom: ExpressionBuilder<Database, "files">["selectFrom"]) {
  return selectFrom("task_references")
    .innerJoin("tasks", "tasks.id", "task_references.task_id")
    .select("task_references.file_id")
    .whereRef("task_references.file_id", "=", "files.id")
    .where("tasks.status", "in", ["queued", "processing"]);
}

/** The limit an upload of `kind` falls under, or the validation error when the model refuses the kind. */
export function policyFor(kind: FileKind, model: ModelEntry | undefined): MediaLimit {
  const limit = uploadLimit(kind, model);
  if (!limit) {
    const accepted = model?.reference_media?.kinds.join(", ") || "no";
    throw new ApiError("validation_failed", `${model?.id ?? "This model"} accepts ${accepted} files, not ${kind}.`, {
      details: [{ path: "kind", issue: `${model?.id} accepts only: ${accepted}` }],
    });
  }
  return limit;
}
