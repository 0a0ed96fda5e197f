/**
 * Creating and reading generation tasks. Creation is one transaction: reserve credits, insert
 * the task, enqueue its submit job and store the idempotent response, so either all of it
 * happens or none of it does.
 */
import { type NormalizedGenerationRequest, priceGeneration, type Task, type TaskStatus } from "@framegate/contract";
import { ApiError } from "../errors.js";
import type { IdempotencyScope, IdempotencyStore } from "../http/idempotency.js";
import { reserveCredits } from "../ledger/ledger.js";
import type { Queue } from "../queue/queue.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Db } from "../store/db.js";
import { type Cursor, newestFirst, unknownCursor } from "../store/pagination.js";
import type { TasksTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import type { StoredReference } from "./references.js";
import { serializeTask } from "./serialize.js";

export const SUBMIT_JOB = "generation.submit";
/** The key of a task's submit job: at most one is pending, and fair hand-out wakes it by this key. */
export const submitJobKey = (taskId: string) => `submit:${taskId}`;

export interface CreateOutcome {
  status: number;
  body: string;
  task?: Task;
}

export interface ListQuery {
  limit: number;
  startingAfter?: string;
  status?: TaskStatus;
}

export class GenerationService {
  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      queue: Queue;
      signer: UrlSigner;
      idempotency: IdempotencyStore;
    },
  ) {}

  /**
   * Creates the task. `idempotency`, when given, is an in-flight claim from IdempotencyStore.begin:
   * the response (success or insufficient_credits) is stored in the same transaction.
   */
  async create(
    accountId: string,
    request: NormalizedGenerationRequest,
    references: StoredReference[],
    idempotency: IdempotencyScope | undefined,
    renderError: (error: ApiError) => string,
  ): Promise<CreateOutcome> {
    const { db, clock, queue, signer } = this.deps;
    const price = priceGeneration(request.model, request.params);
    const now = clock.now().toISOString();
    const row: TasksTable = {
      id: newId("task"),
      account_id: accountId,
      model: request.model.id,
      status: "queued",
      prompt: request.prompt,
      params: JSON.stringify(request.params),
      references_json: JSON.stringify(references),
      reserved_credits: price,
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
    try {
      const outcome = await db.transaction().execute(async (trx) => {
        await reserveCredits(trx, clock, { accountId, taskId: row.id, amount: price });
        await trx.insertInto("tasks").values(row).execute();
        if (references.length > 0) {
          await trx
            .insertInto("task_references")
            .values(references.map((r, position) => ({ task_id: row.id, position, file_id: r.fileId })))
            .execute();
        }
        await queue.enqueue(trx, { kind: SUBMIT_JOB, payload: { taskId: row.id }, key: submitJobKey(row.id) });
        const task = serializeTask(row, signer, clock.now());
        const body = JSON.stringify(task);
        if (idempotency) await this.deps.idempotency.complete(trx, idempotency, 202, body);
        return { status: 202, body, task };
      });
      queue.notify();
      return outcome;
    } catch (error) {
      if (error instanceof ApiError && error.code === "insufficient_credits") {
        // A business outcome, not a validation failure: it is stored and replayed like a success.
        const body = renderError(error);
        if (idempotency) await this.deps.idempotency.complete(db, idempotency, error.status, body);
        return { status: error.status, body };
      }
      throw error;
    }
  }

  async get(accountId: string, taskId: string): Promise<Task> {
    const row = await this.deps.db
      .selectFrom("tasks")
      .selectAll()
      .where("id", "=", taskId)
      .where("account_id", "=", accountId)
      .executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Generation not found.");
    return serializeTask(row, this.deps.signer, this.deps.clock.now());
  }

  async list(accountId: string, query: ListQuery): Promise<{ data: Task[]; has_more: boolean }> {
    const { db, signer } = this.deps;
    const now = this.deps.clock.now();
    let q = db.selectFrom("tasks").selectAll().where("account_id", "=", accountId);
    if (query.status) q = q.where("status", "=", query.status);
    let cursor: Cursor | undefined;
    if (query.startingAfter) {
      cursor = await db
        .selectFrom("tasks")
        .select(["created_at", "id"])
        .where("id", "=", query.startingAfter)
        .where("account_id", "=", accountId)
        .executeTakeFirst();
      if (!cursor) throw unknownCursor();
    }
    const page = await newestFirst<TasksTable>(q, cursor, query.limit);
    return { data: page.data.map((r) => serializeTask(r, signer, now)), has_more: page.has_more };
  }
}
