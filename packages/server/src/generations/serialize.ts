/** The one task serializer: create, status, list (and later webhook payloads) all use it. */
import type { Task } from "@framegate/contract";
import type { FailureReason } from "../providers/provider.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { TasksTable } from "../store/schema.js";
import type { StoredReference } from "./references.js";

/** What the worker stores in tasks.result: storage keys, never URLs. */
export interface StoredResult {
  media: {
    key: string;
    /** The poster frame's JPEG (poster.ts); null when none could be made, absent on older results. */
    poster_key?: string | null;
    mime_type: string;
    width: number;
    height: number;
    duration_seconds: number;
    has_audio: boolean;
    size_bytes: number;
    sha256: string;
  }[];
  expires_at: string;
}

const FAILURE_MESSAGES: Record<FailureReason, string> = {
  provider_error: "The generation failed.",
  content_rejected: "The generation was rejected by the content policy.",
  timeout: "The generation timed out.",
  invalid_input: "The generation failed because the input was not accepted.",
  canceled: "The generation was canceled.",
};

/** The columns the public task object is made of: reads that only serialize select these. */
export const PUBLIC_TASK_COLUMNS = [
  "id",
  "status",
  "model",
  "reserved_credits",
  "final_credits",
  "created_at",
  "updated_at",
  "result",
  "error_reason",
  "error_message",
  "client_request_id",
  "params",
  "started_at",
  "completed_at",
  "references_json",
] as const satisfies readonly (keyof TasksTable)[];

export type PublicTaskRow = Pick<TasksTable, (typeof PUBLIC_TASK_COLUMNS)[number]>;

export function serializeTask(row: PublicTaskRow, signer: UrlSigner, now: Date): Task {
  let result: Task["result"] = null;
  if (row.status === "succeeded" && row.result) {
    const stored = JSON.parse(row.result) as StoredResult;
    const expiresAt = new Date(stored.expires_at);
    const media = stored.media.map(({ key, poster_key, ...rest }) => ({
      url: signer.signMediaUrl(key, expiresAt),
      poster_url: poster_key ? signer.signMediaUrl(poster_key, expiresAt) : null,
      ...rest,
    }));
    const urls = media.map((m) => m.url);
    result = { primary_url: urls[0] ?? "", urls, media, expires_at: stored.expires_at };
  }
  let error: Task["error"] = null;
  if (row.status === "failed") {
    const reason = (row.error_reason ?? "provider_error") as FailureReason;
    error = { code: "generation_failed", message: row.error_message ?? FAILURE_MESSAGES[reason], reason };
  }
  return {
    id: row.id,
    object: "generation",
    status: row.status,
    model: row.model,
    reserved_credits: row.reserved_credits,
    final_credits: row.final_credits,
    created_at: row.created_at,
    updated_at: row.updated_at,
    result,
    error,
    client_request_id: row.client_request_id,
    params: JSON.parse(row.params) as Record<string, string>,
    started_at: row.started_at,
    completed_at: row.completed_at,
    references: (JSON.parse(row.references_json) as StoredReference[]).map((r) => {
      const expiresAt = new Date(r.expiresAt);
      return {
        file_id: r.fileId,
        kind: r.kind,
        mime_type: r.mimeType,
        // Signed on every read, until the file itself expires.
        url: expiresAt > now ? signer.signMediaUrl(r.storageKey, expiresAt) : null,
        name: r.name,
        width: r.width,
        height: r.height,
        duration_seconds: r.durationSeconds,
      };
    }),
  };
}

/**
 * Until when (epoch ms) serializeTask gives this row the same answer: the first expiry, after
 * `now`, of a referenced file (its URL then turns null). Nothing else in it depends on the time:
 * a result's URLs are signed to the result's own stored expiry.
 */
export function serializedUntil(row: Pick<PublicTaskRow, "references_json">, now: Date): number {
  let until = Number.POSITIVE_INFINITY;
  for (const r of JSON.parse(row.references_json) as StoredReference[]) {
    const expiresAt = Date.parse(r.expiresAt);
    if (expiresAt > now.getTime() && expiresAt < until) until = expiresAt;
  }
  return until;
}

export function publicFailureMessage(reason: FailureReason): string {
  return FAILURE_MESSAGES[reason];
}
