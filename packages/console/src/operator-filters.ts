/**
 * The operator's task list filters, read from and written to the URL (a filtered list can be
 * reloaded and shared) and turned into GET /admin/v1/tasks's query. Unlike the customer's list,
 * the admin list filters by creation time itself, so the day range goes to the server.
 */
import type { TaskStatus } from "@framegate/sdk";
import type { TaskFilters } from "./admin-api.js";
import { STATUSES } from "./filters.js";

export interface OperatorTaskFilters {
  accountId: string | undefined;
  status: TaskStatus | undefined;
  model: string | undefined;
  provider: string | undefined;
  /** Inclusive UTC days, "YYYY-MM-DD". */
  from: string | undefined;
  to: string | undefined;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** What the server accepts for ids and names; anything else would only earn a 400. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const DAY_MS = 86_400_000;

function day(value: string | null): string | undefined {
  if (!value || !DAY.test(value)) return undefined;
  const ms = Date.parse(`${value}T00:00:00Z`);
  // 2026-02-30 parses (rolled over): keep only days that read back the same.
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === value ? value : undefined;
}

function name(value: string | null): string | undefined {
  const trimmed = (value ?? "").trim();
  return NAME.test(trimmed) ? trimmed : undefined;
}

/** Unknown or malformed values are dropped rather than sent. */
export function parseOperatorFilters(query: URLSearchParams): OperatorTaskFilters {
  const status = query.get("status") ?? "";
  return {
    accountId: name(query.get("account_id")),
    status: (STATUSES as readonly string[]).includes(status) ? (status as TaskStatus) : undefined,
    model: name(query.get("model")),
    provider: name(query.get("provider")),
    from: day(query.get("from")),
    to: day(query.get("to")),
  };
}

/** The URL's query for these filters (empty ones left out). */
export function operatorFiltersToQuery(f: OperatorTaskFilters): Record<string, string | undefined> {
  return { account_id: f.accountId, status: f.status, model: f.model, provider: f.provider, from: f.from, to: f.to };
}

/**
 * GET /admin/v1/tasks's filters: `from` is the start of its day, `to` the end of its day (the
 * server's created_before is exclusive, so the next day's start). A range that ends before it
 * starts is undefined: the page says so instead of asking the server (which would answer 400).
 */
export function toAdminQuery(f: OperatorTaskFilters): TaskFilters | undefined {
  const after = f.from ? `${f.from}T00:00:00.000Z` : undefined;
  const before = f.to ? new Date(Date.parse(`${f.to}T00:00:00Z`) + DAY_MS).toISOString() : undefined;
  if (after && before && after >= before) return undefined;
  return {
    ...(f.accountId ? { account_id: f.accountId } : {}),
    ...(f.status ? { status: f.status } : {}),
    ...(f.model ? { model: f.model } : {}),
    ...(f.provider ? { provider: f.provider } : {}),
    ...(after ? { created_after: after } : {}),
    ...(before ? { created_before: before } : {}),
  };
}

/**
 * An amount typed into the credits form: a whole number of credits above 0, at most the server's
 * bound; null for anything else (the form says what it wants instead of sending it).
 */
export function parseCreditAmount(text: string): number | null {
  const trimmed = text.trim().replace(/[,_\s]/g, "");
  if (!/^\d{1,10}$/.test(trimmed)) return null;
  const n = Number(trimmed);
  return n >= 1 && n <= 1_000_000_000 ? n : null;
}

/**
 * A limit typed into the limits form: empty means "the server's default" (null); otherwise a
 * whole number from 1 to `max`. undefined when it is neither (the form refuses it).
 */
export function parseLimit(text: string, max: number): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  if (!/^\d{1,16}$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return n >= 1 && n <= max ? n : undefined;
}
