/**
 * Reading Kling's answers: the `{code, message, request_id, data}` envelope, `data` as an object
 * or an array (VES-004), the task object → PollResult, and the callback body.
 *
 * Task ids are 18-digit numbers written as JSON strings. Should one ever arrive as a bare JSON
 * number, JSON.parse would round it (> 2^53), so `parseKlingJson` quotes numeric `task_id`
 * values in the raw text before parsing. Ids are compared and stored as strings only.
 */

import type { PollResult, ProviderMedia } from "../provider.js";
import { failureReasonFor, oneLine } from "./errors.js";
import { isValidKlingTaskId, mapTaskStatus } from "./mapping.js";

export interface KlingEnvelope {
  code: number;
  message?: string;
  request_id?: string;
  data?: unknown;
}

export interface KlingVideo {
  id?: string;
  url?: string;
  watermark_url?: string;
  duration?: string;
}

export interface KlingTaskData {
  task_id: string;
  task_status?: string;
  task_status_msg?: string;
  task_info?: { external_task_id?: string };
  task_result?: { videos?: KlingVideo[] };
  final_unit_deduction?: string;
  created_at?: number;
  updated_at?: number;
}

const NUMERIC_ID_RE = /("(?:task_id|id)"\s*:\s*)(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}\]])/g;

/** JSON.parse that keeps bare-number `task_id`/`id` values exact by quoting them first. */
export function parseKlingJson(text: string): unknown {
  return JSON.parse(text.replace(NUMERIC_ID_RE, '$1"$2"'));
}

/** The envelope, or undefined when the value is not one (no numeric `code`). */
export function asEnvelope(value: unknown): KlingEnvelope | undefined {
  if (!isObject(value)) return undefined;
  const code = value.code;
  if (typeof code === "number" && Number.isInteger(code)) return value as unknown as KlingEnvelope;
  if (typeof code === "string" && /^\d{1,6}$/.test(code)) return { ...(value as object), code: Number(code) };
  return undefined;
}

export type PickedTask =
  | { ok: true; task: KlingTaskData }
  /** shape: no usable task object at all; nomatch: tasks, but not the one asked for; ambiguous: several. */
  | { ok: false; kind: "shape" | "nomatch" | "ambiguous"; problem: string };

/**
 * The task object from `data`, which may be an object or an array (VES-004), filtered by
 * `taskId` and/or `externalTaskId` when given. Without a filter, exactly one task must be there.
 */
export function pickTask(data: unknown, match: { taskId?: string; externalTaskId?: string }): PickedTask {
  const candidates = (Array.isArray(data) ? data : [data]).filter(isObject);
  if (candidates.length === 0)
    return { ok: false, kind: "shape", problem: `no task object in data (${describe(data)})` };
  let tasks: KlingTaskData[] = [];
  let firstProblem = "";
  for (const candidate of candidates) {
    const task = normalizeTask(candidate);
    if (typeof task === "string") firstProblem ||= task;
    else tasks.push(task);
  }
  if (tasks.length === 0) return { ok: false, kind: "shape", problem: firstProblem };
  if (match.taskId !== undefined) tasks = tasks.filter((t) => t.task_id === match.taskId);
  if (match.externalTaskId !== undefined) {
    tasks = tasks.filter((t) => isObject(t.task_info) && t.task_info.external_task_id === match.externalTaskId);
  }
  if (tasks.length === 1) return { ok: true, task: tasks[0] as KlingTaskData };
  if (tasks.length === 0) {
    const wanted = match.taskId ?? match.externalTaskId ?? "";
    return { ok: false, kind: "nomatch", problem: `task ${JSON.stringify(wanted)} is not in the response data` };
  }
  return { ok: false, kind: "ambiguous", problem: `${tasks.length} tasks in the response data, expected one` };
}

function normalizeTask(value: Record<string, unknown>): KlingTaskData | string {
  const id = value.task_id;
  if (!isValidKlingTaskId(id)) return `task_id is missing or malformed (${describe(id)})`;
  return value as unknown as KlingTaskData;
}

export const PENDING_RETRY_AFTER_MS = 10_000;

/** A task object → PollResult; a string describes an unexpected shape. */
export function toPollResult(task: KlingTaskData, pendingRetryAfterMs = PENDING_RETRY_AFTER_MS): PollResult | string {
  const state = mapTaskStatus(task.task_status);
  if (state === "pending") return { state: "pending", retryAfterMs: pendingRetryAfterMs };
  if (state === "failed") {
    const msg = typeof task.task_status_msg === "string" ? oneLine(task.task_status_msg, 500) : "";
    return {
      state: "failed",
      reason: failureReasonFor(msg),
      message: msg ? `Kling task failed: ${msg}` : "Kling task failed without a reason",
    };
  }
  const videos = task.task_result?.videos;
  if (!Array.isArray(videos)) return "task succeeded but task_result.videos is missing";
  const media: ProviderMedia[] = [];
  for (const video of videos) {
    if (isObject(video) && typeof video.url === "string" && /^https?:\/\//i.test(video.url)) {
      media.push({ kind: "url", url: video.url, mimeType: "video/mp4" });
    }
  }
  if (media.length === 0) return "task succeeded but no video has an http(s) url";
  const details: Record<string, string> = { upstream_task_id: task.task_id };
  const units = scalarText(task.final_unit_deduction);
  if (units !== undefined) details.final_unit_deduction = units;
  const first = videos.find((v) => isObject(v) && typeof v.url === "string");
  const seconds = first ? scalarText((first as KlingVideo).duration) : undefined;
  if (seconds !== undefined) details.video_duration = seconds;
  return { state: "succeeded", media, details };
}

/** What a callback POST names (a hint only: re-query Kling before acting, §1.6). */
export interface KlingCallbackHint {
  taskId: string;
  externalTaskId?: string;
  status?: string;
}

/** Parses a callback body (the `data` shape with no envelope). Undefined when unusable. */
export function parseCallbackBody(text: string): KlingCallbackHint | undefined {
  let value: unknown;
  try {
    value = parseKlingJson(text);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  // Tolerate an envelope too, in case the callback ever arrives wrapped.
  const inner = isObject(value.data) && !("task_id" in value) ? value.data : value;
  if (!isObject(inner) || !isValidKlingTaskId(inner.task_id)) return undefined;
  const info = isObject(inner.task_info) ? inner.task_info : undefined;
  return {
    taskId: inner.task_id,
    ...(typeof info?.external_task_id === "string" ? { externalTaskId: info.external_task_id } : {}),
    ...(typeof inner.task_status === "string" ? { status: inner.task_status } : {}),
  };
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === "string" && value.length > 0) return oneLine(value, 64);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return "absent";
  if (value === null) return "null";
  if (Array.isArray(value)) return `array of ${value.length}`;
  return typeof value;
}
