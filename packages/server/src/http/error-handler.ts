/** The single place where errors become the documented envelope. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./context.js";
import { ApiError, errorBody } from "./errors.js";

export function renderError(c: Context<AppEnv>, error: ApiError): string {
  return JSON.stringify(errorBody(error.code, error.message, c.get("requestId"), error.details));
}

export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...error.headers };
  return c.body(renderError(c, error), error.status as 400, headers);
}

export function onError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof ApiError) return errorResponse(c, error);
  if (error instanceof HTTPException && error.status < 500) {
    return errorResponse(c, new ApiError("validation_failed", error.message || "Bad request."));
  }
  c.get("log")?.error({ err: error }, "unhandled error");
  return errorResponse(
    c,
    new ApiError("internal_error", "An unexpected error occurred. Quote the requestId to support."),
  );
}
