/**
 * Quotas on what an account keeps: live webhook endpoints, and the bytes and number of its live
 * stored files. Each has a configured default (ACCOUNT_MAX_WEBHOOK_ENDPOINTS,
 * ACCOUNT_MAX_FILE_BYTES, ACCOUNT_MAX_FILES) and a per-account override in the accounts row
 * (null: the default), set through PATCH /admin/v1/accounts/{id}.
 *
 * A check is only sound if nobody else adds between the count and the insert. So the domain
 * that owns the counted rows counts and inserts in one transaction that first calls
 * `lockQuotas`: on PostgreSQL it locks the account row (FOR UPDATE) until commit, and two
 * creates of one account take turns; SQLite runs one write transaction at a time anyway.
 * A lowered quota refuses new things only: what is already stored stays.
 */
import { ApiError } from "../errors.js";
import type { Executor } from "../store/db.js";

export interface Quotas {
  maxWebhookEndpoints: number;
  maxFileBytes: number;
  maxFiles: number;
}

/** The overrides as stored in the accounts row. */
export interface QuotaOverrides {
  max_webhook_endpoints: number | null;
  max_file_bytes: number | null;
  max_files: number | null;
}

export function effectiveQuotas(row: QuotaOverrides, defaults: Quotas): Quotas {
  return {
    maxWebhookEndpoints: row.max_webhook_endpoints ?? defaults.maxWebhookEndpoints,
    maxFileBytes: row.max_file_bytes ?? defaults.maxFileBytes,
    maxFiles: row.max_files ?? defaults.maxFiles,
  };
}

/**
 * The account's quotas, its row locked until `trx` ends (PostgreSQL). Call it in the
 * transaction that counts and inserts, before counting.
 */
export async function lockQuotas(trx: Executor, accountId: string, defaults: Quotas): Promise<Quotas> {
  const row = await trx
    .selectFrom("accounts")
    .select(["max_webhook_endpoints", "max_file_bytes", "max_files"])
    .where("id", "=", accountId)
    .forUpdate()
    .executeTakeFirst();
  // An authenticated account exists; were it gone, the insert's foreign key refuses anyway.
  return row ? effectiveQuotas(row, defaults) : defaults;
}

/** The account's quotas without a lock: for an early, advisory check (the locked one decides). */
export async function readQuotas(db: Executor, accountId: string, defaults: Quotas): Promise<Quotas> {
  const row = await db
    .selectFrom("accounts")
    .select(["max_webhook_endpoints", "max_file_bytes", "max_files"])
    .where("id", "=", accountId)
    .executeTakeFirst();
  return row ? effectiveQuotas(row, defaults) : defaults;
}

const ASK = "or ask the operator to raise the limit";

export function webhookEndpointQuotaExceeded(count: number, max: number): ApiError {
  return new ApiError(
    "quota_exceeded",
    `This account has ${count} webhook endpoint${count === 1 ? "" : "s"}, the most it may have (limit ${max}); delete one ${ASK}.`,
  );
}

export function fileCountQuotaExceeded(count: number, max: number): ApiError {
  return new ApiError(
    "quota_exceeded",
    `This account stores ${count} file${count === 1 ? "" : "s"}, the most it may have (limit ${max}); wait for older files to expire ${ASK}.`,
  );
}

/** `size`: the file's bytes, or undefined when refusing before the file was read. */
export function fileBytesQuotaExceeded(size: number | undefined, used: number, max: number): ApiError {
  const what =
    size === undefined
      ? `This account's files already take ${used} bytes, all of its ${describeBytes(max)} of stored files`
      : `Storing this file (${size} bytes) would take the account past its ${describeBytes(max)} of stored files (${used} bytes stored now)`;
  return new ApiError("quota_exceeded", `${what}; wait for older files to expire ${ASK}.`);
}

/** "1 GiB (1073741824 bytes)", "1.5 MiB (1572864 bytes)", "512 bytes". */
export function describeBytes(bytes: number): string {
  const units: [string, number][] = [
    ["TiB", 2 ** 40],
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Math.round((bytes / size) * 10) / 10} ${unit} (${bytes} bytes)`;
  }
  return `${bytes} bytes`;
}
