/** Rendering of errors as the documented envelope (api-contract §2); the error type is ../errors.ts. */
import type { ErrorCode, ErrorDetail } from "@framegate/contract";

/**
 * Transitional: files/service.ts and webhooks/service.ts still import ApiError from here (being
 * edited elsewhere); once they import ../errors.js this re-export goes.
 */
export { ApiError } from "../errors.js";

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: ErrorDetail[]) {
  return { error: { code, message, requestId, ...(details && details.length > 0 ? { details } : {}) } };
}
