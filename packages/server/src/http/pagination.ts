import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "../errors.js";

export interface ListQuery<F extends string> {
  limit: number;
  startingAfter?: string;
  filters: Partial<Record<F, string>>;
}

/** limit (1..100, default 20), starting_after (an id) and the route's own filters; nothing else. */
export function parseListQuery<F extends string>(
  c: Context,
  filters: Record<F, { schema: z.ZodType<string>; issue: string }>,
): ListQuery<F> {
  const query = c.req.query();
  const allowed = new Set<string>(["limit", "starting_after", ...Object.keys(filters)]);
  for (const key of Object.keys(query)) {
    if (!allowed.has(key)) throw invalid(key, "unknown query parameter");
  }
  let limit = 20;
  if (query.limit !== undefined) {
    if (!/^\d{1,3}$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > 100) {
      throw invalid("limit", "must be a whole number from 1 to 100");
    }
    limit = Number(query.limit);
  }
  const parsed: Partial<Record<F, string>> = {};
  for (const [name, filter] of Object.entries(filters) as [F, { schema: z.ZodType<string>; issue: string }][]) {
    const value = query[name];
    if (value === undefined) continue;
    const result = filter.schema.safeParse(value);
    if (!result.success) throw invalid(name, filter.issue);
    parsed[name] = result.data;
  }
  const startingAfter = query.starting_after;
  if (startingAfter !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(startingAfter)) {
    throw invalid("starting_after", "must be an id");
  }
  return { limit, ...(startingAfter ? { startingAfter } : {}), filters: parsed };
}

function invalid(path: string, issue: string) {
  return new ApiError("validation_failed", `Invalid query: ${path} ${issue}.`, { details: [{ path, issue }] });
}
