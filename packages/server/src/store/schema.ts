/**
 * Table types for Kysely. Times are ISO-8601 UTC strings with milliseconds (they sort
 * lexicographically, and read the same in SQLite and PostgreSQL); JSON columns are text.
 */
import type { Generated } from "kysely";

export interface AccountsTable {
  id: string;
  name: string;
  /** Available balance; always equals the sum of the account's ledger entries. */
  balance: number;
  /** Cap on this account's running tasks; null = ACCOUNT_MAX_RUNNING_TASKS. */
  max_running_tasks: number | null;
  /** Quotas on what the account keeps; null = ACCOUNT_MAX_WEBHOOK_ENDPOINTS, _FILE_BYTES, _FILES. */
  max_webhook_endpoints: number | null;
  max_file_bytes: number | null;
  max_files: number | null;
  created_at: string;
  /** When the account was deleted (accounts/lifecycle.ts, migration 0021); null while it is in use. */
  deleted_at: string | null;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  name: string | null;
  prefix: string;
  key_hash: string;
  scopes: string;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

/** The web console's sign-ins (console/sessions.ts, migration 0019). */
export interface ConsoleSessionsTable {
  id: string;
  /** SHA-256 (hex) of the cookie's random token; the token itself is never stored. */
  token_hash: string;
  kind: "customer" | "operator";
  /** Customer sessions: the account and key signed in with; null for operator sessions. */
  account_id: string | null;
  key_id: string | null;
  /** Customer: the API key's stored hash (api_keys.key_hash). Operator: SHA-256 of ADMIN_TOKEN. */
  credential_hash: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface LedgerEntriesTable {
  id: string;
  account_id: string;
  /** Signed amount in credits: negative debits, positive credits. */
  amount: number;
  type: "grant" | "reserve" | "refund" | "release";
  task_id: string | null;
  reason: string | null;
  created_at: string;
}

export interface TasksTable {
  id: string;
  account_id: string;
  model: string;
  status: "queued" | "processing" | "succeeded" | "failed";
  prompt: string;
  params: string;
  references_json: string;
  reserved_credits: number;
  final_credits: number;
  client_request_id: string | null;
  provider: string | null;
  upstream_id: string | null;
  result: string | null;
  error_reason: string | null;
  error_message: string | null;
  /** Provider-side detail of a failure; operator-visible only. */
  error_detail: string | null;
  /** End of the result's retention; its media are deleted after it (result_purged_at). */
  submit_state: string | null;
  upstream_details: string | null;
  result_expires_at: string | null;
  result_purged_at: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
}

export interface JobsTable {
  id: string;
  kind: string;
  /** Dedupe key: at most one pending job per key. */
  job_key: string | null;
  payload: string;
  run_at: string;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  /** 1 when runNow came while the job ran: the retry it asks for is due at once (migration 0014). */
  woken: Generated<number>;
}

export interface IdempotencyKeysTable {
  account_id: string;
  method: string;
  path: string;
  idem_key: string;
  fingerprint: string;
  state: "in_flight" | "completed";
  response_status: number | null;
  response_body: string | null;
  locked_until: string | null;
  created_at: string;
  expires_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface MigrationMarker {
  _generated?: Generated<number>;
}

export interface FilesTable {
  id: string;
  account_id: string;
  kind: "image" | "video" | "audio";
  mime_type: string;
  size_bytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  duration_seconds: number | null;
  storage_key: string;
  name: string | null;
  client_request_id: string | null;
  /** Where the server fetched it from (REFERENCE_URL_FETCH), null for uploads. */
  source_url: string | null;
  created_at: string;
  expires_at: string;
  /**
   * Set when the file stopped being usable: garbage collection removed its bytes after expiry,
   * or the account deleted it (DELETE /api/v1/files/{id}).
   */
  deleted_at: string | null;
  /** 1 while a deleted file's bytes still wait for removal (a running task needed them), else 0. */
  purge_pending: number;
}

export interface TaskReferencesTable {
  task_id: string;
  position: number;
  file_id: string;
}

export interface WebhookEndpointsTable {
  id: string;
  account_id: string;
  name: string | null;
  url: string;
  event_types: string;
  status: "active" | "disabled";
  secret_encrypted: string;
  secret_preview: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: string | null;
  failure_count: number;
  /** Start of the current run of failed deliveries (null after a success). */
  failing_since: string | null;
  last_success_at: string | null;
  last_failure_at: string | null;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
  revoked_at: string | null;
}

export interface WebhookEventsTable {
  id: string;
  account_id: string;
  type: string;
  task_id: string | null;
  endpoint_id: string | null;
  payload: string;
  created_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  event_id: string;
  endpoint_id: string;
  attempt: number;
  status: "succeeded" | "failed";
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  response_body: string | null;
  next_attempt_at: string | null;
  created_at: string;
}

/** A webhook delivery attempt in progress (a slot), until released or expired. */
export interface WebhookInflightTable {
  id: string;
  account_id: string;
  endpoint_id: string;
  expires_at: string;
}

export interface QueuePoolsTable {
  id: string;
  heartbeat_ms: number;
}

export interface Database {
  webhook_endpoints: WebhookEndpointsTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_inflight: WebhookInflightTable;
  files: FilesTable;
  task_references: TaskReferencesTable;
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  console_sessions: ConsoleSessionsTable;
  ledger_entries: LedgerEntriesTable;
  tasks: TasksTable;
  jobs: JobsTable;
  queue_pools: QueuePoolsTable;
  idempotency_keys: IdempotencyKeysTable;
  settings: SettingsTable;
}
