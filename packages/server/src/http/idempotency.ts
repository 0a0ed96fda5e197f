/**
 * Idempotency-Key handling (api-contract §5), scoped by (account, method, path, key).
 * begin() claims the key with an in-flight row before the work starts; the work's own
 * transaction calls complete() so the stored response commits together with what it describes.
 */
import { createHash } from "node:crypto";
import { ApiError } from "../errors.js";
import type { Db, Executor } from "../store/db.js";
import { isUniqueViolation } from "../store/db.js";
import { addMs, type Clock } from "../util/clock.js";

export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** An in-flight claim older than this belongs to a request whose process died. */
const IN_FLIGHT_LEASE_MS = 60_000;
/** 1..255 printable ASCII characters (0x20..0x7e, so inner spaces are allowed), per api-contract §5. */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

export interface IdempotencyScope {
  accountId: string;
  method: string;
  path: string;
  key: string;
}

export type BeginResult = { kind: "proceed"; fingerprint: string } | { kind: "replay"; status: number; body: string };

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

export class IdempotencyStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async begin(scope: IdempotencyScope, body: unknown): Promise<BeginResult> {
    const fingerprint = fingerprintBody(body);
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.clock.now();
      const existing = await this.find(scope);
      if (existing) {
        const expired = existing.expires_at <= now.toISOString();
        const abandoned = existing.state === "in_flight" && (existing.locked_until ?? "") <= now.toISOString();
        if (expired || abandoned) {
          await this.remove(this.db, scope, existing.created_at);
          continue;
        }
        if (existing.fingerprint !== fingerprint) {
          throw new ApiError(
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request body.",
          );
        }
        if (existing.state === "in_flight") {
          throw new ApiError(
            "idempotency_conflict",
            "A request with this Idempotency-Key is still being processed; retry later.",
            { headers: { "Retry-After": "1" } },
          );
        }
        return { kind: "replay", status: existing.response_status ?? 200, body: existing.response_body ?? "" };
      }
      try {
        await this.db
          .insertInto("idempotency_keys")
          .values({
            account_id: scope.accountId,
            method: scope.method,
            path: scope.path,
            idem_key: scope.key,
            fingerprint,
            state: "in_flight",
            response_status: null,
            response_body: null,
            locked_until: addMs(now, IN_FLIGHT_LEASE_MS).toISOString(),
            created_at: now.toISOString(),
            expires_at: addMs(now, IDEMPOTENCY_TTL_MS).toISOString(),
          })
          .execute();
        return { kind: "proceed", fingerprint };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        // Someone claimed it between our read and insert: loop and read their row.
      }
    }
    throw new ApiError("idempotency_conflict", "A request with this Idempotency-Key is still being processed.");
  }

  /** Stores the final response; run it inside the transaction that did the work. */
  async complete(db: Executor, scope: IdempotencyScope, status: number, body: string): Promise<void> {
    await this.scoped(db.updateTable("idempotency_keys"), scope)
      .set({ state: "completed", response_status: status, response_body: body, locked_until: null })
      .execute();
  }

  /** Drops an in-flight claim whose request failed unexpectedly, so a retry can run. */
  async abandon(scope: IdempotencyScope): Promise<void> {
    await this.scoped(this.db.deleteFrom("idempotency_keys"), scope).where("state", "=", "in_flight").execute();
  }

  async purgeExpired(): Promise<number> {
    const result = await this.db
      .deleteFrom("idempotency_keys")
      .where("expires_at", "<=", this.clock.now().toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private find(scope: IdempotencyScope) {
    return this.scoped(this.db.selectFrom("idempotency_keys").selectAll(), scope).executeTakeFirst();
  }

  private async remove(db: Executor, scope: IdempotencyScope, createdAt: string) {
    await this.scoped(db.deleteFrom("idempotency_keys"), scope).where("created_at", "=", createdAt).execute();
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
