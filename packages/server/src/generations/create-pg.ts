/**
 * A create on PostgreSQL in one round trip: one call of `framegate_create_generation` (migration
 * 0010, store/pg-create-generation.sql.ts) reserves the credits and inserts the ledger entry,
 * the task, its references, its graphile-worker job and the idempotency row, all or nothing.
 * Deciding what a stored idempotency row means stays in TypeScript (judgeStored), as on SQLite.
 */
import { type CompiledQuery, sql } from "kysely";
import type { StoredRow } from "../http/idempotency.js";
import type { AddJobArgs } from "../queue/queue.js";
import type { Db } from "../store/db.js";
import type { IdempotencyKeysTable, TasksTable } from "../store/schema.js";

export interface PgCreateInput {
  task: TasksTable;
  fileIds: string[];
  ledgerId: string;
  job: AddJobArgs;
  /** The completed idempotency row to store with the task; absent without an Idempotency-Key. */
  idempotency?: IdempotencyKeysTable;
  /** created_at of a stale idempotency row to delete first (as judged by the caller). */
  replaceStale?: string;
}

export type PgCreateResult =
  | { outcome: "created" }
  | { outcome: "stored"; row: StoredRow }
  | { outcome: "insufficient"; balance: number | null }
  /** A referenced file was deleted after the references were resolved (migration 0016); nothing written. */
  | { outcome: "file_gone" };

interface ResultRow {
  o_outcome: "created" | "stored" | "insufficient" | "file_gone";
  o_fingerprint: string | null;
  o_state: "in_flight" | "completed" | null;
  o_response_status: number | null;
  o_response_body: string | null;
  o_locked_until: string | null;
  o_created_at: string | null;
  o_expires_at: string | null;
  o_balance: number | null;
}

/** The call's SQL never changes, only its parameters: compiled once, not rebuilt per create. */
let compiled: CompiledQuery<ResultRow> | undefined;

function createCall(db: Db, params: unknown[]): CompiledQuery<ResultRow> {
  compiled ??= sql<ResultRow>`select * from framegate_create_generation(
    ${null}::json, ${null}::text[], ${null}, ${null}, ${null}::json, ${null}, ${null}::integer,
    ${null}, ${null}::bigint, ${null}::json, ${null})`.compile(db);
  return { ...compiled, parameters: params };
}

export async function createOnPostgres(db: Db, input: PgCreateInput): Promise<PgCreateResult> {
  const { job } = input;
  const params = [
    JSON.stringify(input.task),
    input.fileIds,
    input.ledgerId,
    job.kind,
    job.payload,
    job.key,
    job.maxAttempts,
    job.keyMode,
    job.delayMs,
    input.idempotency ? JSON.stringify(input.idempotency) : null,
    input.replaceStale ?? null,
  ];
  const result = await db.executeQuery(createCall(db, params));
  const row = result.rows[0];
  if (!row) throw new Error("framegate_create_generation returned no row");
  switch (row.o_outcome) {
    case "created":
      return { outcome: "created" };
    case "insufficient":
      return { outcome: "insufficient", balance: row.o_balance };
    case "file_gone":
      return { outcome: "file_gone" };
    case "stored":
      return {
        outcome: "stored",
        row: {
          fingerprint: row.o_fingerprint ?? "",
          state: row.o_state ?? "completed",
          response_status: row.o_response_status,
          response_body: row.o_response_body,
          locked_until: row.o_locked_until,
          created_at: row.o_created_at ?? "",
          expires_at: row.o_expires_at ?? "",
        },
      };
  }
}
