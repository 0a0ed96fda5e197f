/** Operator view of a task: the public object plus what only operators may see. */
import type { Hono } from "hono";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Db } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { serializeTask } from "./serialize.js";

export function mountTaskAdminRoutes(app: Hono<AppEnv>, deps: { db: Db; signer: UrlSigner; clock: Clock }) {
  // Behind the admin token middleware mounted for /admin/v1/* by the accounts admin routes.
  app.get("/admin/v1/tasks/:id", async (c) => {
    const row = await deps.db.selectFrom("tasks").selectAll().where("id", "=", c.req.param("id")).executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Task not found.");
    const parse = (text: string | null) => (text ? (JSON.parse(text) as unknown) : null);
    return c.json({
      task: serializeTask(row, deps.signer, deps.clock.now()),
      account_id: row.account_id,
      provider: row.provider,
      // Kept even when the task timed out, so a late upstream result can be recovered.
      upstream_id: row.upstream_id,
      upstream_details: parse(row.upstream_details),
      submit_state: parse(row.submit_state),
      error_detail: row.error_detail,
    });
  });
}
