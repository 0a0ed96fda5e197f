/** Builds the OpenAPI 3.1 document served at /api/v1/openapi.json from the same zod schemas. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { CATALOG, type ModelEntry } from "./catalog.js";
import { registerCancelPath } from "./openapi-cancel.js";
import { errorResponses, quotaResponses } from "./openapi-common.js";
import { registerFileManagementPaths } from "./openapi-files.js";
import { preferenceAppliedHeader, preferWaitHeader, registerLiveStatusPaths } from "./openapi-live.js";
import { registerUsagePaths } from "./openapi-usage.js";
import { registerWebhookPaths } from "./openapi-webhooks.js";
import {
  buildGenerationRequestSchema,
  CreditsSchema,
  FileSchema,
  ModelListSchema,
  TaskListSchema,
  TaskSchema,
} from "./schemas.js";

export interface OpenApiOptions {
  serverUrl?: string;
  version?: string;
  models?: readonly ModelEntry[];
}

export function buildOpenApiDocument(options: OpenApiOptions = {}): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An API key: `Authorization: Bearer rvya_sk_…`",
  });
  const secured = [{ [bearer.name]: [] }];
  const GenerationRequest = buildGenerationRequestSchema(options.models ?? CATALOG);
  const taskId = z.object({ id: z.string().meta({ description: "Task id (task_…)" }) });
  const rateLimitHeaders = {
    "RateLimit-Policy": { description: "IETF rate limit policy", schema: { type: "string" as const } },
    RateLimit: { description: "IETF rate limit state", schema: { type: "string" as const } },
  };

  registry.registerPath({
    method: "get",
    path: "/api/v1/models",
    summary: "List models",
    description: "The public model catalog. No API key needed.",
    responses: { 200: { description: "Models", content: { "application/json": { schema: ModelListSchema } } } },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/openapi.json",
    summary: "This OpenAPI document",
    responses: { 200: { description: "OpenAPI 3.1 document" } },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/generations",
    summary: "Create a generation task",
    description: "Validates the request, reserves the model's price in credits and queues the task.",
    security: secured,
    request: {
      headers: z.object({
        "Idempotency-Key": z.string().max(255).optional().meta({
          description: "Retries with the same key and body replay the first response for 24 h.",
        }),
        ...preferWaitHeader,
      }),
      body: { required: true, content: { "application/json": { schema: GenerationRequest } } },
    },
    responses: {
      202: {
        description: "Task accepted",
        headers: {
          Location: { description: "URL of the task", schema: { type: "string" } },
          ...rateLimitHeaders,
          ...preferenceAppliedHeader,
        },
        content: { "application/json": { schema: TaskSchema } },
      },
      ...errorResponses(400, 401, 402, 403, 409, 413, 429, 503),
      ...quotaResponses(),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/generations",
    summary: "List generation tasks, newest first",
    description:
      "Framegate extension: `client_request_id` lists only the tasks created with that client_request_id " +
      "(1-128 characters), so a client can find its task after a lost create response.",
    security: secured,
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(100).optional(),
        starting_after: z.string().optional(),
        status: z.enum(["queued", "processing", "succeeded", "failed"]).optional(),
        client_request_id: z.string().min(1).max(128).optional(),
      }),
    },
    responses: {
      200: { description: "A page of tasks", content: { "application/json": { schema: TaskListSchema } } },
      ...errorResponses(400, 401, 403, 429),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/generations/{id}",
    summary: "Get a generation task",
    security: secured,
    request: { params: taskId, headers: z.object(preferWaitHeader) },
    responses: {
      200: {
        description: "The task",
        headers: preferenceAppliedHeader,
        content: { "application/json": { schema: TaskSchema } },
      },
      ...errorResponses(401, 403, 404, 429),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/credits",
    summary: "Current credit balance",
    security: secured,
    responses: {
      200: { description: "Balance", content: { "application/json": { schema: CreditsSchema } } },
      ...errorResponses(401, 403, 429),
    },
  });

  registry.registerPath({
    method: "post",
    path: "/api/v1/files",
    summary: "Upload a reference file",
    description:
      "multipart/form-data. The type is detected from the file's bytes. Send `kind` (and `model`) before `file` so an oversize upload is cut off at the policy's limit.",
    security: secured,
    request: {
      body: {
        required: true,
        content: {
          "multipart/form-data": {
            schema: z.object({
              file: z.string().meta({ format: "binary" }),
              kind: z.enum(["image", "video", "audio"]),
              model: z.string().optional(),
              client_request_id: z.string().max(128).optional(),
            }),
          },
        },
      },
    },
    responses: {
      201: { description: "Stored", content: { "application/json": { schema: FileSchema } } },
      ...errorResponses(400, 401, 403, 413, 415, 429, 503),
      ...quotaResponses(),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/files/{id}",
    summary: "Get an uploaded file's metadata",
    security: secured,
    request: { params: z.object({ id: z.string().meta({ description: "File id (file_…)" }) }) },
    responses: {
      200: { description: "The file", content: { "application/json": { schema: FileSchema } } },
      ...errorResponses(401, 403, 404, 429),
    },
  });

  registerFileManagementPaths(registry, secured);
  registerCancelPath(registry, secured);
  registerLiveStatusPaths(registry, secured);
  registerWebhookPaths(registry, secured);
  registerUsagePaths(registry, secured);

  const generator = new OpenApiGeneratorV31(registry.definitions);
  return generator.generateDocument({
    openapi: "3.1.0",
    info: {
      title: "Framegate (Rivya Public API v1)",
      version: options.version ?? "1.0.0",
      description: "Self-hosted implementation of the Rivya Public API v1 for the kling-2-6 video model.",
    },
    servers: options.serverUrl ? [{ url: options.serverUrl }] : [],
  }) as unknown as Record<string, unknown>;
}
