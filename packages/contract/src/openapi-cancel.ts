/** The cancel route of the OpenAPI document (POST /api/v1/generations/{id}/cancel). */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { errorResponse, errors, headers } from "./openapi-common.js";
import { ErrorEnvelopeSchema, type Task, TaskSchema } from "./schemas.js";

/** A task as a cancel returns it: failed, reason `canceled`, nothing charged. */
export const canceledTaskExample: Task = {
  id: "task_8Xk2qLw9vR4mT7bN1cZp",
  object: "generation",
  status: "failed",
  model: "kling-2-6",
  reserved_credits: 55,
  final_credits: 0,
  created_at: "2026-12-06T21:40:00.000Z",
  updated_at: "2026-12-06T21:40:03.512Z",
  result: null,
  error: { code: "generation_failed", message: "The generation was canceled.", reason: "canceled" },
  client_request_id: null,
  params: { duration: "5", sound: "false", aspect_ratio: "16:9" },
  started_at: null,
  completed_at: "2026-12-06T21:40:03.512Z",
  references: [],
};

export const notCancelableExample = {
  error: {
    code: "not_cancelable",
    message: "This generation is already being rendered upstream and can no longer be cancelled.",
    requestId: "req_3fQe9xv1Kp2Lm8NwA7sT",
  },
} as const;

export function registerCancelPath(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  registry.registerPath({
    method: "post",
    path: "/api/v1/generations/{id}/cancel",
    operationId: "cancelGeneration",
    tags: ["Generations"],
    summary: "Cancel a generation task",
    description: [
      "Ends a task that has not produced its result, and refunds its credits in full. A queued task",
      "no upstream has accepted ends at once; one being submitted right now is waited for (up to a",
      "few seconds). A processing task is cancelled at its upstream when the upstream can still stop",
      "it (the simulator; fal while the request waits in fal's queue), otherwise the answer is 409",
      "`not_cancelable` and the task runs on (Kling has no cancel; fal does not stop a running",
      "request). A finished task is 409 `not_cancelable` too, so a second cancel changes nothing.",
      'The cancelled task is `failed` with `error.reason: "canceled"`, and its',
      "`generation.failed` webhook event is sent like any failure's. No request body.",
      "Scope generations:create. A Framegate extension of Rivya v1.",
    ].join(" "),
    security,
    request: { params: z.object({ id: z.string().meta({ description: "Task id (task_…)" }) }) },
    responses: {
      200: {
        description: "Cancelled and refunded: the task as GET returns it",
        content: { "application/json": { schema: TaskSchema, example: canceledTaskExample } },
      },
      ...errors("NotFound"),
      409: {
        description:
          "not_cancelable: the task has finished, runs at an upstream that cannot stop it, or is being submitted (then with Retry-After; try again)",
        headers: headers("Retry-After"),
        content: { "application/json": { schema: ErrorEnvelopeSchema, example: notCancelableExample } },
      },
      503: errorResponse(
        "service_unavailable: the upstream could not be asked to cancel; nothing changed (Retry-After). Or public_api_disabled.",
        ["Retry-After"],
      ),
    },
  });
}
