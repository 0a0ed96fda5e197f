/** The webhook routes of the OpenAPI document. */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { errorResponse, errors, LIST_QUERY_RULES, pageQuery } from "./openapi-common.js";
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
const endpointId = z.object({ id: z.string().meta({ description: "Endpoint id (whend_…)" }) });

export function registerWebhookPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  const notFound = errors("NotFound");
  const badRequest = errorResponse(
    "validation_failed, or webhook_url_rejected: the URL is not https, or its host is local, private or reserved (WEBHOOK_ALLOW_INSECURE_URLS allows them in development)",
  );
  const tags = ["Webhooks"];
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks",
    operationId: "createWebhookEndpoint",
    tags,
    summary: "Create a webhook endpoint (the signing secret is returned only here and by rotate-secret)",
    description: "Scope webhooks:manage, like every webhook route.",
    security,
    request: { body: { required: true, content: json(CreateWebhookSchema) } },
    responses: {
      201: { description: "Created", content: json(WebhookEndpointSchema) },
      400: badRequest,
      ...errors("ForbiddenOrQuota", "PayloadTooLarge"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks",
    operationId: "listWebhookEndpoints",
    tags,
    summary: "List webhook endpoints",
    description: LIST_QUERY_RULES,
    security,
    request: { query: z.object(pageQuery) },
    responses: {
      200: { description: "Endpoints", content: json(list(WebhookEndpointSchema)) },
      ...errors("BadRequest"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks/{id}",
    operationId: "getWebhookEndpoint",
    tags,
    summary: "Get a webhook endpoint",
    security,
    request: { params: endpointId },
    responses: { 200: { description: "The endpoint", content: json(WebhookEndpointSchema) }, ...notFound },
  });
  registry.registerPath({
    method: "patch",
    path: "/api/v1/webhooks/{id}",
    operationId: "updateWebhookEndpoint",
    tags,
    summary: "Update a webhook endpoint (status active re-enables a disabled one)",
    security,
    request: { params: endpointId, body: { required: true, content: json(UpdateWebhookSchema) } },
    responses: {
      200: { description: "The endpoint", content: json(WebhookEndpointSchema) },
      400: badRequest,
      ...errors("NotFound", "PayloadTooLarge"),
    },
  });
  registry.registerPath({
    method: "delete",
    path: "/api/v1/webhooks/{id}",
    operationId: "deleteWebhookEndpoint",
    tags,
    summary: "Delete a webhook endpoint",
    security,
    request: { params: endpointId },
    responses: { 200: { description: "The revoked endpoint", content: json(WebhookEndpointSchema) }, ...notFound },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks/{id}/rotate-secret",
    operationId: "rotateWebhookSecret",
    tags,
    summary: "Rotate the signing secret (the old one keeps signing for 24 h)",
    security,
    request: { params: endpointId },
    responses: {
      200: { description: "The endpoint with its new secret", content: json(WebhookEndpointSchema) },
      ...notFound,
    },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhooks/{id}/test",
    operationId: "sendWebhookTestEvent",
    tags,
    summary: "Send a webhook.test event to this endpoint",
    security,
    request: { params: endpointId },
    responses: {
      202: { description: "The test event, queued for delivery", content: json(WebhookEventSchema) },
      ...errors("NotFound"),
      400: errorResponse("validation_failed: the endpoint is disabled (PATCH its status to active first)"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhooks/{id}/deliveries",
    operationId: "listWebhookDeliveries",
    tags,
    summary: "Delivery attempts to this endpoint, newest first",
    description: LIST_QUERY_RULES,
    security,
    request: {
      params: endpointId,
      query: z.object({ ...pageQuery, status: z.enum(["succeeded", "failed"]).optional() }),
    },
    responses: {
      200: { description: "Attempts", content: json(list(WebhookDeliverySchema)) },
      ...errors("BadRequest", "NotFound"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/webhook-events",
    operationId: "listWebhookEvents",
    tags,
    summary: "Events of this account, newest first",
    description: LIST_QUERY_RULES,
    security,
    request: {
      query: z.object({
        ...pageQuery,
        type: z.enum([...WEBHOOK_EVENT_TYPES, "webhook.test"]).optional(),
      }),
    },
    responses: { 200: { description: "Events", content: json(list(WebhookEventSchema)) }, ...errors("BadRequest") },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/webhook-events/{id}/redeliver",
    operationId: "redeliverWebhookEvent",
    tags,
    summary: "Deliver an event again to its endpoints (Framegate extra)",
    security,
    request: { params: z.object({ id: z.string().meta({ description: "Event id (evt_…)" }) }) },
    responses: { 202: { description: "Deliveries queued", content: json(RedeliverySchema) }, ...notFound },
  });
}
