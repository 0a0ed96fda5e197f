/** Live status in the OpenAPI document: the SSE events route and the `Prefer: wait` headers. */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { errorResponse, errors } from "./openapi-common.js";

/** The longest `Prefer: wait` a server honours, in seconds (larger values are held this long). */
export const MAX_PREFER_WAIT_SECONDS = 60;

/** The request header of GET /generations/{id} and of create. */
export const preferWaitHeader = {
  Prefer: z
    .string()
    .optional()
    .meta({
      description: `RFC 7240. \`wait=N\` holds the answer until the task is succeeded or failed, or N seconds pass (N above ${MAX_PREFER_WAIT_SECONDS} is held ${MAX_PREFER_WAIT_SECONDS} s), then returns its current state with the same status code. A malformed value is ignored. When the server holds too many requests already, or is shutting down, it answers at once without Preference-Applied.`,
      example: "wait=30",
    }),
};

const EVENTS_DESCRIPTION = [
  "Server-Sent Events: the task's status changes as they happen. Each event is",
  "`id: <n>` and `data: <the task, as GET /api/v1/generations/{id} returns it>`, where n is 1 for",
  "queued, 2 for processing and 3 for succeeded or failed. The first event is the current state,",
  "then one per change; the stream ends after the terminal event. A comment line (`: keep-alive`)",
  "is sent at least every 15 s. Reconnect with `Last-Event-ID: <n>` to receive only newer states;",
  "once the terminal event was seen (n = 3) the answer is 204, which tells EventSource to stop.",
  "Scope generations:read. Another account's task is 404, before any stream starts.",
].join(" ");

export function registerLiveStatusPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  registry.registerPath({
    method: "get",
    path: "/api/v1/generations/{id}/events",
    operationId: "streamGenerationEvents",
    tags: ["Generations"],
    summary: "Follow a generation task's status (Server-Sent Events)",
    description: EVENTS_DESCRIPTION,
    security,
    request: {
      params: z.object({ id: z.string().meta({ description: "Task id (task_…)" }) }),
      headers: z.object({
        "Last-Event-ID": z
          .string()
          .optional()
          .meta({ description: "The id of the last event received (1, 2 or 3); other values are ignored." }),
      }),
    },
    responses: {
      200: {
        description: "An event stream",
        headers: {
          "X-Accel-Buffering": {
            description: "`no`: tells proxies such as nginx not to buffer the stream.",
            required: true,
            schema: { type: "string", enum: ["no"] },
          },
        },
        content: {
          "text/event-stream": {
            schema: z.string().meta({
              description: "`retry: 2000`, then events `id: <n>` / `data: <task JSON>`, and `: keep-alive` comments",
              example:
                'retry: 2000\n\nid: 1\ndata: {"id":"task_…","status":"queued",…}\n\nid: 2\ndata: {"id":"task_…","status":"processing",…}\n\n: keep-alive\n\nid: 3\ndata: {"id":"task_…","status":"succeeded",…}\n\n',
            }),
          },
        },
      },
      204: { description: "Last-Event-ID was the terminal event's: nothing more will come" },
      ...errors("NotFound"),
      429: errorResponse(
        "rate_limited: the key's read budget, or the account's open streams (SSE_MAX_STREAMS_PER_ACCOUNT); Retry-After",
        ["Retry-After"],
      ),
      503: errorResponse(
        "service_unavailable: the server's open streams are at SSE_MAX_STREAMS, or it is shutting down (Retry-After); or public_api_disabled",
        ["Retry-After"],
      ),
    },
  });
}
