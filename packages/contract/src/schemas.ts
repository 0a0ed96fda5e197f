/**
 * Zod schemas of the public wire objects. They document the API (OpenAPI is generated from
 * them) and let tests and the SDK check responses; request validation that depends on the
 * catalog lives in validate.ts.
 */
import { z } from "zod";
import type { ModelEntry } from "./catalog.js";
import { ERROR_STATUS, type ErrorCode } from "./errors.js";

const isoTime = z.string().meta({ format: "date-time", example: "2026-05-11T00:00:00.000Z" });

/** The codes this version sends; the envelope's `code` admits others (see ErrorEnvelopeSchema). */
export const ErrorCodeSchema = z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]).meta({
  id: "ErrorCode",
  description: "The error codes this version of the API sends.",
});

export const ErrorEnvelopeSchema = z
  .object({
    error: z.object({
      // Rivya may add codes (api-contract: adding one is backward compatible), so a client must
      // accept a code it does not know: the known ones stay listed, for code generators and readers.
      code: z.union([ErrorCodeSchema, z.string()]).meta({
        description:
          "A stable, machine-readable code: one of ErrorCode, or a code added later. Treat an unknown code by its HTTP status.",
      }),
      message: z.string(),
      requestId: z.string().meta({ example: "req_3fQe9xv1Kp2Lm8NwA7sT" }),
      details: z.array(z.object({ path: z.string(), issue: z.string() })).optional(),
    }),
  })
  .meta({ id: "Error" });

/** The shape of a reference item in general; the request schema narrows `kind` to what the catalog accepts. */
export const ReferenceMediaItemSchema = z
  .object({
    url: z.string().max(2048).meta({
      format: "uri",
      description: "A file URL issued by POST /api/v1/files to the same account.",
    }),
    kind: z.enum(["image", "video", "audio"]),
    name: z.string().max(255).optional(),
    mimeType: z.string().max(255).optional().meta({ description: "When given, must match the stored file's type." }),
    durationSeconds: z.number().positive().optional(),
    durationToken: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: "The file's duration_token: required for video and audio references." }),
  })
  .strict();

/**
 * A select param: its string options, plus the JSON number or boolean whose string form is one
 * (api-contract §4: `5` and `true` are accepted and stored as "5" and "true"), as validate.ts does.
 */
function selectSchema(options: readonly string[]): z.ZodType {
  const alternatives: z.ZodType[] = [z.enum(options as [string, ...string[]])];
  for (const option of options) {
    if (option === "true" || option === "false") alternatives.push(z.literal(option === "true"));
    else if (option.trim() !== "" && String(Number(option)) === option) alternatives.push(z.literal(Number(option)));
  }
  return alternatives.length === 1
    ? (alternatives[0] as z.ZodType)
    : z.union(alternatives as [z.ZodType, z.ZodType, ...z.ZodType[]]);
}

/** The request body schema, with each model's params derived from the catalog. */
export function buildGenerationRequestSchema(models: readonly ModelEntry[]) {
  const paramShape: Record<string, z.ZodType> = {};
  for (const model of models) {
    for (const param of model.params) {
      if (paramShape[param.key]) continue;
      const base =
        param.type === "select" && param.options
          ? selectSchema(param.options)
          : param.type === "number"
            ? z.number()
            : z.string();
      let bounded = base;
      if (bounded instanceof z.ZodNumber && param.min !== null) bounded = bounded.min(param.min);
      if (bounded instanceof z.ZodNumber && param.max !== null) bounded = bounded.max(param.max);
      paramShape[param.key] = bounded.optional().meta({
        description:
          base instanceof z.ZodUnion
            ? `${param.description}. The number or boolean whose string form is an option is accepted and stored as that string.`
            : param.description,
        ...(param.default !== null ? { default: param.default } : {}),
      });
    }
  }
  const maxItems = Math.max(0, ...models.map((m) => m.reference_media?.max_items ?? 0));
  // Only the kinds some model takes (images for kling-2-6): the schema says what the server accepts.
  const kinds = [...new Set(models.flatMap((m) => m.reference_media?.kinds ?? []))];
  const referenceItem = ReferenceMediaItemSchema.extend({
    kind: kinds.length > 0 ? z.enum(kinds as [string, ...string[]]) : z.never(),
  })
    .strict()
    .meta({ id: "ReferenceMediaItem" });
  paramShape.referenceMediaItems = z.array(referenceItem).max(maxItems).optional();
  // In the document maxLength counts code points, as validate.ts does (zod's own parse would count
  // UTF-16 units; this schema is built to write the document, requests go through validate.ts).
  const maxPrompt = Math.max(...models.map((m) => m.max_prompt_length));
  return z
    .object({
      model: z.enum(models.map((m) => m.id) as [string, ...string[]]).meta({ example: models[0]?.id }),
      prompt: z
        .string()
        .min(1)
        .max(maxPrompt)
        // Not blank (trim's whitespace is \s) and no NUL anywhere, as validate.ts checks.
        // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character the prompt must not contain
        .regex(/^[^\u0000]*[^\s\u0000][^\u0000]*$/)
        .meta({
          description: `Required and not blank; no NUL characters. At most the model's max_prompt_length Unicode code points (${models.map((m) => `${m.id}: ${m.max_prompt_length}`).join(", ")}).`,
          example: "A cinematic product reveal with smooth camera movement",
        }),
      params: z
        .object(paramShape)
        .strict()
        .optional()
        .meta({ description: "Model-specific parameters; GET /api/v1/models lists each model's keys and options." }),
      client_request_id: z.string().max(128).nullable().optional(),
    })
    .strict()
    .meta({ id: "GenerationRequest" });
}

export const MediaSchema = z
  .object({
    url: z.string(),
    poster_url: z.string().nullable().meta({
      description:
        "Signed URL of a JPEG poster frame of the video (same size as the video, taken a tenth into it, at most 1 s), expiring with the video; null when none could be made. A Framegate extension of Rivya v1.",
    }),
    mime_type: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    duration_seconds: z.number(),
    has_audio: z.boolean(),
    size_bytes: z.number().int(),
    sha256: z.string(),
  })
  .meta({ id: "Media" });

export const TaskResultSchema = z
  .object({
    primary_url: z.string(),
    urls: z.array(z.string()),
    media: z.array(MediaSchema),
    expires_at: isoTime,
  })
  .meta({ id: "GenerationResult" });

export const TaskErrorSchema = z
  .object({
    code: z.literal("generation_failed"),
    message: z.string(),
    reason: z.enum(["provider_error", "content_rejected", "timeout", "invalid_input", "canceled"]).meta({
      description:
        "Why it failed. `canceled`: cancelled through POST /api/v1/generations/{id}/cancel (or at the upstream). Every failed task is refunded.",
    }),
  })
  .meta({ id: "GenerationError" });

export const TaskReferenceSchema = z
  .object({
    file_id: z.string(),
    kind: z.enum(["image", "video", "audio"]),
    mime_type: z.string(),
    url: z.string().nullable().meta({ description: "Signed URL of the stored file; null once it was deleted" }),
    name: z.string().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    duration_seconds: z.number().nullable(),
  })
  .meta({ id: "GenerationReference" });

export const FileSchema = z
  .object({
    id: z.string().meta({ example: "file_5Jd0aQ1cVb7xYk2LmN3pRs" }),
    object: z.literal("file"),
    kind: z.enum(["image", "video", "audio"]),
    mime_type: z.string(),
    size_bytes: z.number().int(),
    sha256: z.string(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    duration_seconds: z.number().nullable(),
    duration_token: z.string().nullable(),
    url: z.string(),
    name: z.string().nullable(),
    client_request_id: z.string().nullable(),
    created_at: isoTime,
    expires_at: isoTime,
  })
  .meta({ id: "File" });

export const TaskStatusSchema = z.enum(["queued", "processing", "succeeded", "failed"]);

export const TaskSchema = z
  .object({
    id: z.string().meta({ example: "task_8Xk2qLw9vR4mT7bN1cZp" }),
    object: z.literal("generation"),
    status: TaskStatusSchema,
    model: z.string(),
    reserved_credits: z.number().int(),
    final_credits: z.number().int(),
    created_at: isoTime,
    updated_at: isoTime,
    result: TaskResultSchema.nullable(),
    error: TaskErrorSchema.nullable(),
    client_request_id: z.string().nullable(),
    params: z.record(z.string(), z.string()),
    started_at: isoTime.nullable(),
    completed_at: isoTime.nullable(),
    references: z.array(TaskReferenceSchema),
  })
  .meta({ id: "Generation" });

export const TaskListSchema = z
  .object({ object: z.literal("list"), data: z.array(TaskSchema), has_more: z.boolean() })
  .meta({ id: "GenerationList" });

export const CreditsSchema = z.object({ current_credits: z.number().int() }).meta({ id: "Credits" });

export const ParamDescriptorSchema = z
  .object({
    key: z.string(),
    type: z.enum(["select", "text", "number"]),
    required: z.boolean(),
    default: z.union([z.string(), z.number()]).nullable(),
    options: z.array(z.string()).nullable(),
    min: z.number().nullable(),
    max: z.number().nullable(),
    step: z.number().nullable(),
    description: z.string(),
  })
  .meta({ id: "ModelParam" });

export const ModelEntrySchema = z
  .object({
    id: z.string(),
    display_name: z.string(),
    category: z.enum(["video", "image", "audio", "chat"]),
    runtime: z.literal("async_task"),
    base_credits: z.number().int(),
    billing_type: z.enum(["FIXED", "METERED", "TOKEN_BASED"]),
    supported_modes: z.array(z.string()),
    max_prompt_length: z.number().int(),
    reference_media: z
      .object({
        max_items: z.number().int(),
        kinds: z.array(z.enum(["image", "video", "audio"])),
        limits: z.array(
          z.object({
            kind: z.enum(["image", "video", "audio"]),
            max_bytes: z.number().int(),
            mime_types: z.array(z.string()),
            min_side_px: z.number().int().optional(),
            min_aspect_ratio: z.number().optional(),
            max_aspect_ratio: z.number().optional(),
          }),
        ),
      })
      .nullable(),
    params: z.array(ParamDescriptorSchema),
    api_status: z.enum(["available", "coming_soon", "studio_only"]),
    api_input_status: z.enum(["available_text", "available_url_input", "partial_requires_files", "requires_files_api"]),
    supported_api_inputs: z.array(z.string()),
    requires_files_api: z.boolean().meta({
      description:
        "True only when no mode of the model works without a Files API upload. A model with modes that need one and modes that do not says false here and lists the former in requires_upload_for_modes (api_input_status partial_requires_files).",
    }),
    requires_upload_for_modes: z
      .array(z.string())
      .meta({ description: "The modes that take a reference uploaded through the Files API (`POST /api/v1/files`)." }),
    url_input_supported: z.boolean(),
    file_kinds: z.array(z.enum(["image", "video", "audio"])),
    chat_capabilities: z.null(),
    notices: z.array(z.string()),
  })
  .meta({ id: "Model" });

export const ModelListSchema = z
  .object({ object: z.literal("list"), data: z.array(ModelEntrySchema) })
  .meta({ id: "ModelList" });

export type Task = z.infer<typeof TaskSchema>;
export type TaskStatus = z.infer<typeof TaskStatusSchema>;
export type TaskResult = z.infer<typeof TaskResultSchema>;
export type TaskError = z.infer<typeof TaskErrorSchema>;
export type Media = z.infer<typeof MediaSchema>;
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;
export type ReferenceMediaItem = z.infer<typeof ReferenceMediaItemSchema>;
export type TaskReference = z.infer<typeof TaskReferenceSchema>;
export type FileObject = z.infer<typeof FileSchema>;
