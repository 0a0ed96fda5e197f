/** The single place where errors become the documented envelope. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError } from "../errors.js";
import type { AppEnv } from "./context.js";
import { errorBody } from "./errors.js";

/**
 * nginx's "client closed request": the status recorded (never sent: nobody is listening) when
 * the client went away before we could answer.
 */
export const CLIENT_CLOSED_REQUEST = 499;

export function renderError(c: Context<AppEnv>, error: ApiError): string {
  return JSON.stringify(errorBody(error.code, error.message, c.get("requestId"), error.details));
}

export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...error.headers };
  return c.body(renderError(c, error), error.status as 400, headers);
}

/** Error codes and messages Node uses when a request's connection ends before its body does. */
const CONNECTION_GONE_CODES = new Set(["ECONNRESET", "ECONNABORTED", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE"]);

/**
 * Why the request can no longer be answered, when the error only says the client went away (it
 * disconnected mid-body, or Node's request timeout closed a client that sent its body too
 * slowly); undefined for every other error.
 */
export function clientGoneReason(error: unknown, request: Request): string | undefined {
  const { code, message, name } = error as { code?: unknown; message?: unknown; name?: unknown };
  const gone =
    request.signal.aborted ||
    (typeof code === "string" && CONNECTION_GONE_CODES.has(code)) ||
    message === "aborted" ||
    (name === "AbortError" && request.signal.aborted);
  if (!gone) return undefined;
  return typeof code === "string" ? code : typeof message === "string" ? message.slice(0, 100) : "aborted";
}

export function onError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof ApiError) return errorResponse(c, error);
  if (error instanceof HTTPException && error.status < 500) {
    return errorResponse(c, new ApiError("validation_failed", error.message || "Bad request."));
  }
  const gone = clientGoneReason(error, c.req.raw);
  if (gone !== undefined) {
    // Not a server fault: the request line (logged once, at info, with the request id) says so.
    c.set("clientGone", gone);
    return c.body(null, CLIENT_CLOSED_REQUEST as 400);
  }
  const auth = c.get("auth");
  c.get("log")?.error(
    { err: error, requestId: c.get("requestId"), ...(auth ? { accountId: auth.accountId, keyId: auth.keyId } : {}) },
    "unhandled error",
  );
  return errorResponse(
    c,
    new ApiError("internal_error", "An unexpected error occurred. Quote the requestId to support."),
  );
}
