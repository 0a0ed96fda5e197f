/**
 * The fal.ai mapping for Kling 2.6: which fal model a task goes to, what JSON fal receives, and
 * how fal's raw model output becomes ProviderMedia. Pure functions, no I/O.
 *
 * Request mapping table (Rivya param -> fal input field; docs/kling-upstreams.md §2.2):
 *
 * | Rivya (normalized params)  | text-to-video                | image-to-video                          |
 * |----------------------------|------------------------------|-----------------------------------------|
 * | prompt                     | `prompt` (as is)             | `prompt` (as is)                        |
 * | duration "5" / "10"        | `duration` "5" / "10" (str)  | `duration` "5" / "10" (str)             |
 * | sound "false" / "true"     | `generate_audio` false/true  | `generate_audio` false/true             |
 * | aspect_ratio 1:1/16:9/9:16 | `aspect_ratio` (same value)  | not sent (the image decides the shape)  |
 * | references[0] (image)      | -                            | `start_image_url` = reference.url       |
 *
 * Decisions:
 * - `generate_audio` is ALWAYS sent as a boolean. fal defaults it to `true`, which doubles the
 *   price; a missing `sound` param therefore maps to `false`, never to fal's default.
 * - `aspect_ratio` is always sent for t2v (a missing param maps to the catalog default "1:1",
 *   not fal's "16:9"); for i2v it is dropped, since the normalized params always carry one.
 * - `negative_prompt` is not sent: the public API has no such param, so fal's own default
 *   ("blur, distort, and low quality") applies. `cfg_scale` is not sent either (fal default 0.5).
 *   `end_image_url` / `voice_ids` are not offered by the catalog.
 * - Values outside the table, non-image references, more than one reference, or a reference
 *   without a URL fal can fetch are refused before anything is sent (ProviderError, final).
 */
import { type PollResult, ProviderError, type ProviderTask } from "../provider.js";

/** The public model this adapter serves. */
export const FAL_SUPPORTED_MODEL = "kling-2-6";

/** owner/app: the only part of the model id the queue's status/result/cancel paths use. */
export const FAL_APP_ID = "fal-ai/kling-video";

export type FalMode = "text-to-video" | "image-to-video";

export const FAL_MODEL_IDS: Readonly<Record<FalMode, string>> = {
  "text-to-video": "fal-ai/kling-video/v2.6/pro/text-to-video",
  "image-to-video": "fal-ai/kling-video/v2.6/pro/image-to-video",
};

/** Rivya duration -> fal `duration` (a string on fal too). */
export const FAL_DURATIONS: Readonly<Record<string, "5" | "10">> = { "5": "5", "10": "10" };

/** Rivya sound -> fal `generate_audio`. */
export const FAL_SOUND: Readonly<Record<string, boolean>> = { false: false, true: true };

/** Rivya aspect_ratio -> fal `aspect_ratio` (t2v only). */
export const FAL_ASPECT_RATIOS: Readonly<Record<string, "1:1" | "16:9" | "9:16">> = {
  "1:1": "1:1",
  "16:9": "16:9",
  "9:16": "9:16",
};

/** Used when a param is missing (the gateway normally fills in the catalog defaults). */
export const FAL_PARAM_DEFAULTS = { duration: "5", sound: "false", aspect_ratio: "1:1" } as const;

export interface FalTextToVideoInput {
  prompt: string;
  duration: "5" | "10";
  aspect_ratio: "1:1" | "16:9" | "9:16";
  generate_audio: boolean;
}

export interface FalImageToVideoInput {
  prompt: string;
  duration: "5" | "10";
  generate_audio: boolean;
  start_image_url: string;
}

export type FalRequest =
  | { mode: "text-to-video"; modelId: string; input: FalTextToVideoInput }
  | { mode: "image-to-video"; modelId: string; input: FalImageToVideoInput };

/** fal request ids are UUIDs; anything outside this alphabet is never put into a path. */
export const FAL_REQUEST_ID_RE = /^[A-Za-z0-9-]{1,128}$/;

export function isFalRequestId(value: unknown): value is string {
  return typeof value === "string" && FAL_REQUEST_ID_RE.test(value);
}

function invalid(message: string): ProviderError {
  return new ProviderError(message, { retryable: false, reason: "invalid_input" });
}

function lookup<T>(table: Readonly<Record<string, T>>, param: string, value: string | undefined, fallback: string): T {
  const key = value ?? fallback;
  if (!Object.hasOwn(table, key)) throw invalid(`fal: unsupported ${param} ${JSON.stringify(key)}`);
  return table[key] as T;
}

/** Builds the fal model id and raw JSON input for a task (throws a final ProviderError when it cannot). */
export function buildFalRequest(task: ProviderTask): FalRequest {
  if (task.model !== FAL_SUPPORTED_MODEL) {
    throw invalid(`fal: model ${JSON.stringify(task.model)} is not served by this provider`);
  }
  if (typeof task.prompt !== "string") throw invalid("fal: prompt must be a string");
  const params = task.params ?? {};
  const duration = lookup(FAL_DURATIONS, "duration", params.duration, FAL_PARAM_DEFAULTS.duration);
  const generateAudio = lookup(FAL_SOUND, "sound", params.sound, FAL_PARAM_DEFAULTS.sound);

  const references = task.references ?? [];
  const other = references.find((r) => r.kind !== "image");
  if (other) throw invalid(`fal: ${other.kind} references are not supported for ${FAL_SUPPORTED_MODEL}`);
  if (references.length > 1) throw invalid("fal: at most one reference image is supported");
  const image = references[0];

  if (!image) {
    const aspectRatio = lookup(FAL_ASPECT_RATIOS, "aspect_ratio", params.aspect_ratio, FAL_PARAM_DEFAULTS.aspect_ratio);
    return {
      mode: "text-to-video",
      modelId: FAL_MODEL_IDS["text-to-video"],
      input: { prompt: task.prompt, duration, aspect_ratio: aspectRatio, generate_audio: generateAudio },
    };
  }
  if (!image.url || !isHttpUrl(image.url)) {
    // Our own wiring problem (fal can only read a URL), not the caller's input.
    throw new ProviderError("fal: the reference image has no http(s) URL fal could fetch", { retryable: false });
  }
  return {
    mode: "image-to-video",
    modelId: FAL_MODEL_IDS["image-to-video"],
    input: { prompt: task.prompt, duration, generate_audio: generateAudio, start_image_url: image.url },
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && !url.username && !url.password;
  } catch {
    return false;
  }
}

// --- Queue paths: always rebuilt from the configured base, never taken from a response. ---

/** `{base}/{model id}`: the only path that uses the full model id. */
export function falSubmitUrl(queueUrl: string, modelId: string): string {
  return `${queueUrl}/${modelId}`;
}

/** `{base}/fal-ai/kling-video/requests/{id}/status` (owner/app only, no /v2.6/pro/...). */
export function falStatusUrl(queueUrl: string, requestId: string): string {
  return `${queueUrl}/${FAL_APP_ID}/requests/${checkedId(requestId)}/status`;
}

/** `{base}/fal-ai/kling-video/requests/{id}`: the raw model output (or the model's error). */
export function falResultUrl(queueUrl: string, requestId: string): string {
  return `${queueUrl}/${FAL_APP_ID}/requests/${checkedId(requestId)}`;
}

/** `{base}/fal-ai/kling-video/requests/{id}/cancel` (PUT). */
export function falCancelUrl(queueUrl: string, requestId: string): string {
  return `${queueUrl}/${FAL_APP_ID}/requests/${checkedId(requestId)}/cancel`;
}

function checkedId(requestId: string): string {
  if (!isFalRequestId(requestId)) throw new ProviderError("fal: malformed request id", { retryable: false });
  return requestId;
}

/**
 * Normalizes a configured queue base URL: http(s), no credentials, query or fragment; trailing
 * slashes removed. Throws a plain Error (a configuration mistake, reported at startup).
 */
export function normalizeQueueUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error("fal: FAL_QUEUE_URL is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("fal: FAL_QUEUE_URL must be http(s)");
  if (url.username || url.password) throw new Error("fal: FAL_QUEUE_URL must not contain credentials");
  if (url.search || url.hash) throw new Error("fal: FAL_QUEUE_URL must not have a query or fragment");
  return `${url.origin}${url.pathname}`.replace(/\/+$/u, "");
}

// --- Output mapping ---

/**
 * Maps the raw model output (`{video: {url, content_type, file_name, file_size}}`, NOT a queue
 * envelope) to a poll result. A well-formed JSON answer without a usable `video.url` is final:
 * fetching it again returns the same thing.
 */
export function mapFalOutput(output: unknown): PollResult {
  const video = isRecord(output) ? output.video : undefined;
  const url = isRecord(video) ? video.url : undefined;
  if (typeof url !== "string" || !isHttpUrl(url)) {
    return {
      state: "failed",
      reason: "provider_error",
      message: isRecord(video)
        ? "fal returned a video without a usable http(s) URL"
        : "fal returned a result without a video",
    };
  }
  const v = video as Record<string, unknown>;
  const contentType = typeof v.content_type === "string" ? v.content_type.trim().toLowerCase() : "";
  const mimeType = /^video\/[a-z0-9.+-]+$/u.test(contentType) ? contentType : "video/mp4";
  const details: Record<string, string> = {};
  if (typeof v.file_size === "number" && Number.isFinite(v.file_size)) details.file_size = String(v.file_size);
  if (typeof v.file_name === "string" && v.file_name.length <= 256) details.file_name = v.file_name;
  return {
    state: "succeeded",
    media: [{ kind: "url", url, mimeType }],
    ...(Object.keys(details).length > 0 ? { details } : {}),
  };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
