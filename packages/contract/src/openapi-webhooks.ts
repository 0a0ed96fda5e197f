/** The webhook routes of the OpenAPI document. */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { errorResponses, quotaResponses } from "./openapi-common.js";
import {
  CreateWebhookSchema,
  RedeliverySchema,
  UpdateWebhookSchema,
  WEBHOOK_EVENT_TYPES,
  WebhookDeliverySchema,
  WebhookEndpointSchema,
  WebhookEventSchema,
} from "./webhook-schemas.js";

const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });
const list = <T extends z.ZodType>(item: T) =>
  z.object({ object: z.literal("list"), data: z.array(item), has_more: z.boolean() });
const page = { limit: z.coerce.number().int().min(1).max(100).optional(), starting_after: z.string().optional() };
const endpointId = z.object({ id: z.string().meta({ description: "Endpoint id (whend_…)" }) });

export function registerWebhookPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  const common = errorResponses(401, 403, 404, 429);
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks",
    summary: "Create a webhook endpoint (the signing secret is returned only here and by rotate-secret)",
    security,
    request: { body: { required: true, content: json(CreateWebhookSchema) } },
    responses: {
      201: { description: "Created", content: json(WebhookEndpointSchema) },
      ...errorResponses(400, 401, 403, 429),
      ...quotaResponses(),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks",
    summary: "List webhook endpoints",
    security,
    request: { query: z.object(page) },
    responses: { 200: { description: "Endpoints", content: json(list(WebhookEndpointSchema)) }, ...common },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks/{id}",
    summary: "Get a webhook endpoint",
    security,
    request: { params: endpointId },
    responses: { 200: { description: "The endpoint", content: json(WebhookEndpointSchema) }, ...common },
  });
  registry.registerPath({
    method: "patch",
    path: "/api/v1/webhooks/{id}",
    summary: "Update a webhook endpoint (status active re-enables a disabled one)",
    security,
    request: { params: endpointId, body: { required: true, content: json(UpdateWebhookSchema) } },
    responses: {
      200: { description: "The endpoint", content: json(WebhookEndpointSchema) },
      ...errorResponses(400, 401, 403, 404, 429),
    },
  });
  registry.registerPath({
    method: "delete",
    path: "/api/v1/webhooks/{id}",
    summary: "Delete a webhook endpoint",
    security,
    request: { params: endpointId },
    responses: { 200: { description: "The revoked endpoint", content: json(WebhookEndpointSchema) }, ...common },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks/{id}/rotate-secret",
    summary: "Rotate the signing secret (the old one keeps signing for 24 h)",
    security,
    request: { params: endpointId },
    responses: {
      200: { description: "The endpoint with its new secret", content: json(WebhookEndpointSchema) },
      ...common,
    },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks/{id}/test",
    summary: "Send a webhook.test event to this endpoint",
    security,
    request: { params: endpointId },
    responses: {
      202: { description: "The test event, queued for delivery", content: json(WebhookEventSchema) },
      ...common,
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks/{id}/deliveries",
    summary: "Delivery attempts to this endpoint, newest first",
    security,
    request: { params: endpointId, query: z.object({ ...page, status: z.enum(["succeeded", "failed"]).optional() }) },
    responses: { 200: { description: "Attempts", content: json(list(WebhookDeliverySchema)) }, ...common },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhook-events",
    summary: "Events of this account, newest first",
    security,
    request: {
      query: z.object({
        ...page,
        type: z.enum([...WEBHOOK_EVENT_TYPES, "webhook.test"]).optional(),
      }),
    },
    responses: { 200: { description: "Events", content: json(list(WebhookEventSchema)) }, ...common },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhook-events/{id}/redeliver",
    summary: "Deliver an event again to its endpoints (Framegate extra)",
    security,
    request: { params: z.object({ id: z.string() }) },
    responses: { 202: { description: "Deliveries queued", content: json(RedeliverySchema) }, ...common },
  });
}
