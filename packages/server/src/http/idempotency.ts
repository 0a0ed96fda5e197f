/**
 * Idempotency-Key handling (api-contract §5), scoped by (account, method, path, key).
 *
 * The key is claimed inside the transaction that does the work: that transaction reads the
 * key's row, judges it (judgeStored), and, when it proceeds, inserts the completed row with the
 * response it is about to send, so the stored response commits together with what it describes,
 * or neither does. Two requests racing with one key cannot both commit: the loser's insert hits
 * the primary key (on PostgreSQL it waits for the winner's commit first), its transaction rolls
 * back, and it runs again to find and replay the winner's row.
 *
 * Rows in the `in_flight` state are claims that earlier versions committed before doing the work
 * (and that other routes may still write): a live one answers 409 with Retry-After, an abandoned
 * one (its lease ran out: the process died) is taken over.
 */
import { createHash } from "node:crypto";
import { ApiError } from "../errors.js";
import type { Db, Executor } from "../store/db.js";
import { PreparedQuery } from "../store/prepared.js";
import type { IdempotencyKeysTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";

export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** 1..255 printable ASCII characters (0x20..0x7e, so inner spaces are allowed), per api-contract §5. */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;
/** How many times a create runs again after losing a race for its key before answering 409. */
export const KEY_RACE_ATTEMPTS = 3;

export interface IdempotencyScope {
  accountId: string;
  method: string;
  path: string;
  key: string;
}

/** A request's key and its body's fingerprint: what the work's transaction stores. */
export interface IdempotencyClaim {
  scope: IdempotencyScope;
  fingerprint: string;
}

export type StoredRow = Pick<
  IdempotencyKeysTable,
  "fingerprint" | "state" | "response_status" | "response_body" | "locked_until" | "created_at" | "expires_at"
>;

/**
 * What a stored row means for a new request: nothing stored (`free`), a row that no longer
 * counts and is deleted before proceeding (`stale`: expired, or an abandoned in-flight claim),
 * or a response to replay. Conflicts throw 409.
 */
export type StoredVerdict =
  | { kind: "free" }
  | { kind: "stale"; createdAt: string }
  | { kind: "replay"; status: number; body: string };

/** SHA-256 of the body as canonical JSON (object keys sorted at every level). */
export function fingerprintBody(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!KEY_PATTERN.test(header)) {
    throw new ApiError("validation_failed", "Idempotency-Key must be 1 to 255 printable ASCII characters.", {
      details: [{ path: "Idempotency-Key", issue: "must be 1..255 printable ASCII characters" }],
    });
  }
  return header;
}

export function judgeStored(row: StoredRow | undefined, fingerprint: string, now: Date): StoredVerdict {
  if (!row) return { kind: "free" };
  const at = now.toISOString();
  const expired = row.expires_at <= at;
  const abandoned = row.state === "in_flight" && (row.locked_until ?? "") <= at;
  if (expired || abandoned) return { kind: "stale", createdAt: row.created_at };
  if (row.fingerprint !== fingerprint) {
    throw new ApiError("idempotency_conflict", "This Idempotency-Key was already used with a different request body.");
  }
  if (row.state === "in_flight") throw stillInFlight();
  return { kind: "replay", status: row.response_status ?? 200, body: row.response_body ?? "" };
}

/** 409 for a key whose first request has not finished (or that kept losing races). */
export function stillInFlight(): ApiError {
  return new ApiError(
    "idempotency_conflict",
    "A request with this Idempotency-Key is still being processed; retry later.",
    {
      headers: { "Retry-After": "1" },
    },
  );
}

// Both run in every create that carries a key: compiled once (store/prepared.ts).
const findQuery = new PreparedQuery(
  (db, accountId: string, method: string, path: string, key: string) =>
    db
      .selectFrom("idempotency_keys")
      .select(["fingerprint", "state", "response_status", "response_body", "locked_until", "created_at", "expires_at"])
      .where("account_id", "=", accountId)
      .where("method", "=", method)
      .where("path", "=", path)
      .where("idem_key", "=", key),
  4,
);

const storeQuery = new PreparedQuery(
  (
    db,
    accountId: string,
    method: string,
    path: string,
    key: string,
    fingerprint: string,
    status: number,
    body: string,
    createdAt: string,
    expiresAt: string,
  ) =>
    db.insertInto("idempotency_keys").values({
      account_id: accountId,
      method,
      path,
      idem_key: key,
      fingerprint,
      state: "completed",
      response_status: status,
      response_body: body,
      locked_until: null,
      created_at: createdAt,
      expires_at: expiresAt,
    }),
  9,
);

export class IdempotencyStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  find(db: Executor, scope: IdempotencyScope): Promise<StoredRow | undefined> {
    return findQuery.first(db, scope.accountId, scope.method, scope.path, scope.key);
  }

  /** Deletes a stale row, only if it is still the one that was judged. */
  async remove(db: Executor, scope: IdempotencyScope, createdAt: string): Promise<void> {
    await this.scoped(db.deleteFrom("idempotency_keys"), scope).where("created_at", "=", createdAt).execute();
  }

  /**
   * Stores the response; run it in the transaction that did the work. Throws a unique violation
   * when another request stored one for the key first (the caller rolls back and replays).
   */
  async store(db: Executor, claim: IdempotencyClaim, status: number, body: string): Promise<void> {
    const row = this.completedRow(claim, status, body);
    await storeQuery.execute(
      db,
      row.account_id,
      row.method,
      row.path,
      row.idem_key,
      row.fingerprint,
      status,
      body,
      row.created_at,
      row.expires_at,
    );
  }

  /** The row store() inserts: also what SQL that stores it itself (the PostgreSQL create) needs. */
  completedRow(claim: IdempotencyClaim, status: number, body: string): IdempotencyKeysTable {
    const now = this.clock.now();
    return {
      account_id: claim.scope.accountId,
      method: claim.scope.method,
      path: claim.scope.path,
      idem_key: claim.scope.key,
      fingerprint: claim.fingerprint,
      state: "completed",
      response_status: status,
      response_body: body,
      locked_until: null,
      created_at: now.toISOString(),
      expires_at: addMs(now, IDEMPOTENCY_TTL_MS).toISOString(),
    };
  }

  async purgeExpired(): Promise<number> {
    const result = await this.db
      .deleteFrom("idempotency_keys")
      .where("expires_at", "<=", this.clock.now().toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // biome-ignore lint/suspicious/noExplicitAny: shared where-clause for select/update/delete builders
  private scoped<T extends { where: (...args: any[]) => T }>(qb: T, scope: IdempotencyScope): T {
    return qb
      .where("account_id", "=", scope.accountId)
      .where("method", "=", scope.method)
      .where("path", "=", scope.path)
      .where("idem_key", "=", scope.key);
  }
}
