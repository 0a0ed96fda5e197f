/** Every public error code and the HTTP status it is sent with (api-contract §2). */
export const ERROR_STATUS = {
  api_key_missing: 401,
  api_key_invalid: 401,
  api_key_revoked: 401,
  api_key_expired: 401,
  api_scope_denied: 403,
  signature_invalid: 403,
  /** An account quota (webhook endpoints, stored files) is reached; the message names the limit. */
  quota_exceeded: 403,
  /** A request authenticated by the web console's session cookie failed the Origin (CSRF) check. */
  forbidden: 403,
  public_api_disabled: 503,
  rate_limited: 429,
  validation_failed: 400,
  insufficient_credits: 402,
  idempotency_conflict: 409,
  /** A cancel of a task that has finished, or runs at an upstream that cannot stop it (or not yet). */
  not_cancelable: 409,
  not_found: 404,
  webhook_url_rejected: 400,
  file_too_large: 413,
  unsupported_media_type: 415,
  payload_too_large: 413,
  method_not_allowed: 405,
  range_not_satisfiable: 416,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  path: string;
  issue: string;
}
