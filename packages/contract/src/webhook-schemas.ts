/** Wire schemas of the webhook surface (api-contract §7). */
import { z } from "zod";
import { TaskSchema } from "./schemas.js";

const isoTime = z.string().meta({ format: "date-time" });

/**
 * The task events an endpoint may subscribe to. `generation.processing` (a task was accepted by an
 * upstream and started running) is a Framegate extension and opt-in: an endpoint created without
 * `event_types` gets DEFAULT_WEBHOOK_EVENT_TYPES, the two terminal events of Rivya v1.
 */
export const WEBHOOK_EVENT_TYPES = ["generation.succeeded", "generation.failed", "generation.processing"] as const;
export const DEFAULT_WEBHOOK_EVENT_TYPES = ["generation.succeeded", "generation.failed"] as const;

const eventTypesDescription =
  "Events to deliver; default `generation.succeeded` and `generation.failed`. `generation.processing` (the task started running upstream) is delivered only to endpoints that list it.";

export const WebhookEndpointSchema = z
  .object({
    id: z.string().meta({ example: "whend_2kJ8sQm4Lx0vTb7Nc1RyPa" }),
    object: z.literal("webhook_endpoint"),
    name: z.string().nullable(),
    url: z.string(),
    event_types: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
    status: z.enum(["active", "disabled"]),
    secret_preview: z.string().meta({ example: "whsec_12...abc123" }),
    signing_secret: z.string().optional().meta({ description: "Only in the create and rotate-secret responses." }),
    last_success_at: isoTime.nullable(),
    last_failure_at: isoTime.nullable(),
    failure_count: z.number().int(),
    created_at: isoTime,
    updated_at: isoTime,
    disabled_at: isoTime.nullable(),
    revoked_at: isoTime.nullable(),
  })
  .meta({ id: "WebhookEndpoint" });

export const CreateWebhookSchema = z
  .object({
    name: z.string().max(200).nullable().optional(),
    url: z.string().max(2048).meta({ example: "https://example.com/rivya/webhook" }),
    event_types: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional().meta({ description: eventTypesDescription }),
  })
  .meta({ id: "CreateWebhook" });

export const UpdateWebhookSchema = z
  .object({
    name: z.string().max(200).nullable().optional(),
    url: z.string().max(2048).optional(),
    event_types: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional().meta({ description: eventTypesDescription }),
    status: z.enum(["active", "disabled"]).optional(),
  })
  .meta({ id: "UpdateWebhook" });

export const WebhookEventSchema = z
  .object({
    id: z.string().meta({ example: "evt_5Tq9bXv2Lm8KcN1pRs4WaZ" }),
    object: z.literal("event"),
    type: z.enum([...WEBHOOK_EVENT_TYPES, "webhook.test"]),
    api_version: z.literal("2026-05-11"),
    created_at: isoTime,
    data: z.union([TaskSchema, z.record(z.string(), z.unknown())]),
  })
  .meta({ id: "WebhookEvent" });

export const WebhookDeliverySchema = z
  .object({
    id: z.string().meta({ example: "whdel_8Hn3cVx1Qp7LmK2sTb9RaY" }),
    object: z.literal("webhook_delivery"),
    event_id: z.string(),
    endpoint_id: z.string(),
    event_type: z.string(),
    attempt: z.number().int(),
    status: z.enum(["succeeded", "failed"]),
    response_status: z.number().int().nullable(),
    duration_ms: z.number().int().nullable(),
    error: z.string().nullable(),
    response_body: z.string().nullable().meta({ description: "The first 1 KiB of the response body." }),
    next_attempt_at: isoTime.nullable(),
    created_at: isoTime,
  })
  .meta({ id: "WebhookDelivery" });

export const RedeliverySchema = z
  .object({ event_id: z.string(), endpoint_ids: z.array(z.string()) })
  .meta({ id: "Redelivery" });
