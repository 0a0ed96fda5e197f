import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.js";

const ALLOWED = new Set(["limit", "starting_after", "status"]);

/** limit (1..100, default 20), starting_after (an id) and an optional status filter. */
export function parseListQuery<S extends string>(
  c: Context,
  opts: { status?: z.ZodType<S> },
): { limit: number; startingAfter?: string; status?: S } {
  const query = c.req.query();
  for (const key of Object.keys(query)) {
    if (!ALLOWED.has(key) || (key === "status" && !opts.status)) {
      throw invalid(key, "unknown query parameter");
    }
  }
  let limit = 20;
  if (query.limit !== undefined) {
    if (!/^\d{1,3}$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > 100) {
      throw invalid("limit", "must be a whole number from 1 to 100");
    }
    limit = Number(query.limit);
  }
  let status: S | undefined;
  if (query.status !== undefined && opts.status) {
    const parsed = opts.status.safeParse(query.status);
    if (!parsed.success) throw invalid("status", "must be one of queued, processing, succeeded, failed");
    status = parsed.data;
  }
  const startingAfter = query.starting_after;
  if (startingAfter !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(startingAfter)) {
    throw invalid("starting_after", "must be an id");
  }
  return { limit, ...(startingAfter ? { startingAfter } : {}), ...(status ? { status } : {}) };
}

function invalid(path: string, issue: string) {
  return new ApiError("validation_failed", `Invalid query: ${path} ${issue}.`, { details: [{ path, issue }] });
}
