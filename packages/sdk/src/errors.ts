/**
 * One error hierarchy for everything the SDK throws. HTTP errors are chosen by the API's
 * `error.code` first and the HTTP status second, so a server that adds codes still maps sensibly.
 *
 *   FramegateError
 *   ├── APIError (any non-2xx answer)
 *   │   ├── AuthenticationError        401 api_key_missing | api_key_invalid | api_key_revoked | api_key_expired
 *   │   ├── PermissionDeniedError      403 api_scope_denied (and signature_invalid, forbidden)
 *   │   │   └── QuotaExceededError         403 quota_exceeded (an account quota; the message names it)
 *   │   ├── ValidationError            400 validation_failed
 *   │   │   └── WebhookUrlRejectedError    400 webhook_url_rejected
 *   │   ├── InsufficientCreditsError   402 insufficient_credits
 *   │   ├── NotFoundError              404 not_found
 *   │   ├── ConflictError              409 idempotency_conflict
 *   │   │   └── NotCancelableError         409 not_cancelable (generations.cancel)
 *   │   ├── PayloadTooLargeError       413 payload_too_large
 *   │   │   └── FileTooLargeError          413 file_too_large
 *   │   ├── UnsupportedMediaTypeError  415 unsupported_media_type
 *   │   ├── RateLimitedError           429 rate_limited (retryAfter, seconds)
 *   │   ├── InternalServerError        500 internal_error (and other 5xx)
 *   │   └── ServiceUnavailableError    503 public_api_disabled | service_unavailable
 *   ├── APIConnectionError (no HTTP answer: DNS, refused, reset, ...)
 *   │   └── APITimeoutError            the request's own timeout fired
 *   ├── WaitTimeoutError               generations.waitFor gave up before the task finished
 *   └── WebhookVerificationError       webhooks.verify refused a delivery
 */

/** Every public error code of the API (api-contract §2). Servers may add more. */
export type ApiErrorCode =
  | "api_key_missing"
  | "api_key_invalid"
  | "api_key_revoked"
  | "api_key_expired"
  | "api_scope_denied"
  | "signature_invalid"
  | "quota_exceeded"
  | "forbidden"
  | "public_api_disabled"
  | "rate_limited"
  | "validation_failed"
  | "insufficient_credits"
  | "idempotency_conflict"
  | "not_cancelable"
  | "not_found"
  | "webhook_url_rejected"
  | "file_too_large"
  | "unsupported_media_type"
  | "payload_too_large"
  | "method_not_allowed"
  | "range_not_satisfiable"
  | "internal_error"
  | "service_unavailable";

export interface ErrorDetail {
  path: string;
  issue: string;
}

/** The error envelope every non-2xx answer carries. */
export interface ErrorBody {
  error: {
    code: ApiErrorCode | (string & {});
    message: string;
    requestId: string;
    details?: ErrorDetail[];
  };
}

export interface FramegateErrorInit {
  status?: number | undefined;
  code: string;
  requestId?: string | undefined;
  details?: ErrorDetail[] | undefined;
  headers?: Headers | undefined;
  cause?: unknown;
}

export class FramegateError extends Error {
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The API's error code (`validation_failed`, ...), or an SDK code (`api_connection_error`, ...). */
  readonly code: string;
  /** `error.requestId` of the body, else the `X-Request-Id` header. */
  readonly requestId: string | undefined;
  /** Per-field problems (validation errors). */
  readonly details: ErrorDetail[] | undefined;
  /** Response headers, when the server answered. */
  readonly headers: Headers | undefined;

  constructor(message: string, init: FramegateErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.details = init.details;
    this.headers = init.headers;
  }
}

/** The server answered with a non-2xx status. */
export class APIError extends FramegateError {
  declare readonly status: number;
}
export class AuthenticationError extends APIError {}
export class PermissionDeniedError extends APIError {}
/** The account reached a quota (webhook endpoints, stored file bytes or count); retrying will not help. */
export class QuotaExceededError extends PermissionDeniedError {}
export class ValidationError extends APIError {}
export class WebhookUrlRejectedError extends ValidationError {}
export class InsufficientCreditsError extends APIError {}
export class NotFoundError extends APIError {}
export class ConflictError extends APIError {}
/**
 * generations.cancel refused: the task has finished, or runs at an upstream that cannot stop it
 * (it runs on and is charged), or is being submitted right now (then `headers` has Retry-After).
 */
export class NotCancelableError extends ConflictError {}
export class PayloadTooLargeError extends APIError {}
export class FileTooLargeError extends PayloadTooLargeError {}
export class UnsupportedMediaTypeError extends APIError {}
export class InternalServerError extends APIError {}
export class ServiceUnavailableError extends APIError {}

export class RateLimitedError extends APIError {
  /** Seconds to wait, from the Retry-After header (undefined when absent or unparsable). */
  readonly retryAfter: number | undefined;
  constructor(message: string, init: FramegateErrorInit & { retryAfter?: number | undefined }) {
    super(message, init);
    this.retryAfter = init.retryAfter;
  }
}

/** No HTTP answer was received (DNS failure, connection refused or reset, ...). */
export class APIConnectionError extends FramegateError {
  constructor(message = "Connection error.", init: Partial<FramegateErrorInit> = {}) {
    super(message, { code: "api_connection_error", ...init });
  }
}

/** The request's `timeout` elapsed before an answer arrived. */
export class APITimeoutError extends APIConnectionError {
  constructor(message = "Request timed out.", init: Partial<FramegateErrorInit> = {}) {
    super(message, { code: "api_timeout", ...init });
  }
}

/** `generations.waitFor` reached its `timeout` while the task was still queued or processing. */
export class WaitTimeoutError extends FramegateError {
  /** The task as last seen (undefined if it could not be read at all). */
  readonly task: unknown;
  readonly taskId: string;
  constructor(taskId: string, timeoutMs: number, task: unknown) {
    super(`Task ${taskId} did not finish within ${timeoutMs} ms.`, { code: "wait_timeout" });
    this.taskId = taskId;
    this.task = task;
  }
}

export type WebhookVerificationReason =
  | "missing_headers"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_too_new"
  | "invalid_secret"
  | "invalid_signature"
  | "invalid_payload";

/** `webhooks.verify` refused a delivery: answer it with 400 and do not process it. */
export class WebhookVerificationError extends FramegateError {
  readonly reason: WebhookVerificationReason;
  constructor(reason: WebhookVerificationReason, message: string) {
    super(message, { code: "webhook_verification_failed" });
    this.reason = reason;
  }
}

type APIErrorClass = new (message: string, init: FramegateErrorInit) => APIError;

const BY_CODE: Record<string, APIErrorClass> = {
  api_key_missing: AuthenticationError,
  api_key_invalid: AuthenticationError,
  api_key_revoked: AuthenticationError,
  api_key_expired: AuthenticationError,
  api_scope_denied: PermissionDeniedError,
  signature_invalid: PermissionDeniedError,
  quota_exceeded: QuotaExceededError,
  // A console-session (cookie) write without the server's own Origin.
  forbidden: PermissionDeniedError,
  validation_failed: ValidationError,
  webhook_url_rejected: WebhookUrlRejectedError,
  insufficient_credits: InsufficientCreditsError,
  not_found: NotFoundError,
  idempotency_conflict: ConflictError,
  not_cancelable: NotCancelableError,
  payload_too_large: PayloadTooLargeError,
  file_too_large: FileTooLargeError,
  unsupported_media_type: UnsupportedMediaTypeError,
  internal_error: InternalServerError,
  public_api_disabled: ServiceUnavailableError,
  service_unavailable: ServiceUnavailableError,
};

const BY_STATUS: Record<number, APIErrorClass> = {
  400: ValidationError,
  401: AuthenticationError,
  402: InsufficientCreditsError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  500: InternalServerError,
  503: ServiceUnavailableError,
};

/** Retry-After as seconds: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(headers: Headers | undefined, now = Date.now()): number | undefined {
  const raw = headers?.get("retry-after")?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw);
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - now) / 1000);
}

/** Builds the error for a non-2xx answer from its status, headers and (possibly non-JSON) body. */
export function errorFromResponse(status: number, headers: Headers, bodyText: string): APIError {
  let envelope: Partial<ErrorBody["error"]> | undefined;
  try {
    const parsed = JSON.parse(bodyText) as unknown;
    if (parsed && typeof parsed === "object" && "error" in parsed) {
      const inner = (parsed as { error: unknown }).error;
      if (inner && typeof inner === "object") envelope = inner as Partial<ErrorBody["error"]>;
    }
  } catch {}
  const code = typeof envelope?.code === "string" ? envelope.code : `http_${status}`;
  const message =
    typeof envelope?.message === "string" && envelope.message
      ? envelope.message
      : `HTTP ${status}${bodyText ? `: ${bodyText.slice(0, 200)}` : ""}`;
  const requestId =
    (typeof envelope?.requestId === "string" ? envelope.requestId : undefined) ??
    headers.get("x-request-id") ??
    undefined;
  const details = Array.isArray(envelope?.details) ? envelope.details : undefined;
  const init: FramegateErrorInit = { status, code, requestId, details, headers };
  if (code === "rate_limited" || status === 429) {
    return new RateLimitedError(message, { ...init, retryAfter: parseRetryAfter(headers) });
  }
  const Class = BY_CODE[code] ?? BY_STATUS[status] ?? (status >= 500 ? InternalServerError : APIError);
  return new Class(message, init);
}
