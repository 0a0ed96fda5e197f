/** GET /admin/v1/usage: the usage buckets across accounts, with breakdowns for reconciliation. */
import type { Hono } from "hono";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";
import type { Db } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { adminUsage } from "./report.js";
import { onlyParams } from "./routes.js";
import { resolveBucketRange } from "./time-range.js";

export const ADMIN_USAGE_PATH = "/admin/v1/usage";

export function mountUsageAdminRoutes(app: Hono<AppEnv>, deps: { db: Db; clock: Clock }) {
  // Behind the admin token middleware mounted for /admin/v1/* by the accounts admin routes.
  app.get(ADMIN_USAGE_PATH, async (c) => {
    onlyParams(c, ["granularity", "start", "end", "account_id"]);
    const range = resolveBucketRange(
      { granularity: c.req.query("granularity"), start: c.req.query("start"), end: c.req.query("end") },
      deps.clock.now(),
    );
    const accountId = c.req.query("account_id");
    if (accountId !== undefined) {
      const known = /^[A-Za-z0-9_]{1,64}$/.test(accountId)
        ? await deps.db.selectFrom("accounts").select("id").where("id", "=", accountId).executeTakeFirst()
        : undefined;
      if (!known) throw new ApiError("not_found", "Account not found.");
    }
    return c.json(await adminUsage(deps.db, range, accountId));
  });
}
