/** Builds the OpenAPI 3.1 document served at /api/v1/openapi.json from the same zod schemas. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { CATALOG, DEFAULT_UPLOAD_LIMITS, FILE_KINDS, type MediaLimit, type ModelEntry } from "./catalog.js";
import { registerCancelPath } from "./openapi-cancel.js";
import {
  completeOperations,
  errorResponse,
  errors,
  headers,
  LIST_QUERY_RULES,
  pageQuery,
  registerCommonComponents,
} from "./openapi-common.js";
import { registerFileManagementPaths } from "./openapi-files.js";
import { registerKeyPaths } from "./openapi-keys.js";
import { preferWaitHeader, registerLiveStatusPaths } from "./openapi-live.js";
import { registerUsagePaths } from "./openapi-usage.js";
import { registerWebhookEvents } from "./openapi-webhook-events.js";
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

/** Groups of operations, in the order a reader meets them. */
const TAGS = [
  { name: "Models", description: "The model catalog: what can be generated, with which params, at what price." },
  { name: "Generations", description: "Create generation tasks and follow them to their result." },
  { name: "Files", description: "Upload reference media for image-to-video, and manage stored files." },
  { name: "Credits", description: "The balance, its ledger and usage over time." },
  {
    name: "Webhooks",
    description: "Endpoints that receive signed task events (Standard Webhooks), and their deliveries.",
  },
  { name: "Keys", description: "The account's API keys: create (the secret is shown once), list, revoke." },
  { name: "Meta", description: "This document." },
  { name: "Operator", description: "The operator API (ADMIN_TOKEN), not the public one." },
];

const DESCRIPTION = [
  "Self-hosted implementation of the Rivya Public API v1 for the kling-2-6 video model.",
  "",
  "Every response carries `X-Request-Id`, and every public API response the IETF `RateLimit-Policy` and",
  "`RateLimit` fields (unless the operator turned that budget off). Errors are one envelope,",
  '`{"error": {"code", "message", "requestId", "details"?}}`; new codes may be added, so handle an',
  "unknown code by its HTTP status. A path the API does not have is 404 `not_found`; a method a path",
  "does not serve is 405 `method_not_allowed` with `Allow` (components/responses/MethodNotAllowed).",
].join("\n");

const MB = 1024 * 1024;
const sizeText = (bytes: number) => `${bytes / MB} MB`;

function limitText(limit: MediaLimit): string {
  const parts = [`${limit.kind}: at most ${sizeText(limit.max_bytes)}, ${limit.mime_types.join(", ")}`];
  if (limit.min_side_px !== undefined) parts.push(`both sides at least ${limit.min_side_px} px`);
  if (limit.min_aspect_ratio !== undefined && limit.max_aspect_ratio !== undefined) {
    parts.push(`width/height from ${limit.min_aspect_ratio} to ${limit.max_aspect_ratio}`);
  }
  return parts.join("; ");
}

/** The upload rules, from the same data the server enforces (catalog.ts). */
function uploadRules(models: readonly ModelEntry[]): string {
  const lines = [
    `Without \`model\`: ${DEFAULT_UPLOAD_LIMITS.map(limitText).join(". ")}.`,
    ...models
      .filter((m) => m.reference_media)
      .map((m) => `With \`model=${m.id}\`: ${m.reference_media?.limits.map(limitText).join(". ")}.`),
  ];
  return lines.join(" ");
}

export function buildOpenApiDocument(options: OpenApiOptions = {}): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  const models = options.models ?? CATALOG;
  const bearer = registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An API key: `Authorization: Bearer rvya_sk_…`",
  });
  const secured = [{ [bearer.name]: [] }];
  /** Routes that need no key override the document's default (an API key). */
  const keyless: Record<string, string[]>[] = [];
  registerCommonComponents(registry);
  const GenerationRequest = buildGenerationRequestSchema(models);
  const taskId = z.object({ id: z.string().meta({ description: "Task id (task_…)" }) });
  const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

  registry.registerPath({
    method: "get",
    path: "/api/v1/models",
    operationId: "listModels",
    tags: ["Models"],
    summary: "List models",
    description: "The public model catalog. No API key needed; limited per client address.",
    security: keyless,
    responses: { 200: { description: "Models", content: json(ModelListSchema) } },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/openapi.json",
    operationId: "getOpenApiDocument",
    tags: ["Meta"],
    summary: "This OpenAPI document",
    description: "No API key needed; limited per client address.",
    security: keyless,
    responses: {
      200: {
        description: "OpenAPI 3.1 document",
        content: { "application/json": { schema: { type: "object", additionalProperties: true } } },
      },
    },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/generations",
    operationId: "createGeneration",
    tags: ["Generations"],
    summary: "Create a generation task",
    description:
      "Validates the request, reserves the model's price in credits and queues the task. Scope generations:create.",
    security: secured,
    request: {
      headers: z.object({
        "Idempotency-Key": z
          .string()
          .min(1)
          .max(255)
          .regex(/^[\x20-\x7e]+$/)
          .optional()
          .meta({
            description:
              "1-255 printable ASCII characters. A retry with the same key and body within 24 h replays the first answer (202 or 402) with Idempotent-Replayed: true; the same key with another body is 409.",
          }),
        ...preferWaitHeader,
      }),
      body: { required: true, content: json(GenerationRequest) },
    },
    responses: {
      202: {
        description: "Task accepted",
        headers: headers("Location", "Idempotent-Replayed", "Preference-Applied"),
        content: json(TaskSchema),
      },
      402: errorResponse("insufficient_credits: nothing was created or charged", ["Idempotent-Replayed"]),
      409: errorResponse(
        "idempotency_conflict: the Idempotency-Key was used with another body, or its first request is still running (then with Retry-After)",
        ["Retry-After"],
      ),
      ...errors("BadRequest", "ForbiddenOrQuota", "PayloadTooLarge"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/generations",
    operationId: "listGenerations",
    tags: ["Generations"],
    summary: "List generation tasks, newest first",
    description: [
      "Framegate extension: `client_request_id` lists only the tasks created with that client_request_id",
      `(1-128 characters), so a client can find its task after a lost create response. ${LIST_QUERY_RULES}`,
      "Scope generations:read.",
    ].join(" "),
    security: secured,
    request: {
      query: z.object({
        ...pageQuery,
        status: z.enum(["queued", "processing", "succeeded", "failed"]).optional(),
        client_request_id: z.string().min(1).max(128).optional(),
      }),
    },
    responses: {
      200: { description: "A page of tasks", content: json(TaskListSchema) },
      ...errors("BadRequest"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/generations/{id}",
    operationId: "getGeneration",
    tags: ["Generations"],
    summary: "Get a generation task",
    description: "Scope generations:read.",
    security: secured,
    request: { params: taskId, headers: z.object(preferWaitHeader) },
    responses: {
      200: { description: "The task", headers: headers("Preference-Applied"), content: json(TaskSchema) },
      ...errors("NotFound"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/credits",
    operationId: "getCredits",
    tags: ["Credits"],
    summary: "Current credit balance",
    description: "Scope credits:read.",
    security: secured,
    responses: { 200: { description: "Balance", content: json(CreditsSchema) } },
  });

  registry.registerPath({
    method: "post",
    path: "/api/v1/files",
    operationId: "uploadFile",
    tags: ["Files"],
    summary: "Upload a reference file",
    description: [
      "multipart/form-data. The type is detected from the file's bytes (never the name or the part's",
      "Content-Type); a type the kind (or model) does not allow is 415, a file above its limit 413.",
      "Send `kind` (and `model`) before `file` so an oversize upload is cut off at the policy's limit.",
      uploadRules(models),
      "Scope files:create.",
    ].join(" "),
    security: secured,
    request: {
      body: {
        required: true,
        content: {
          "multipart/form-data": {
            schema: z.object({
              file: z.string().meta({
                description: "The file's bytes.",
                contentMediaType: "application/octet-stream",
              }),
              kind: z.enum(FILE_KINDS as [string, ...string[]]),
              model: z
                .enum(models.map((m) => m.id) as [string, ...string[]])
                .optional()
                .meta({ description: "Apply this model's upload policy; the kind must be one it accepts." }),
              client_request_id: z.string().max(128).optional(),
            }),
            encoding: {
              file: {
                contentType: [...new Set(DEFAULT_UPLOAD_LIMITS.flatMap((l) => l.mime_types))].join(", "),
              },
            },
          },
        },
      },
    },
    responses: {
      201: { description: "Stored", content: json(FileSchema) },
      413: errorResponse("file_too_large (above the kind's or model's limit) or payload_too_large"),
      415: errorResponse("unsupported_media_type: the detected type is not allowed for the kind or model"),
      503: errorResponse(
        "service_unavailable: too many files are being inspected right now (Retry-After); or public_api_disabled",
        ["Retry-After"],
      ),
      ...errors("BadRequest", "ForbiddenOrQuota"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/v1/files/{id}",
    operationId: "getFile",
    tags: ["Files"],
    summary: "Get an uploaded file's metadata",
    description: "Scope files:read.",
    security: secured,
    request: { params: z.object({ id: z.string().meta({ description: "File id (file_…)" }) }) },
    responses: {
      200: { description: "The file", content: json(FileSchema) },
      ...errors("NotFound"),
    },
  });

  registerFileManagementPaths(registry, secured);
  registerCancelPath(registry, secured);
  registerLiveStatusPaths(registry, secured);
  registerWebhookPaths(registry, secured);
  registerKeyPaths(registry, secured);
  registerUsagePaths(registry, secured);
  registerWebhookEvents(registry);

  const generator = new OpenApiGeneratorV31(registry.definitions);
  const document = generator.generateDocument({
    openapi: "3.1.0",
    info: {
      title: "Framegate (Rivya Public API v1)",
      version: options.version ?? "1.0.0",
      description: DESCRIPTION,
      license: { name: "MIT", identifier: "MIT" },
    },
    // Without a known base URL: the server that served the document.
    servers: [options.serverUrl ? { url: options.serverUrl } : { url: "/", description: "This server" }],
    // An API key unless an operation says otherwise (the keyless ones say `security: []`).
    security: secured,
    tags: TAGS,
  }) as unknown as Record<string, unknown>;
  completeOperations(document);
  return document;
}
