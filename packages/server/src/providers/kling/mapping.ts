/**
 * The whole request mapping from our normalized task to Kling's create body, in one place
 * (kling-upstreams §1.3–1.4). Our params are select values as strings:
 *
 * | ours                      | Kling field        | rule                                                    |
 * |---------------------------|--------------------|---------------------------------------------------------|
 * | (model kling-2-6)         | `model_name`       | always `"kling-v2-6"` (a missing model_name means v1)  |
 * | prompt                    | `prompt`           | as is, at most 2500 chars; may be omitted for i2v       |
 * | params.duration "5"/"10"  | `duration`         | the STRING "5" / "10" (default "5"); 2.6 has only these |
 * | params.sound "true"/"false" | `sound`          | the STRING "on" / "off" (default "off"), always sent    |
 * | (adapter mode std/pro)    | `mode`             | "pro" whenever sound is on (std is silent only), else the configured mode |
 * | params.aspect_ratio       | `aspect_ratio`     | text2video only ("1:1"/"16:9"/"9:16", default "1:1"); never sent for i2v |
 * | references[image]         | `image`            | image2video only: our signed URL, or raw base64 (no `data:` prefix) |
 * | taskId                    | `external_task_id` | our task id (unique per account; used by findSubmitted) |
 * | (adapter callbackUrl)     | `callback_url`     | only when configured                                    |
 * | —                         | `negative_prompt`  | omitted                                                 |
 * | —                         | `cfg_scale`        | never (kling-v2.x does not support it)                  |
 */
import { ProviderError, type ProviderTask } from "../provider.js";

export const KLING_MODEL_NAME = "kling-v2-6";
export const KLING_MAX_PROMPT_CHARS = 2500;

export type KlingSubpath = "text2video" | "image2video";
export const KLING_SUBPATHS: readonly KlingSubpath[] = ["text2video", "image2video"];
export type KlingMode = "std" | "pro";
export type KlingAspectRatio = "16:9" | "9:16" | "1:1";
export type KlingDuration = "5" | "10";

/** Duration: our select value → Kling's string enum (2.6 supports only 5 and 10). */
export const DURATION_MAP: Readonly<Record<string, KlingDuration>> = { "5": "5", "10": "10" };
/** Sound: our "true"/"false" → Kling's "on"/"off" (a string, not a boolean). */
export const SOUND_MAP: Readonly<Record<string, "on" | "off">> = { true: "on", false: "off" };
/** Aspect ratio: same spelling on both sides. */
export const ASPECT_RATIO_MAP: Readonly<Record<string, KlingAspectRatio>> = {
  "1:1": "1:1",
  "16:9": "16:9",
  "9:16": "9:16",
};
export const DEFAULTS = { duration: "5", sound: "false", aspect_ratio: "1:1" } as const;

/** The JSON body of POST /v1/videos/{text2video|image2video}. */
export interface KlingCreateBody {
  model_name: typeof KLING_MODEL_NAME;
  prompt?: string;
  duration: KlingDuration;
  sound: "on" | "off";
  mode: KlingMode;
  aspect_ratio?: KlingAspectRatio;
  image?: string;
  external_task_id: string;
  callback_url?: string;
}

export interface BuildCreateOptions {
  /** The configured mode (KLING_MODE); overridden to "pro" when sound is on. */
  mode: KlingMode;
  /** The i2v start frame, already resolved to a URL or raw base64. Its presence selects image2video. */
  image?: string;
  callbackUrl?: string;
}

const invalid = (message: string) => new ProviderError(message, { retryable: false, reason: "invalid_input" });

function lookup<T>(table: Readonly<Record<string, T>>, name: string, value: string): T {
  if (Object.hasOwn(table, value)) return table[value] as T;
  throw invalid(
    `Kling 2.6 does not support ${name} ${JSON.stringify(value)} (allowed: ${Object.keys(table).join(", ")})`,
  );
}

export function mapDuration(value: string | undefined): KlingDuration {
  return lookup(DURATION_MAP, "duration", value ?? DEFAULTS.duration);
}

export function mapSound(value: string | undefined): "on" | "off" {
  return lookup(SOUND_MAP, "sound", value ?? DEFAULTS.sound);
}

export function mapAspectRatio(value: string | undefined): KlingAspectRatio {
  return lookup(ASPECT_RATIO_MAP, "aspect_ratio", value ?? DEFAULTS.aspect_ratio);
}

/** std is silent only on 2.6, so sound forces pro (audio is billed the same per second either way). */
export function mapMode(sound: "on" | "off", configured: KlingMode): KlingMode {
  return sound === "on" ? "pro" : configured;
}

/** The endpoint a task goes to: image2video when it carries an image reference. */
export function subpathFor(task: ProviderTask): KlingSubpath {
  return task.references.some((r) => r.kind === "image") ? "image2video" : "text2video";
}

/** Builds the create request; throws `invalid_input` ProviderErrors for values Kling 2.6 cannot take. */
export function buildCreateRequest(
  task: ProviderTask,
  opts: BuildCreateOptions,
): { subpath: KlingSubpath; body: KlingCreateBody } {
  const subpath: KlingSubpath = opts.image !== undefined ? "image2video" : "text2video";
  const prompt = task.prompt.trim();
  if ([...prompt].length > KLING_MAX_PROMPT_CHARS) {
    throw invalid(`prompt is longer than Kling's ${KLING_MAX_PROMPT_CHARS} characters`);
  }
  if (subpath === "text2video" && prompt.length === 0) throw invalid("text-to-video needs a prompt");
  if (!/^[\x21-\x7e]{1,128}$/.test(task.taskId)) {
    throw invalid(`task id ${JSON.stringify(task.taskId)} cannot be used as Kling's external_task_id`);
  }
  const sound = mapSound(task.params.sound);
  const duration = mapDuration(task.params.duration);
  const aspectRatio = mapAspectRatio(task.params.aspect_ratio);
  const body: KlingCreateBody = {
    model_name: KLING_MODEL_NAME,
    ...(prompt.length > 0 ? { prompt } : {}),
    duration,
    sound,
    mode: mapMode(sound, opts.mode),
    ...(subpath === "text2video" ? { aspect_ratio: aspectRatio } : {}),
    ...(opts.image !== undefined ? { image: opts.image } : {}),
    external_task_id: task.taskId,
    ...(opts.callbackUrl ? { callback_url: opts.callbackUrl } : {}),
  };
  return { subpath, body };
}

/** "text2video:867283741759111202": the sub-path is needed to query the task later. */
export function formatUpstreamId(subpath: KlingSubpath, taskId: string): string {
  return `${subpath}:${taskId}`;
}

const TASK_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidKlingTaskId(value: unknown): value is string {
  return typeof value === "string" && TASK_ID_RE.test(value);
}

export function parseUpstreamId(upstreamId: string): { subpath: KlingSubpath; taskId: string } {
  const at = upstreamId.indexOf(":");
  const subpath = upstreamId.slice(0, at);
  const taskId = upstreamId.slice(at + 1);
  if (at < 0 || !(KLING_SUBPATHS as readonly string[]).includes(subpath) || !isValidKlingTaskId(taskId)) {
    throw new ProviderError(`not a Kling upstream id: ${JSON.stringify(upstreamId.slice(0, 200))}`, {
      retryable: false,
    });
  }
  return { subpath: subpath as KlingSubpath, taskId };
}

export type KlingTaskStatus = "submitted" | "processing" | "succeed" | "failed";

/**
 * task_status → our state. Unknown values count as still running (ArcReel #1889); the worker's
 * deadline bounds them.
 */
export function mapTaskStatus(status: unknown): "pending" | "succeeded" | "failed" {
  if (status === "succeed") return "succeeded";
  if (status === "failed") return "failed";
  return "pending";
}
