import type { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { authOf, requireScope } from "../http/auth.js";
import { readJsonBody } from "../http/body.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import { TASK_EVENT_TYPES } from "./events.js";
import { CreateEndpointBody, UpdateEndpointBody, type WebhookService } from "./service.js";

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: i.path.join(".") || "", issue: i.message }));
  const first = details[0];
  throw new ApiError("validation_failed", `Invalid request: ${first ? `${first.path} ${first.issue}` : "bad body"}.`, {
    details,
  });
}

const EVENT_TYPE = z.enum([...TASK_EVENT_TYPES, "webhook.test"]);
const DELIVERY_STATUS = z.enum(["succeeded", "failed"]);

export const WEBHOOK_PATHS: [string, string[]][] = [
  ["/api/v1/webhooks", ["GET", "POST"]],
  ["/api/v1/webhooks/:id", ["GET", "PATCH", "DELETE"]],
  ["/api/v1/webhooks/:id/rotate-secret", ["POST"]],
  ["/api/v1/webhooks/:id/test", ["POST"]],
  ["/api/v1/webhooks/:id/deliveries", ["GET"]],
  ["/api/v1/webhook-events", ["GET"]],
  ["/api/v1/webhook-events/:id/redeliver", ["POST"]],
];

export function mountWebhookRoutes(app: Hono<AppEnv>, deps: { webhooks: WebhookService }) {
  const { webhooks } = deps;
  const scope = requireScope("webhooks:manage");

  app.post("/api/v1/webhooks", scope, async (c) => {
    const body = parseBody(CreateEndpointBody, await readJsonBody(c));
    return c.json(await webhooks.create(authOf(c).accountId, body), 201);
  });
  app.get("/api/v1/webhooks", scope, async (c) => {
    const q = parseListQuery(c, {});
    const page = await webhooks.list(authOf(c).accountId, q);
    return c.json({ object: "list", ...page });
  });
  app.get("/api/v1/webhooks/:id", scope, async (c) => {
    const row = await webhooks.find(authOf(c).accountId, c.req.param("id"));
    return c.json(webhooks.serialize(row));
  });
  app.patch("/api/v1/webhooks/:id", scope, async (c) => {
    const body = parseBody(UpdateEndpointBody, await readJsonBody(c));
    return c.json(await webhooks.update(authOf(c).accountId, c.req.param("id"), body));
  });
  app.delete("/api/v1/webhooks/:id", scope, async (c) =>
    c.json(await webhooks.remove(authOf(c).accountId, c.req.param("id"))),
  );
  app.post("/api/v1/webhooks/:id/rotate-secret", scope, async (c) =>
    c.json(await webhooks.rotateSecret(authOf(c).accountId, c.req.param("id"))),
  );
  app.post("/api/v1/webhooks/:id/test", scope, async (c) =>
    c.json(await webhooks.sendTest(authOf(c).accountId, c.req.param("id")), 202),
  );
  app.get("/api/v1/webhooks/:id/deliveries", scope, async (c) => {
    const q = parseListQuery(c, { status: { schema: DELIVERY_STATUS, issue: "must be succeeded or failed" } });
    const page = await webhooks.listDeliveries(authOf(c).accountId, c.req.param("id"), {
      limit: q.limit,
      ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}),
      ...(q.filters.status ? { status: q.filters.status as "succeeded" | "failed" } : {}),
    });
    return c.json({ object: "list", ...page });
  });
  app.get("/api/v1/webhook-events", scope, async (c) => {
    const q = parseListQuery(c, {
      type: { schema: EVENT_TYPE, issue: "must be generation.succeeded, generation.failed or webhook.test" },
    });
    const page = await webhooks.listEvents(authOf(c).accountId, {
      limit: q.limit,
      ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}),
      ...(q.filters.type ? { type: q.filters.type } : {}),
    });
    return c.json({ object: "list", ...page });
  });
  app.post("/api/v1/webhook-events/:id/redeliver", scope, async (c) =>
    c.json(await webhooks.redeliver(authOf(c).accountId, c.req.param("id")), 202),
  );
}
