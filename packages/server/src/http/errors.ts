/** Rendering of errors as the documented envelope (api-contract §2); the error type is ../errors.ts. */
import type { ErrorCode, ErrorDetail } from "@framegate/contract";

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: ErrorDetail[]) {
  return { error: { code, message, requestId, ...(details && details.length > 0 ? { details } : {}) } };
}
