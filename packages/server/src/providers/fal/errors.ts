/**
 * How fal answers are classified (docs/kling-upstreams.md §2.4, §2.6).
 *
 * fal has two error shapes:
 * - model errors: `{"detail": [{loc, msg, type, url?, ctx?, input?, categories?}]}` (usually 422).
 *   They are the model's definitive answer for that input.
 * - request (infrastructure) errors: `{"detail": "<text>", "error_type": "<category>"}` with the
 *   same category in the `X-Fal-Error-Type` header (request_timeout 504, runner_* 503, ...), or
 *   anything unparsable from a proxy. They are transient.
 *
 * Submit (nothing is running upstream unless noted):
 *   2xx                                  accepted (request_id read by the provider)
 *   401 / 403                            final provider_error (bad or blocked key)
 *   429                                  retryable, saturated, Retry-After honoured
 *   408 / 5xx / timeout / lost connection  retryable + maybeAccepted (fal may have queued it)
 *   connection never established         retryable, NOT maybeAccepted (refused, DNS, TLS, connect timeout)
 *   400 / 422 model error                content_policy_violation / model_moderated -> content_rejected;
 *                                        provider-side types (file_download_error, downstream_*, ...) ->
 *                                        provider_error (retryable when X-Fal-Retryable: true);
 *                                        any other type -> invalid_input. All final.
 *   400 / 422 otherwise                  final invalid_input
 *   3xx / other 4xx (402, 404, 405, ...)   final provider_error (misconfiguration or billing)
 *
 * Poll (the task is accepted and paid for, so only a definitive answer ends it):
 *   a model error from the result endpoint  failed (same type mapping as above; any HTTP status)
 *   everything else that is not a success   retryable (bounded by the worker's attempts and the task
 *                                            deadline), including 401/403/404 on status/result:
 *                                            a key rotated mid-flight must not lose a paid result.
 */
import { type FailureReason, type PollResult, ProviderError } from "../provider.js";
import { isRecord } from "./mapping.js";

export type FalStage = "submit" | "status" | "result" | "cancel";

export interface FalModelErrorItem {
  type: string;
  msg: string;
  loc: string[];
  categories: string[];
}

export type FalErrorBody =
  | { kind: "model"; errors: FalModelErrorItem[] }
  | { kind: "request"; detail: string; errorType: string | undefined }
  | { kind: "unknown"; errorType: string | undefined };

/** Model error types that say "refused for content reasons". */
export const CONTENT_REJECTION_TYPES: ReadonlySet<string> = new Set(["content_policy_violation", "model_moderated"]);

/**
 * Model error types that are about fal or its partners, not the caller's input: a task with
 * them fails as provider_error. `file_download_error` is here because the only URL we send is our
 * own signed copy of the reference, so fal failing to download it is our (or fal's) problem.
 */
export const PROVIDER_SIDE_TYPES: ReadonlySet<string> = new Set([
  "internal_server_error",
  "generation_timeout",
  "downstream_service_error",
  "downstream_service_unavailable",
  "file_download_error",
]);

const MAX_TEXT = 300;

/** Single-line, bounded, key-free text for error messages. */
export function cleanText(text: string, secret: string, max = MAX_TEXT): string {
  let out = secret ? text.split(secret).join("[redacted]") : text;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  out = out.replace(/[\u0000-\u001f\u007f]+/gu, " ").trim();
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads either error shape; `headers` supplies X-Fal-Error-Type when the body lacks it. */
export function parseFalErrorBody(text: string, headers?: Headers): FalErrorBody {
  const headerType = headers?.get("x-fal-error-type")?.trim() || undefined;
  const json = parseJson(text);
  if (isRecord(json) && Array.isArray(json.detail)) {
    const errors = json.detail.filter(isRecord).map(
      (item): FalModelErrorItem => ({
        type: typeof item.type === "string" ? item.type : "",
        msg: typeof item.msg === "string" ? item.msg : "",
        loc: Array.isArray(item.loc) ? item.loc.map((part) => String(part)) : [],
        categories: Array.isArray(item.categories)
          ? item.categories.filter((c): c is string => typeof c === "string")
          : [],
      }),
    );
    if (errors.length > 0 && errors.some((e) => e.type)) return { kind: "model", errors };
  }
  if (isRecord(json) && typeof json.detail === "string") {
    const bodyType = typeof json.error_type === "string" && json.error_type ? json.error_type : undefined;
    return { kind: "request", detail: json.detail, errorType: bodyType ?? headerType };
  }
  return { kind: "unknown", errorType: headerType };
}

export function isContentRejection(errors: readonly FalModelErrorItem[]): boolean {
  return errors.some(
    (e) => CONTENT_REJECTION_TYPES.has(e.type) || e.categories.some((c) => CONTENT_REJECTION_TYPES.has(c)),
  );
}

/** The public failure reason for a model error answered with `status`. */
export function modelErrorReason(status: number, errors: readonly FalModelErrorItem[]): FailureReason {
  if (isContentRejection(errors)) return "content_rejected";
  if (errors.some((e) => PROVIDER_SIDE_TYPES.has(e.type))) return "provider_error";
  return status === 400 || status === 422 ? "invalid_input" : "provider_error";
}

/** "fal: <msg> (<type> at body.prompt); …", without the echoed input. */
export function describeModelErrors(errors: readonly FalModelErrorItem[], secret: string): string {
  const parts = errors.slice(0, 3).map((e) => {
    const where = e.loc.length > 0 ? ` at ${e.loc.join(".")}` : "";
    const categories = e.categories.length > 0 ? ` [${e.categories.join(", ")}]` : "";
    const msg = e.msg || "model error";
    return `${msg} (${e.type || "unknown"}${where})${categories}`;
  });
  return cleanText(`fal: ${parts.join("; ")}`, secret, 500);
}

function describeHttp(stage: FalStage, status: number, body: FalErrorBody, secret: string): string {
  let what = `fal ${stage} failed: HTTP ${status}`;
  if (body.kind === "request") {
    what += body.errorType ? ` ${body.errorType}` : "";
    if (body.detail) what += `: ${body.detail}`;
  } else if (body.kind === "model") {
    what += `: ${describeModelErrors(body.errors, secret).replace(/^fal: /u, "")}`;
  } else if (body.errorType) {
    what += ` ${body.errorType}`;
  }
  return cleanText(what, secret, 500);
}

/** Retry-After (delta-seconds or HTTP-date) in ms, capped at 10 minutes; undefined when absent/invalid. */
export function parseRetryAfter(headers: Headers, now: () => number): number | undefined {
  const raw = headers.get("retry-after")?.trim();
  if (!raw) return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/u.test(raw)) ms = Math.round(Number(raw) * 1000);
  else {
    const at = Date.parse(raw);
    if (Number.isNaN(at)) return undefined;
    ms = at - now();
  }
  return Math.max(0, Math.min(600_000, ms));
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** A non-2xx answer to submit. */
export function submitHttpError(res: HttpAnswer, secret: string, now: () => number): ProviderError {
  const body = parseFalErrorBody(res.text, res.headers);
  const message = describeHttp("submit", res.status, body, secret);
  const retryAfterMs = parseRetryAfter(res.headers, now);
  const { status } = res;
  if (status === 401 || status === 403) {
    return new ProviderError(`${message} (fal rejected the API key)`, { retryable: false });
  }
  if (status === 429) return new ProviderError(message, { retryable: true, saturated: true, retryAfterMs });
  if (status === 408 || status >= 500) {
    return new ProviderError(message, { retryable: true, maybeAccepted: true, retryAfterMs });
  }
  if (body.kind === "model") {
    const reason = modelErrorReason(status, body.errors);
    const retryable =
      reason === "provider_error" && res.headers.get("x-fal-retryable")?.trim().toLowerCase() === "true";
    return new ProviderError(message, { retryable, reason, retryAfterMs: retryable ? retryAfterMs : undefined });
  }
  if (status === 400 || status === 422)
    return new ProviderError(message, { retryable: false, reason: "invalid_input" });
  return new ProviderError(message, { retryable: false });
}

/**
 * A non-success answer from the status or result endpoint. `failed` when it is the model's
 * definitive answer (result endpoint, model error shape), otherwise a retryable error.
 */
export function pollHttpOutcome(
  stage: "status" | "result",
  res: HttpAnswer,
  secret: string,
  now: () => number,
): { failed: Extract<PollResult, { state: "failed" }> } | { retry: ProviderError } {
  const body = parseFalErrorBody(res.text, res.headers);
  if (stage === "result" && body.kind === "model") {
    return {
      failed: {
        state: "failed",
        reason: modelErrorReason(res.status, body.errors),
        message: describeModelErrors(body.errors, secret),
      },
    };
  }
  let message = describeHttp(stage, res.status, body, secret);
  if (res.status === 401 || res.status === 403) message += " (fal rejected the API key)";
  return { retry: new ProviderError(message, { retryable: true, retryAfterMs: parseRetryAfter(res.headers, now) }) };
}

/**
 * The answer to PUT …/requests/{id}/cancel (sent only for a request IN_QUEUE): a 2xx
 * (CANCELLATION_REQUESTED) took it out of the queue; 400 (ALREADY_COMPLETED) and 404 (NOT_FOUND)
 * say it can no longer be stopped. Anything else tells nothing about the request: thrown, so the
 * caller changes nothing and may try again.
 */
export function cancelHttpOutcome(res: HttpAnswer, secret: string, now: () => number): "canceled" | "not_cancelable" {
  if (res.status >= 200 && res.status <= 299) return "canceled";
  if (res.status === 400 || res.status === 404) return "not_cancelable";
  let message = describeHttp("cancel", res.status, parseFalErrorBody(res.text, res.headers), secret);
  if (res.status === 401 || res.status === 403) message += " (fal rejected the API key)";
  throw new ProviderError(message, { retryable: true, retryAfterMs: parseRetryAfter(res.headers, now) });
}

/** Error codes that mean the request never left this machine, so fal cannot have accepted it. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_INVALID_URL",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
]);

/** The first `code` found on the error, its causes or an AggregateError's members. */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== "object" || depth > 5) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === "string" && e.code) return e.code;
  const fromCause = errorCode(e.cause, depth + 1);
  if (fromCause) return fromCause;
  if (Array.isArray(e.errors)) {
    for (const member of e.errors) {
      const code = errorCode(member, depth + 1);
      if (code) return code;
    }
  }
  return undefined;
}

/**
 * A failed exchange (no HTTP answer): always retryable. For submit, `maybeAccepted` unless the
 * connection provably never carried the request (refused, DNS, TLS, connect timeout).
 */
export function transportError(
  stage: FalStage,
  err: unknown,
  opts: { timedOut: boolean; timeoutMs: number },
): ProviderError {
  if (opts.timedOut) {
    return new ProviderError(`fal ${stage} timed out after ${opts.timeoutMs} ms`, {
      retryable: true,
      maybeAccepted: stage === "submit",
    });
  }
  const code = errorCode(err);
  const notSent = code !== undefined && NOT_SENT_CODES.has(code);
  return new ProviderError(`fal ${stage} failed: network error${code ? ` (${code})` : ""}`, {
    retryable: true,
    maybeAccepted: stage === "submit" && !notSent,
  });
}
