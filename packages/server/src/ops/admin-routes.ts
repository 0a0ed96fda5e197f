/** GET /admin/v1/stats: the operators' snapshot (ops/stats.ts). */
import type { Hono } from "hono";
import type { AppEnv } from "../http/context.js";
import { onlyParams } from "../usage/routes.js";
import { operatorStats, type StatsDeps } from "./stats.js";

export const ADMIN_STATS_PATH = "/admin/v1/stats";

export function mountStatsAdminRoutes(app: Hono<AppEnv>, deps: { stats: StatsDeps }) {
  // Behind the admin token middleware mounted for /admin/v1/* by the accounts admin routes.
  app.get(ADMIN_STATS_PATH, async (c) => {
    onlyParams(c, []);
    return c.json(await operatorStats(deps.stats));
  });
}
