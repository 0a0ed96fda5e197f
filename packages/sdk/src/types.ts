/**
 * Wire types of the API's responses, written to match the server's JSON field for field (the zod
 * schemas in @framegate/contract: schemas.ts and webhook-schemas.ts). Request bodies of known
 * models are generated from the catalog into generated/models.ts.
 */

export type FileKind = "image" | "video" | "audio";

/** One item of `params.referenceMediaItems`: a URL issued by this server's Files API. */
export interface ReferenceMediaItem<K extends FileKind = FileKind> {
  url: string;
  kind: K;
  name?: string;
  mimeType?: string;
  durationSeconds?: number;
  /** Required for video and audio references: the `duration_token` of the uploaded file. */
  durationToken?: string;
}

export type TaskStatus = "queued" | "processing" | "succeeded" | "failed";

export interface Media {
  url: string;
  /** Signed URL of a JPEG poster frame (the video's size), expiring with it; null when none could be made. */
  poster_url: string | null;
  mime_type: string;
  width: number;
  height: number;
  duration_seconds: number;
  has_audio: boolean;
  size_bytes: number;
  sha256: string;
}

export interface TaskResult {
  primary_url: string;
  urls: string[];
  media: Media[];
  expires_at: string;
}

export interface TaskError {
  code: "generation_failed";
  message: string;
  /** `canceled`: ended by generations.cancel (or at the upstream); like every failure, refunded. */
  reason: "provider_error" | "content_rejected" | "timeout" | "invalid_input" | "canceled";
}

export interface TaskReference {
  file_id: string;
  kind: FileKind;
  mime_type: string;
  /** Signed URL of the stored file; null once it was deleted. */
  url: string | null;
  name: string | null;
  width: number | null;
  height: number | null;
  duration_seconds: number | null;
}

/** The fields every task has, whatever its status. */
export interface TaskBase {
  id: string;
  object: "generation";
  status: TaskStatus;
  model: string;
  reserved_credits: number;
  final_credits: number;
  created_at: string;
  updated_at: string;
  result: TaskResult | null;
  error: TaskError | null;
  client_request_id: string | null;
  /** The normalized params the task runs with (select values as strings, defaults applied). */
  params: Record<string, string>;
  started_at: string | null;
  completed_at: string | null;
  references: TaskReference[];
}

/** Waiting for a worker, or running upstream: no result and no error yet. */
export interface PendingTask extends TaskBase {
  status: "queued" | "processing";
  result: null;
  error: null;
}

/** Finished with a video: `result` is always there. */
export interface SucceededTask extends TaskBase {
  status: "succeeded";
  result: TaskResult;
  error: null;
}

/** Finished without one: `error` says why, and the reserved credits were refunded (`final_credits` 0). */
export interface FailedTask extends TaskBase {
  status: "failed";
  result: null;
  error: TaskError;
}

/**
 * A generation task (`object: "generation"`), as create, retrieve, list and webhooks return it.
 * A union on `status`: checking `task.status === "succeeded"` narrows `result` to non-null, and
 * `"failed"` narrows `error`.
 */
export type Task = PendingTask | SucceededTask | FailedTask;

export interface FileObject {
  id: string;
  object: "file";
  kind: FileKind;
  mime_type: string;
  size_bytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  duration_seconds: number | null;
  duration_token: string | null;
  url: string;
  name: string | null;
  client_request_id: string | null;
  created_at: string;
  expires_at: string;
}

export interface Credits {
  current_credits: number;
}

/**
 * One credit movement (GET /api/v1/credits/ledger). `grant`: an operator grant or debit (the
 * initial credits too); `reserve`: a task's price taken at create (negative); `release`: the
 * unused part of a reservation given back at success; `refund`: a failed or canceled task's
 * reservation given back.
 */
export type LedgerEntryType = "grant" | "reserve" | "release" | "refund";

export interface LedgerEntry {
  id: string;
  object: "ledger_entry";
  type: LedgerEntryType;
  /** Signed, in credits. */
  amount: number;
  /** The balance right after this entry (entries ordered by created_at, then id). */
  balance_after: number;
  task_id: string | null;
  reason: string | null;
  created_at: string;
}

/** Task counts (by the bucket a task was created in) and ledger sums (by the bucket an entry was written in). */
export interface UsageCounts {
  tasks_created: number;
  tasks_succeeded: number;
  /** Failed, canceled ones excluded. */
  tasks_failed: number;
  tasks_canceled: number;
  /** Reservations less the unused part released at success. */
  credits_charged: number;
  credits_refunded: number;
  /** Operator grants less operator debits. */
  credits_granted: number;
}

export interface UsageBucket extends UsageCounts {
  /** The bucket's start (UTC, ISO 8601); it lasts one day or one hour. */
  start: string;
}

/** GET /api/v1/usage: every bucket of the range, oldest first, empty ones as zeros. */
export interface Usage {
  object: "usage";
  granularity: "day" | "hour";
  start: string;
  /** Exclusive. */
  end: string;
  data: UsageBucket[];
  totals: UsageCounts;
}

export interface ModelParam {
  key: string;
  type: "select" | "text" | "number";
  required: boolean;
  default: string | number | null;
  options: string[] | null;
  min: number | null;
  max: number | null;
  step: number | null;
  description: string;
}

export interface MediaLimit {
  kind: FileKind;
  max_bytes: number;
  mime_types: string[];
  min_side_px?: number;
  min_aspect_ratio?: number;
  max_aspect_ratio?: number;
}

/** One entry of GET /api/v1/models. */
export interface Model {
  id: string;
  display_name: string;
  category: "video" | "image" | "audio" | "chat";
  runtime: "async_task";
  base_credits: number;
  billing_type: "FIXED" | "METERED" | "TOKEN_BASED";
  supported_modes: string[];
  max_prompt_length: number;
  reference_media: { max_items: number; kinds: FileKind[]; limits: MediaLimit[] } | null;
  params: ModelParam[];
  api_status: "available" | "coming_soon" | "studio_only";
  api_input_status: "available_text" | "available_url_input" | "partial_requires_files" | "requires_files_api";
  supported_api_inputs: string[];
  requires_files_api: boolean;
  requires_upload_for_modes: string[];
  url_input_supported: boolean;
  file_kinds: FileKind[];
  chat_capabilities: null;
  notices: string[];
}

export interface ModelList {
  object: "list";
  data: Model[];
}

/**
 * The task events an endpoint subscribes to. `generation.processing` (the task started running
 * upstream) is a Framegate extension, delivered only to endpoints that list it.
 */
export type WebhookEventType = "generation.succeeded" | "generation.failed" | "generation.processing";

export interface WebhookEndpoint {
  id: string;
  object: "webhook_endpoint";
  name: string | null;
  url: string;
  event_types: WebhookEventType[];
  status: "active" | "disabled";
  secret_preview: string;
  /** `whsec_…`: only in the create and rotate-secret responses. */
  signing_secret?: string;
  last_success_at: string | null;
  last_failure_at: string | null;
  failure_count: number;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
  revoked_at: string | null;
}

export interface WebhookEndpointCreateParams {
  name?: string | null;
  /** `https` only, unless the server runs with WEBHOOK_ALLOW_INSECURE_URLS=true. */
  url: string;
  /** Default: both generation events. */
  event_types?: WebhookEventType[];
}

export interface WebhookEndpointUpdateParams {
  name?: string | null;
  url?: string;
  event_types?: WebhookEventType[];
  status?: "active" | "disabled";
}

interface EventBase {
  /** `evt_…`, the same as the `webhook-id` header and stable across retries: deduplicate on it. */
  id: string;
  object: "event";
  api_version: "2026-05-11";
  created_at: string;
}

export interface GenerationEvent extends EventBase {
  type: WebhookEventType;
  data: Task;
}

export interface TestEvent extends EventBase {
  type: "webhook.test";
  data: { message: string; endpoint_id: string; [key: string]: unknown };
}

/** A webhook event envelope; narrow on `type` to get the task in `data`. */
export type WebhookEvent = GenerationEvent | TestEvent;

export interface WebhookDelivery {
  id: string;
  object: "webhook_delivery";
  event_id: string;
  endpoint_id: string;
  event_type: string;
  attempt: number;
  status: "succeeded" | "failed";
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  /** The first 1 KiB of the response body. */
  response_body: string | null;
  next_attempt_at: string | null;
  created_at: string;
}

export interface Redelivery {
  event_id: string;
  endpoint_ids: string[];
}

/** A list page as the API sends it. */
export interface ListResponse<T> {
  object: "list";
  data: T[];
  has_more: boolean;
}

/** A scope an API key can hold (GET /api/v1/keys shows what each key has). */
export type ApiKeyScope =
  | "models:read"
  | "generations:create"
  | "generations:read"
  | "files:create"
  | "files:read"
  | "credits:read"
  | "webhooks:manage"
  | "keys:manage";

/** One of the account's API keys, as listed: never its secret. */
export interface ApiKey {
  id: string;
  object: "api_key";
  account_id: string;
  name: string | null;
  /** The key's first 12 characters, to recognise it. */
  prefix: string;
  scopes: ApiKeyScope[];
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

/** The create answer: the key with its secret, shown only here. */
export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface ApiKeyCreateParams {
  name?: string | null;
  /** Only scopes the calling key holds. Default: the caller's scopes without `keys:manage`. */
  scopes?: ApiKeyScope[];
  /** ISO 8601, in the future and no later than the calling key's expiry. Default: the caller's expiry. */
  expires_at?: string | null;
}
