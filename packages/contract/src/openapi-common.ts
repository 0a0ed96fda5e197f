/** Pieces shared by the OpenAPI builders. */
import { ErrorEnvelopeSchema } from "./schemas.js";

const envelope = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorEnvelopeSchema } },
});

export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "validation_failed",
    401: "api_key_missing, api_key_invalid, api_key_revoked or api_key_expired",
    402: "insufficient_credits",
    403: "api_scope_denied",
    404: "not_found",
    409: "idempotency_conflict",
    413: "payload_too_large or file_too_large",
    415: "unsupported_media_type",
    429: "rate_limited (see the Retry-After header)",
    503: "public_api_disabled",
  };
  return Object.fromEntries(statuses.map((status) => [String(status), envelope(descriptions[status] ?? "error")]));
}

/**
 * The 403 of a route that adds to what an account quota counts (webhook endpoints, stored
 * files): spread after errorResponses, it replaces the plain 403.
 */
export function quotaResponses() {
  return {
    "403": envelope(
      "api_scope_denied, or quota_exceeded: the account reached a quota (the message names it; delete something or ask the operator to raise it)",
    ),
  };
}
