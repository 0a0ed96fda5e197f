/** Usage history: GET /api/v1/credits/ledger and GET /api/v1/usage (scope credits:read). */
import { LEDGER_ENTRY_TYPES } from "@framegate/contract";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { authOf, requireScope } from "../http/auth.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import { type LedgerEntryType, listLedgerEntries } from "../ledger/history.js";
import type { Db } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { accountUsage } from "./report.js";
import { invalidQuery, parseInstant, resolveBucketRange } from "./time-range.js";

export const LEDGER_PATH = "/api/v1/credits/ledger";
export const USAGE_PATH = "/api/v1/usage";

/** Keyed GET routes of this module, for the route table in app.ts. */
export const USAGE_PATHS = [LEDGER_PATH, USAGE_PATH] as const;

const anyText = z.string();
const TYPE_ISSUE = `must be one or more of ${LEDGER_ENTRY_TYPES.join(", ")} (comma-separated or repeated)`;

/** `type=reserve,refund` or `type=reserve&type=refund`: the set of entry types asked for. */
function parseTypes(c: Context): LedgerEntryType[] | undefined {
  const values = c.req.queries("type");
  if (!values) return undefined;
  const types = new Set<LedgerEntryType>();
  for (const part of values.flatMap((v) => v.split(","))) {
    const type = part.trim();
    if (!(LEDGER_ENTRY_TYPES as readonly string[]).includes(type)) throw invalidQuery("type", TYPE_ISSUE);
    types.add(type as LedgerEntryType);
  }
  return [...types];
}

/** Rejects any query parameter other than `allowed`, like the list routes do. */
export function onlyParams(c: Context, allowed: readonly string[]) {
  for (const key of Object.keys(c.req.query())) {
    if (!allowed.includes(key)) throw invalidQuery(key, "unknown query parameter");
  }
}

export function mountUsageRoutes(app: Hono<AppEnv>, deps: { db: Db; clock: Clock }) {
  const scope = requireScope("credits:read");

  app.get(LEDGER_PATH, scope, async (c) => {
    const { accountId } = authOf(c);
    // created_after is inclusive and created_before exclusive, so adjacent windows never overlap.
    const q = parseListQuery(c, {
      type: { schema: anyText, issue: TYPE_ISSUE },
      created_after: { schema: anyText, issue: "" },
      created_before: { schema: anyText, issue: "" },
    });
    const types = parseTypes(c);
    const createdAfter = q.filters.created_after && parseInstant("created_after", q.filters.created_after);
    const createdBefore = q.filters.created_before && parseInstant("created_before", q.filters.created_before);
    const page = await listLedgerEntries(deps.db, accountId, {
      limit: q.limit,
      ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}),
      ...(types ? { types } : {}),
      ...(createdAfter ? { createdAfter } : {}),
      ...(createdBefore ? { createdBefore } : {}),
    });
    return c.json({ object: "list", ...page });
  });

  app.get(USAGE_PATH, scope, async (c) => {
    const { accountId } = authOf(c);
    onlyParams(c, ["granularity", "start", "end"]);
    const range = resolveBucketRange(
      { granularity: c.req.query("granularity"), start: c.req.query("start"), end: c.req.query("end") },
      deps.clock.now(),
    );
    return c.json(await accountUsage(deps.db, accountId, range));
  });
}
