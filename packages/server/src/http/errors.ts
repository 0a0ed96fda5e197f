import { ERROR_STATUS, type ErrorCode, type ErrorDetail } from "@framegate/contract";

/** The one error type the API throws; mapped to the envelope in http/error-handler.ts only. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: ErrorDetail[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = opts.details;
    this.headers = opts.headers;
  }
}

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: ErrorDetail[]) {
  return { error: { code, message, requestId, ...(details && details.length > 0 ? { details } : {}) } };
}

export const notFound = (what = "Resource") => new ApiError("not_found", `${what} not found.`);
