/**
 * The generations list's filters, read from and written to the URL (so a filtered list can be
 * reloaded and shared). Status and client_request_id go to the API; the API's list has no date
 * parameters, so the date range is applied here to the pages already loaded (newest first).
 */
import type { TaskStatus } from "@framegate/sdk";

export const STATUSES: readonly TaskStatus[] = ["queued", "processing", "succeeded", "failed"];

export interface Filters {
  status: TaskStatus | undefined;
  clientRequestId: string | undefined;
  /** Inclusive UTC days, "YYYY-MM-DD". */
  from: string | undefined;
  to: string | undefined;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Unknown or malformed values are dropped rather than sent (the API would answer 400). */
export function parseFilters(query: URLSearchParams): Filters {
  const status = query.get("status") ?? "";
  const crid = (query.get("client_request_id") ?? "").trim();
  const day = (name: string) => {
    const value = query.get(name) ?? "";
    return DAY.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`)) ? value : undefined;
  };
  return {
    status: (STATUSES as readonly string[]).includes(status) ? (status as TaskStatus) : undefined,
    clientRequestId: crid && crid.length <= 128 ? crid : undefined,
    from: day("from"),
    to: day("to"),
  };
}

export function filtersToQuery(filters: Filters): Record<string, string | undefined> {
  return {
    status: filters.status,
    client_request_id: filters.clientRequestId,
    from: filters.from,
    to: filters.to,
  };
}

/** True when the task was created within the inclusive UTC day range (open ends allowed). */
export function inDateRange(createdAt: string, from: string | undefined, to: string | undefined): boolean {
  const t = Date.parse(createdAt);
  if (from && t < Date.parse(`${from}T00:00:00Z`)) return false;
  if (to && t >= Date.parse(`${to}T00:00:00Z`) + 86_400_000) return false;
  return true;
}

/** Lists are newest first: once a page ends before `from`, later pages cannot match either. */
export function pastRange(createdAt: string | undefined, from: string | undefined): boolean {
  return Boolean(createdAt && from && Date.parse(createdAt) < Date.parse(`${from}T00:00:00Z`));
}
