/** Operator views of tasks: every account's tasks (filtered, paginated) and one task in full. */
import { TaskStatusSchema } from "@framegate/contract";
import type { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Db } from "../store/db.js";
import { parseInstant } from "../usage/time-range.js";
import type { Clock } from "../util/clock.js";
import { adminTask, listAdminTasks } from "./admin-list.js";

export const ADMIN_TASKS_PATH = "/admin/v1/tasks";

/** Ids and names as the store writes them (account ids, model ids, provider names). */
const NAME = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);
const ANY = z.string();

export function mountTaskAdminRoutes(app: Hono<AppEnv>, deps: { db: Db; signer: UrlSigner; clock: Clock }) {
  // Behind the admin token middleware mounted for /admin/v1/* by the accounts admin routes.
  app.get(ADMIN_TASKS_PATH, async (c) => {
    // created_after is inclusive and created_before exclusive, as in GET /api/v1/credits/ledger.
    const q = parseListQuery(c, {
      account_id: { schema: NAME, issue: "must be an account id" },
      model: { schema: NAME, issue: "must be a model id" },
      provider: { schema: NAME, issue: "must be a provider name" },
      status: { schema: TaskStatusSchema, issue: "must be one of queued, processing, succeeded, failed" },
      created_after: { schema: ANY, issue: "" },
      created_before: { schema: ANY, issue: "" },
    });
    const f = q.filters;
    const createdAfter = f.created_after === undefined ? undefined : parseInstant("created_after", f.created_after);
    const createdBefore = f.created_before === undefined ? undefined : parseInstant("created_before", f.created_before);
    if (createdAfter !== undefined && createdBefore !== undefined && createdAfter >= createdBefore) {
      throw new ApiError("validation_failed", "Invalid query: created_before must be later than created_after.", {
        details: [{ path: "created_before", issue: "must be later than created_after" }],
      });
    }
    if (f.account_id !== undefined) {
      const known = await deps.db.selectFrom("accounts").select("id").where("id", "=", f.account_id).executeTakeFirst();
      if (!known) throw new ApiError("not_found", "Account not found.");
    }
    const page = await listAdminTasks(
      { db: deps.db, signer: deps.signer, now: deps.clock.now() },
      {
        ...(f.account_id !== undefined ? { accountId: f.account_id } : {}),
        ...(f.model !== undefined ? { model: f.model } : {}),
        ...(f.provider !== undefined ? { provider: f.provider } : {}),
        ...(f.status !== undefined ? { status: TaskStatusSchema.parse(f.status) } : {}),
        ...(createdAfter !== undefined ? { createdAfter } : {}),
        ...(createdBefore !== undefined ? { createdBefore } : {}),
      },
      { limit: q.limit, ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}) },
    );
    return c.json({ object: "list", ...page });
  });

  app.get(`${ADMIN_TASKS_PATH}/:id`, async (c) => {
    const row = await deps.db.selectFrom("tasks").selectAll().where("id", "=", c.req.param("id")).executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Task not found.");
    return c.json(adminTask(row, deps.signer, deps.clock.now()));
  });
}
