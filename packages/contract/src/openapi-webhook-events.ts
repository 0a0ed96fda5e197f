/**
 * The document's top-level `webhooks` (OpenAPI 3.1): the requests the server sends to a
 * customer's endpoint, one per event type, each signed the Standard Webhooks way.
 */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { TaskSchema } from "./schemas.js";
import { WEBHOOK_EVENT_TYPES } from "./webhook-schemas.js";

const isoTime = z.string().meta({ format: "date-time" });

/** Why each event is sent. */
const WHEN: Record<(typeof WEBHOOK_EVENT_TYPES)[number] | "webhook.test", string> = {
  "generation.succeeded":
    "A task succeeded: `data` is the task with its result, as GET /api/v1/generations/{id} returns it.",
  "generation.failed":
    "A task failed (or was cancelled) and its credits were refunded: `data` is the task with its error.",
  "generation.processing":
    "An upstream accepted a task and it started running (a Framegate extension, sent only to endpoints that list it in event_types): `data` is the task.",
  "webhook.test": "Sent by POST /api/v1/webhooks/{id}/test to that endpoint only.",
};

const TestEventDataSchema = z.object({ message: z.string(), endpoint_id: z.string() });

/**
 * The envelope of one event type: api-contract §7. Inline, not a named component: this version of
 * zod-to-openapi writes the $ref of a schema used only under `webhooks` but not the schema itself.
 */
function envelope(type: string, data: z.ZodType) {
  return z
    .object({
      id: z.string().meta({ description: "The event id (evt_…), the same as the webhook-id header." }),
      object: z.literal("event"),
      type: z.literal(type),
      api_version: z.literal("2026-05-11"),
      created_at: isoTime,
      data,
    })
    .meta({ title: `${eventName(type)}Event` });
}

const signatureHeaders = z.object({
  "webhook-id": z.string().meta({
    description: "The event id (evt_…): the same on every retry, so a receiver can drop duplicates.",
    example: "evt_5Tq9bXv2Lm8KcN1pRs4WaZ",
  }),
  "webhook-timestamp": z.string().regex(/^\d+$/).meta({
    description: "When this attempt was signed, in Unix seconds; refuse values far from your clock (replays).",
    example: "1765100000",
  }),
  "webhook-signature": z.string().meta({
    description:
      '`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{raw body}">`, keyed with the base64-decoded part of the endpoint\'s `whsec_` secret. Space-separated when two secrets sign (for 24 h after a rotation): accept the request if any signature matches.',
    example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
  }),
});

const DELIVERY = [
  "POST with a JSON body, signed with Standard Webhooks headers. Any 2xx within 10 s acknowledges it;",
  "anything else (or no answer, or a redirect, which is not followed) is retried after 5 s, 5 min, 30 min,",
  "2 h, 5 h, 10 h and 10 h (8 attempts). An endpoint whose deliveries have all failed for 5 days is disabled.",
].join(" ");

export function registerWebhookEvents(registry: OpenAPIRegistry): void {
  const types: [string, z.ZodType][] = [
    ...WEBHOOK_EVENT_TYPES.map((type): [string, z.ZodType] => [type, TaskSchema]),
    ["webhook.test", TestEventDataSchema],
  ];
  for (const [type, data] of types) {
    registry.registerWebhook({
      method: "post",
      path: type,
      operationId: `on${eventName(type)}`,
      tags: ["Webhooks"],
      summary: `The ${type} event`,
      description: `${WHEN[type as keyof typeof WHEN]} ${DELIVERY}`,
      request: {
        headers: signatureHeaders,
        body: { required: true, content: { "application/json": { schema: envelope(type, data) } } },
      },
      responses: {
        "2XX": { description: "Received: any 2xx status acknowledges the event (the body is ignored)." },
      },
    });
  }
}

/** "generation.succeeded" → "GenerationSucceeded". */
function eventName(type: string): string {
  return type
    .split(/[._]/)
    .map((w) => (w[0]?.toUpperCase() ?? "") + w.slice(1))
    .join("");
}
