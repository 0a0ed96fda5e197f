/**
 * `framegate ledger` (credit movements, newest first) and `framegate usage` (tasks and credits per
 * UTC day or hour), through the API; `framegate accounts usage` (every account, on the local store)
 * prints the operators' report with the same table.
 */
import type { LedgerEntry, LedgerEntryType, Usage, UsageCounts } from "@framegate/sdk";
import type { ApiContext } from "./api.js";
import { usageError } from "./output.js";
import { collect, formatTable, MAX_PAGE_SIZE, parseLimit } from "./pages.js";

export const LEDGER_TYPES: readonly LedgerEntryType[] = ["grant", "reserve", "release", "refund"];
export const GRANULARITIES = ["day", "hour"] as const;

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;
const RELATIVE = /^(\d{1,4})([dh])$/;

/**
 * A time flag: an ISO 8601 date (`2026-12-01`), a date-time with a zone (`2026-12-01T10:00:00Z`),
 * or a span back from now (`7d`, `36h`). Returns what is sent: the ISO text, or the computed instant.
 */
export function parseInstantFlag(flag: string, raw: string | undefined, now = new Date()): string | undefined {
  if (raw === undefined) return undefined;
  const value = raw.trim();
  const relative = RELATIVE.exec(value);
  if (relative) {
    const hours = Number(relative[1]) * (relative[2] === "d" ? 24 : 1);
    return new Date(now.getTime() - hours * 3_600_000).toISOString();
  }
  if (!ISO_INSTANT.test(value) || Number.isNaN(Date.parse(value))) {
    throw usageError(
      `${flag} must be a date (2026-12-01), a date-time with a zone (2026-12-01T10:00:00Z) or a span back from now (7d, 36h) (got "${raw}")`,
    );
  }
  return value;
}

export interface LedgerOptions {
  type?: string;
  since?: string;
  until?: string;
  limit?: string;
  startingAfter?: string;
}

/** Local checks of `ledger`: everything is refused before a request. */
export function checkLedger(opts: LedgerOptions) {
  let types: LedgerEntryType[] | undefined;
  if (opts.type !== undefined) {
    types = opts.type.split(",").map((t) => t.trim()) as LedgerEntryType[];
    const bad = types.filter((t) => !LEDGER_TYPES.includes(t));
    if (bad.length || types.length === 0) {
      throw usageError(
        `--type must be one or more of ${LEDGER_TYPES.join(", ")}, comma-separated (got "${opts.type}")`,
      );
    }
  }
  if (opts.startingAfter !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(opts.startingAfter)) {
    throw usageError(`--starting-after must be a ledger entry id (got "${opts.startingAfter}")`);
  }
  return {
    limit: parseLimit(opts.limit),
    types,
    since: parseInstantFlag("--since", opts.since),
    until: parseInstantFlag("--until", opts.until),
  };
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

export async function ledger(ctx: ApiContext, opts: LedgerOptions): Promise<void> {
  const { limit, types, since, until } = checkLedger(opts);
  const list = await collect(
    ctx.client.credits.ledger(
      {
        limit: Math.min(limit, MAX_PAGE_SIZE),
        ...(types ? { type: types } : {}),
        ...(since ? { createdAfter: since } : {}),
        ...(until ? { createdBefore: until } : {}),
        ...(opts.startingAfter ? { startingAfter: opts.startingAfter } : {}),
      },
      { signal: ctx.signal },
    ),
    limit,
  );
  if (list.data.length === 0) {
    ctx.out.result(list, "no ledger entries");
    return;
  }
  const rows = list.data.map((e: LedgerEntry) => [
    e.created_at,
    e.type,
    signed(e.amount),
    String(e.balance_after),
    e.task_id ?? "-",
    e.reason ?? "",
  ]);
  const table = formatTable(["TIME", "TYPE", "AMOUNT", "BALANCE", "TASK", "REASON"], rows);
  const last = list.data[list.data.length - 1];
  const more = list.has_more && last ? `\n… more: add --starting-after ${last.id}` : "";
  ctx.out.result(list, `${table}${more}`);
}

export interface UsageOptions {
  granularity?: string;
  start?: string;
  end?: string;
}

/** Local checks of `usage`. */
export function checkUsage(opts: UsageOptions) {
  if (opts.granularity !== undefined && !(GRANULARITIES as readonly string[]).includes(opts.granularity)) {
    throw usageError(`--granularity must be day or hour (got "${opts.granularity}")`);
  }
  return {
    granularity: opts.granularity as (typeof GRANULARITIES)[number] | undefined,
    start: parseInstantFlag("--start", opts.start),
    end: parseInstantFlag("--end", opts.end),
  };
}

const COUNT_HEADER = ["CREATED", "SUCCEEDED", "FAILED", "CANCELED", "CHARGED", "REFUNDED", "GRANTED"];

function countCells(c: UsageCounts): string[] {
  return [
    c.tasks_created,
    c.tasks_succeeded,
    c.tasks_failed,
    c.tasks_canceled,
    c.credits_charged,
    c.credits_refunded,
    c.credits_granted,
  ].map(String);
}

/** The buckets as a table, one row per bucket (`2026-12-06` or `2026-12-06 14:00`), then the totals. */
export function formatUsage(usage: Pick<Usage, "granularity" | "data" | "totals" | "start" | "end">): string {
  const label = (start: string) =>
    usage.granularity === "day" ? start.slice(0, 10) : `${start.slice(0, 10)} ${start.slice(11, 16)}`;
  const rows = usage.data.map((b) => [label(b.start), ...countCells(b)]);
  rows.push(["total", ...countCells(usage.totals)]);
  const header = [usage.granularity === "day" ? "DAY (UTC)" : "HOUR (UTC)", ...COUNT_HEADER];
  return `${usage.start} – ${usage.end}\n${formatTable(header, rows)}`;
}

export async function usage(ctx: ApiContext, opts: UsageOptions): Promise<void> {
  const { granularity, start, end } = checkUsage(opts);
  const report = await ctx.client.credits.usage(
    { ...(granularity ? { granularity } : {}), ...(start ? { start } : {}), ...(end ? { end } : {}) },
    { signal: ctx.signal },
  );
  ctx.out.result(report, formatUsage(report));
}
