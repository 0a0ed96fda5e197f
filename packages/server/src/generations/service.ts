/**
 * Creating and reading generation tasks. A create is one transaction: it judges the request's
 * idempotency key, reserves the credits, inserts the task, its references and its submit job,
 * and stores the idempotent response, so either all of it happens or none of it does. On
 * PostgreSQL with graphile-worker that transaction is one function call (create-pg.ts); on
 * SQLite (and PostgreSQL with the table queue) it is the same steps as portable statements.
 */
import { type NormalizedGenerationRequest, priceGeneration, type Task, type TaskStatus } from "@framegate/contract";
import { ApiError } from "../errors.js";
import { goneReferences, liveFileIds } from "../files/live-references.js";
import {
  type IdempotencyClaim,
  type IdempotencyStore,
  judgeStored,
  KEY_RACE_ATTEMPTS,
  type StoredVerdict,
  stillInFlight,
} from "../http/idempotency.js";
import { debitForReservation, insufficientCredits, recordReservation } from "../ledger/ledger.js";
import type { Metrics } from "../observability/metrics.js";
import { withTraceContext } from "../observability/tracing.js";
import type { NewJob, Queue } from "../queue/queue.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import { type Db, isUniqueViolation, type Tx } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { newestFirst, resolveCursor } from "../store/pagination.js";
import { PreparedQuery } from "../store/prepared.js";
import type { RowCache } from "../store/row-cache.js";
import type { TasksTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import { createOnPostgres } from "./create-pg.js";
import type { StoredReference } from "./references.js";
import { PUBLIC_TASK_COLUMNS, serializedUntil, serializeTask } from "./serialize.js";

export const SUBMIT_JOB = "generation.submit";
/** The key of a task's submit job: at most one is pending, and fair hand-out wakes it by this key. */
export const submitJobKey = (taskId: string) => `submit:${taskId}`;

export interface CreateOutcome {
  status: number;
  body: string;
  /** True when the body is a stored response replayed for a repeated Idempotency-Key. */
  replayed: boolean;
}

export interface ListQuery {
  limit: number;
  startingAfter?: string;
  status?: TaskStatus;
  /** Only the tasks created with this client_request_id (a Framegate extension of the list). */
  clientRequestId?: string;
}

/** Every column of a task, in the order the prepared insert takes them. */
const TASK_COLUMNS = [
  "id",
  "account_id",
  "model",
  "status",
  "prompt",
  "params",
  "references_json",
  "reserved_credits",
  "final_credits",
  "client_request_id",
  "provider",
  "upstream_id",
  "result",
  "error_reason",
  "error_message",
  "error_detail",
  "submit_state",
  "upstream_details",
  "result_expires_at",
  "result_purged_at",
  "created_at",
  "updated_at",
  "started_at",
  "completed_at",
] as const satisfies readonly (keyof TasksTable)[];
// A column added to TasksTable but not to the list above fails to compile here.
const everyTaskColumn: Exclude<keyof TasksTable, (typeof TASK_COLUMNS)[number]> extends never ? true : never = true;
void everyTaskColumn;

/** The task insert of every create, compiled once (store/prepared.ts). */
const taskInsert = new PreparedQuery(
  (db, ...values: TasksTable[keyof TasksTable][]) =>
    db
      .insertInto("tasks")
      .values(Object.fromEntries(TASK_COLUMNS.map((c, i) => [c, values[i]])) as unknown as TasksTable),
  TASK_COLUMNS.length,
);

/** One create's rows and responses, computed once before its transaction (and reused if it runs again). */
interface Draft {
  row: TasksTable;
  references: StoredReference[];
  job: NewJob;
  /** The 202 body: the task as created. */
  body: string;
  claim: IdempotencyClaim | undefined;
  renderError: (error: ApiError) => string;
}

/** Thrown inside the portable transaction to roll back a reservation made before a replay was found. */
class Replay extends Error {
  constructor(readonly verdict: Extract<StoredVerdict, { kind: "replay" }>) {
    super("replay");
  }
}

/**
 * One task of one account (the hottest read: clients poll it), only the columns it is served
 * with: every column read is an extra value to convert per row.
 */
const taskQuery = new PreparedQuery(
  (db, taskId: string, accountId: string) =>
    db.selectFrom("tasks").select(PUBLIC_TASK_COLUMNS).where("id", "=", taskId).where("account_id", "=", accountId),
  2,
);

function generationNotFound(): ApiError {
  return new ApiError("not_found", "Generation not found.");
}

/** A create function's file_gone that a second look cannot place (never expected: deletions are final). */
function deletedMeanwhile(): ApiError {
  return new ApiError("validation_failed", "Invalid reference media: a referenced file was deleted.", {
    details: [{ path: "params.referenceMediaItems", issue: "a referenced file was deleted" }],
  });
}

export class GenerationService {
  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      queue: Queue;
      signer: UrlSigner;
      idempotency: IdempotencyStore;
      /** Where committed reservations are counted. */
      metrics?: Metrics;
      /** SQLite: the answers of GET /generations/{id} kept between polls (store/row-cache.ts). */
      answers?: RowCache;
    },
  ) {}

  /**
   * Creates the task, or replays the response stored for `claim`'s key. A 402
   * insufficient_credits is a business outcome: it is stored and replayed like a 202.
   * A request that loses a race for its key runs again and replays the winner's response.
   */
  async create(
    accountId: string,
    request: NormalizedGenerationRequest,
    references: StoredReference[],
    claim: IdempotencyClaim | undefined,
    renderError: (error: ApiError) => string,
  ): Promise<CreateOutcome> {
    const { clock, signer, queue } = this.deps;
    const now = clock.now().toISOString();
    const row: TasksTable = {
      id: newId("task"),
      account_id: accountId,
      model: request.model.id,
      status: "queued",
      prompt: request.prompt,
      params: JSON.stringify(request.params),
      references_json: JSON.stringify(references),
      reserved_credits: priceGeneration(request.model, request.params),
      final_credits: 0,
      client_request_id: request.clientRequestId,
      provider: null,
      upstream_id: null,
      result: null,
      error_reason: null,
      error_message: null,
      error_detail: null,
      submit_state: null,
      upstream_details: null,
      result_expires_at: null,
      result_purged_at: null,
      created_at: now,
      updated_at: now,
      started_at: null,
      completed_at: null,
    };
    const draft: Draft = {
      row,
      references,
      // The request's trace context, taken here: a grouped commit may run the enqueue in another request's context.
      job: { kind: SUBMIT_JOB, payload: withTraceContext({ taskId: row.id }), key: submitJobKey(row.id) },
      body: JSON.stringify(serializeTask(row, signer, clock.now())),
      claim,
      renderError,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = queue.addJobArgs ? await this.createOnPostgres(draft) : await this.createInTransaction(draft);
        if (outcome.status === 202 && !outcome.replayed) {
          queue.notify();
          // Committed (a replay reserved nothing: the first request's reservation was counted).
          this.deps.metrics?.recordCredits("reserved", row.reserved_credits);
        }
        return outcome;
      } catch (error) {
        // Another request stored a response for this key first and everything here rolled
        // back: run again, which finds and replays (or judges) that response.
        if (!claim || !isUniqueViolation(error)) throw error;
        if (attempt >= KEY_RACE_ATTEMPTS) throw stillInFlight();
      }
    }
  }

  /**
   * The portable create: one transaction of Kysely statements. The reservation runs first so
   * that on SQLite the transaction takes the write lock at its first statement (a deferred
   * transaction that read first could fail with SQLITE_BUSY when it then writes, if another
   * process wrote in between); a replay found after it rolls the reservation back.
   */
  private async createInTransaction(draft: Draft): Promise<CreateOutcome> {
    const { db, clock, queue, idempotency } = this.deps;
    const { row, claim } = draft;
    try {
      return await writeTransaction(db, async (trx) => {
        const reservation = { accountId: row.account_id, taskId: row.id, amount: row.reserved_credits };
        const refused = await debitForReservation(trx, reservation);
        if (claim) {
          const verdict = judgeStored(await idempotency.find(trx, claim.scope), claim.fingerprint, clock.now());
          if (verdict.kind === "replay") throw new Replay(verdict);
          if (verdict.kind === "stale") await idempotency.remove(trx, claim.scope, verdict.createdAt);
        }
        if (draft.references.length > 0) {
          // Resolved before this transaction: a file deleted since then must not be used.
          const fileIds = draft.references.map((r) => r.fileId);
          const gone = goneReferences(fileIds, await liveFileIds(trx, row.account_id, fileIds, { lock: true }));
          if (gone) throw gone;
        }
        if (refused) return await this.refuse(trx, draft, refused);
        await recordReservation(trx, clock, reservation);
        await taskInsert.execute(trx, ...TASK_COLUMNS.map((column) => row[column]));
        if (draft.references.length > 0) {
          await trx
            .insertInto("task_references")
            .values(draft.references.map((r, position) => ({ task_id: row.id, position, file_id: r.fileId })))
            .execute();
        }
        await queue.enqueue(trx, draft.job);
        if (claim) await idempotency.store(trx, claim, 202, draft.body);
        return { status: 202, body: draft.body, replayed: false };
      });
    } catch (error) {
      if (error instanceof Replay) return { status: error.verdict.status, body: error.verdict.body, replayed: true };
      throw error;
    }
  }

  /** A 402 changes nothing but the stored response (when there is a key to store it under). */
  private async refuse(trx: Tx | Db, draft: Draft, error: ApiError): Promise<CreateOutcome> {
    const body = draft.renderError(error);
    if (draft.claim) await this.deps.idempotency.store(trx, draft.claim, error.status, body);
    return { status: error.status, body, replayed: false };
  }

  /**
   * The PostgreSQL create: one function call in the common case. A stale stored row costs one
   * more call (the function deletes it), a 402 with a key one more statement to store it.
   */
  private async createOnPostgres(draft: Draft): Promise<CreateOutcome> {
    const { db, clock, queue, idempotency } = this.deps;
    const addJobArgs = queue.addJobArgs?.bind(queue);
    if (!addJobArgs) throw new Error("createOnPostgres needs a graphile-worker queue");
    const { row, claim } = draft;
    const job = addJobArgs(draft.job);
    let replaceStale: string | undefined;
    for (let attempt = 1; attempt <= KEY_RACE_ATTEMPTS; attempt++) {
      const result = await createOnPostgres(db, {
        task: row,
        fileIds: draft.references.map((r) => r.fileId),
        ledgerId: newId("led"),
        job,
        ...(claim ? { idempotency: idempotency.completedRow(claim, 202, draft.body) } : {}),
        ...(replaceStale ? { replaceStale } : {}),
      });
      if (result.outcome === "created") return { status: 202, body: draft.body, replayed: false };
      if (result.outcome === "file_gone") {
        // Deleted files stay deleted, so a second look names the same ones the function found.
        const fileIds = draft.references.map((r) => r.fileId);
        const live = await liveFileIds(db, row.account_id, fileIds, { lock: false });
        throw goneReferences(fileIds, live) ?? deletedMeanwhile();
      }
      if (result.outcome === "insufficient") {
        // Stored in its own statement: if another request stored a response for the key in
        // the meantime, this insert fails and the caller's next run replays that one.
        return this.refuse(db, draft, insufficientCredits(row.reserved_credits, result.balance));
      }
      const verdict = judgeStored(result.row, claim?.fingerprint ?? "", clock.now());
      if (verdict.kind === "replay") return { status: verdict.status, body: verdict.body, replayed: true };
      if (verdict.kind === "stale") replaceStale = verdict.createdAt;
    }
    throw stillInFlight();
  }

  async get(accountId: string, taskId: string): Promise<Task> {
    const row = await taskQuery.first(this.deps.db, taskId, accountId);
    if (!row) throw generationNotFound();
    return serializeTask(row, this.deps.signer, this.deps.clock.now());
  }

  /**
   * The JSON of GET /api/v1/generations/{id}: on SQLite from the answer cache while the task is
   * unchanged since it was last served (store/row-cache.ts), else read and serialized. Synchronous
   * when it can be: a poll answered from the cache costs no await.
   */
  answer(accountId: string, taskId: string): string | Promise<string> {
    const { answers, db, signer, clock } = this.deps;
    const now = clock.now();
    const body = answers?.answer(taskId, accountId, now.getTime(), () => {
      const rows = taskQuery.readNow(db, taskId, accountId);
      if (rows === undefined) return undefined;
      const row = rows[0];
      if (!row) throw generationNotFound();
      return { body: JSON.stringify(serializeTask(row, signer, now)), validUntil: serializedUntil(row, now) };
    });
    return body ?? this.get(accountId, taskId).then((task) => JSON.stringify(task));
  }

  async list(accountId: string, query: ListQuery): Promise<{ data: Task[]; has_more: boolean }> {
    const { db, signer } = this.deps;
    const now = this.deps.clock.now();
    let q = db.selectFrom("tasks").selectAll().where("account_id", "=", accountId);
    if (query.status) q = q.where("status", "=", query.status);
    if (query.clientRequestId) q = q.where("client_request_id", "=", query.clientRequestId);
    const cursor = await resolveCursor(query.startingAfter, (id) =>
      db
        .selectFrom("tasks")
        .select(["created_at", "id"])
        .where("id", "=", id)
        .where("account_id", "=", accountId)
        .executeTakeFirst(),
    );
    const page = await newestFirst<TasksTable>(q, cursor, query.limit);
    return { data: page.data.map((r) => serializeTask(r, signer, now)), has_more: page.has_more };
  }
}
