/**
 * The generation flags, derived from the model catalog (@framegate/contract): the allowed values
 * in --help and the local checks that refuse a bad value before any request is made.
 */
import { stat } from "node:fs/promises";
import {
  CATALOG,
  FILE_KINDS,
  type FileKind,
  findModel,
  KLING_2_6,
  type ModelEntry,
  uploadLimit,
  WEBHOOK_EVENT_TYPES,
} from "@framegate/contract";
import { formatBytes, usageError } from "./output.js";

export const DEFAULT_MODEL = KLING_2_6.id;
export const MODEL_IDS = CATALOG.map((m) => m.id);
export { FILE_KINDS, WEBHOOK_EVENT_TYPES };

/** CLI flag → catalog param key. */
export const FLAG_PARAMS = { duration: "duration", sound: "sound", aspect: "aspect_ratio" } as const;

export function paramOf(model: ModelEntry, key: string) {
  return model.params.find((p) => p.key === key);
}

/** "5 or 10" / "1:1, 16:9 or 9:16": the options of a select param of the default model. */
export function optionsText(key: string, model: ModelEntry = KLING_2_6): string {
  const options = paramOf(model, key)?.options ?? [];
  if (options.length <= 1) return options.join("");
  return `${options.slice(0, -1).join(", ")} or ${options[options.length - 1]}`;
}

export function defaultOf(key: string, model: ModelEntry = KLING_2_6): string {
  return String(paramOf(model, key)?.default ?? "");
}

export function resolveModel(id: string | undefined): ModelEntry {
  const model = findModel(id ?? DEFAULT_MODEL);
  if (!model) throw usageError(`--model must be one of: ${MODEL_IDS.join(", ")} (got "${id}")`);
  return model;
}

function checkSelect(model: ModelEntry, flag: string, key: string, value: string): string {
  const param = paramOf(model, key);
  if (!param) throw usageError(`--${flag} is not supported by ${model.id}`);
  const options = param.options ?? [];
  if (param.type === "select" && !options.includes(value)) {
    throw usageError(`--${flag} must be ${optionsText(key, model)} (got "${value}")`);
  }
  return value;
}

export interface GenerateFlags {
  model?: string;
  duration?: string;
  sound?: boolean;
  aspect?: string;
  image?: string;
}

/** Checks the prompt and flags against the catalog; returns the params to send (without the reference). */
export function buildParams(
  prompt: string,
  flags: GenerateFlags,
): { model: ModelEntry; params: Record<string, string> } {
  const model = resolveModel(flags.model);
  if (!prompt.trim()) throw usageError("the prompt must not be empty");
  if (prompt.length > model.max_prompt_length) {
    throw usageError(`the prompt must be at most ${model.max_prompt_length} characters (got ${prompt.length})`);
  }
  const params: Record<string, string> = {};
  if (flags.duration !== undefined) {
    params[FLAG_PARAMS.duration] = checkSelect(model, "duration", FLAG_PARAMS.duration, flags.duration.trim());
  }
  if (flags.aspect !== undefined) {
    params[FLAG_PARAMS.aspect] = checkSelect(model, "aspect", FLAG_PARAMS.aspect, flags.aspect.trim());
  }
  if (flags.sound) params[FLAG_PARAMS.sound] = checkSelect(model, "sound", FLAG_PARAMS.sound, "true");
  return { model, params };
}

/** --image: the model must take image references, and the file must exist and fit its size limit. */
export async function checkReferenceImage(path: string, model: ModelEntry): Promise<void> {
  const limit = uploadLimit("image", model);
  if (!limit) throw usageError(`--image: ${model.id} does not take a reference image`);
  await checkLocalFile(path, "--image", limit.max_bytes);
}

export async function checkLocalFile(path: string, flag: string, maxBytes?: number): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw usageError(`${flag}: ${path}: no such file`);
  if (!info.isFile()) throw usageError(`${flag}: ${path} is not a file`);
  if (maxBytes !== undefined && info.size > maxBytes) {
    throw usageError(`${flag}: ${path} is ${formatBytes(info.size)}; the limit is ${formatBytes(maxBytes)}`);
  }
  return info.size;
}

const KIND_BY_EXTENSION: Record<string, FileKind> = {
  png: "image",
  jpg: "image",
  jpeg: "image",
  webp: "image",
  mp4: "video",
  mov: "video",
  webm: "video",
  mp3: "audio",
  m4a: "audio",
  wav: "audio",
  aac: "audio",
  ogg: "audio",
};

/** --kind, or the kind implied by the file's extension. */
export function resolveKind(kind: string | undefined, path: string): FileKind {
  if (kind !== undefined) {
    if (!(FILE_KINDS as readonly string[]).includes(kind)) {
      throw usageError(`--kind must be one of ${FILE_KINDS.join(", ")} (got "${kind}")`);
    }
    return kind as FileKind;
  }
  const ext = path.split(".").pop()?.toLowerCase() ?? "";
  const guessed = KIND_BY_EXTENSION[ext];
  if (!guessed)
    throw usageError(`cannot tell the kind of ${path} from its extension: pass --kind ${FILE_KINDS.join("|")}`);
  return guessed;
}

/** --events a,b → the event types, checked. */
export function parseEvents(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const events = list
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = events.filter((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e));
  if (bad.length || events.length === 0) {
    throw usageError(`--events must be a comma-separated list of ${WEBHOOK_EVENT_TYPES.join(", ")} (got "${list}")`);
  }
  return [...new Set(events)];
}
