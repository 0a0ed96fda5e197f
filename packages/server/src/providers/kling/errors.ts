/**
 * Kling's service codes → ProviderError (kling-upstreams §1.7). Errors are classified by the
 * `code` field of the JSON envelope, never by the HTTP status: running out of balance (1102)
 * arrives as HTTP 429, and retrying it would only burn attempts. The HTTP status is only used
 * when the body carries no code at all (a proxy's HTML error page, an empty 502...).
 */
import { type FailureReason, ProviderError } from "../provider.js";

/** Which call failed: a submit error may leave open whether the task was created upstream. */
export type KlingPhase = "submit" | "poll" | "find";

export interface KlingCodeRule {
  /** Short meaning, used in error messages. */
  meaning: string;
  retryable: boolean;
  reason: FailureReason;
  saturated?: boolean;
  /** Suggested wait for retryable codes (at least 1 s). */
  retryAfterMs?: number;
  /** On submit the task may have been created regardless (server-side failures). */
  maybeAcceptedOnSubmit?: boolean;
}

/** Minimum wait suggested for any retryable Kling error (the docs ask for >= 1 s backoff). */
export const MIN_RETRY_AFTER_MS = 1000;
/** Wait after a timeout or a network failure. */
export const TRANSPORT_RETRY_AFTER_MS = 2000;

const final = (meaning: string, reason: FailureReason = "provider_error"): KlingCodeRule => ({
  meaning,
  retryable: false,
  reason,
});
const serverSide = (meaning: string, retryAfterMs: number): KlingCodeRule => ({
  meaning,
  retryable: true,
  reason: "provider_error",
  retryAfterMs,
  maybeAcceptedOnSubmit: true,
});

/** The documented code table, in one place. 1000–1004 get one fresh-token retry before this applies. */
export const KLING_CODE_RULES: Readonly<Record<number, KlingCodeRule>> = {
  1000: final("authentication failed"),
  1001: final("authorization header is empty"),
  1002: final("authorization is invalid"),
  1003: final("authorization is not yet valid"),
  1004: final("authorization has expired"),
  1100: final("account exception"),
  1101: final("account in arrears"),
  1102: final("resource pack used up or expired (no balance)"),
  1103: final("no access to this API or model"),
  1200: final("invalid request parameters", "invalid_input"),
  1201: final("invalid parameter value", "invalid_input"),
  1202: final("request method not supported"),
  1203: final("requested resource does not exist"),
  1300: final("platform policy triggered"),
  1301: final("content security policy triggered", "content_rejected"),
  1302: { meaning: "request rate too high", retryable: true, reason: "provider_error", retryAfterMs: 2000 },
  1303: {
    meaning: "concurrency over the resource pack limit",
    retryable: true,
    reason: "provider_error",
    saturated: true,
    retryAfterMs: 5000,
  },
  1304: final("IP whitelist policy"),
  5000: serverSide("internal server error", 5000),
  5001: serverSide("service temporarily unavailable (maintenance)", 30_000),
  5002: serverSide("server timeout (backlog)", 5000),
};

/** A ProviderError built from a Kling answer, keeping the service code and HTTP status. */
export class KlingApiError extends ProviderError {
  readonly code: number | undefined;
  readonly httpStatus: number;
  /** Kling's own `message`, single-lined (for duplicate/lookup decisions, not for users). */
  readonly upstreamMessage: string | undefined;
  constructor(
    message: string,
    opts: ConstructorParameters<typeof ProviderError>[1] & {
      code?: number | undefined;
      httpStatus: number;
      upstreamMessage?: string | undefined;
    },
  ) {
    super(message, opts);
    this.name = "KlingApiError";
    this.code = opts.code;
    this.httpStatus = opts.httpStatus;
    this.upstreamMessage = opts.upstreamMessage;
  }
}

/** Codes that mean "the JWT was refused": sign a fresh one and retry once. */
export function isAuthCode(code: number | undefined): boolean {
  return code !== undefined && code >= 1000 && code <= 1004;
}

/** Codes that mean "no such task" when looking a task up. */
export function isNotFoundCode(code: number | undefined): boolean {
  return code === 1203;
}

export interface KlingErrorInfo {
  phase: KlingPhase;
  httpStatus: number;
  /** The envelope's `code`, when the body had one. */
  code?: number;
  /** The envelope's `message` (or a short excerpt of a non-JSON body). */
  message?: string;
  requestId?: string;
  /** The raw Retry-After header, if any. */
  retryAfter?: string | null;
  /** Set when a fresh-token retry was already spent on this request. */
  afterAuthRetry?: boolean;
}

/** Maps an error response (a non-zero code, or a non-2xx without one) to a ProviderError. */
export function errorFromResponse(info: KlingErrorInfo): KlingApiError {
  const { phase, httpStatus, code } = info;
  const rule = code !== undefined ? KLING_CODE_RULES[code] : undefined;
  const headerWait = parseRetryAfter(info.retryAfter);
  const label =
    code !== undefined
      ? `Kling error ${code}${rule ? ` (${rule.meaning})` : ""} [HTTP ${httpStatus}]`
      : `Kling HTTP ${httpStatus} without a service code`;
  const suffix = [
    info.message ? `: ${oneLine(info.message)}` : "",
    info.afterAuthRetry ? " (after one retry with a fresh token)" : "",
    info.requestId ? ` (request_id ${oneLine(info.requestId, 80)})` : "",
  ].join("");
  const message = `${label} on ${phase}${suffix}`;
  const meta = {
    code,
    httpStatus,
    upstreamMessage: info.message !== undefined ? oneLine(info.message) : undefined,
  };

  if (rule) {
    if (!rule.retryable) return new KlingApiError(message, { ...meta, retryable: false, reason: rule.reason });
    return new KlingApiError(message, {
      ...meta,
      retryable: true,
      reason: rule.reason,
      saturated: rule.saturated ?? false,
      maybeAccepted: phase === "submit" && (rule.maybeAcceptedOnSubmit ?? false),
      retryAfterMs: Math.max(MIN_RETRY_AFTER_MS, headerWait ?? rule.retryAfterMs ?? MIN_RETRY_AFTER_MS),
    });
  }
  // An undocumented code, or no code: fall back on the HTTP status.
  if (httpStatus === 401) return new KlingApiError(message, { ...meta, retryable: false });
  if (httpStatus >= 500 || httpStatus === 408 || httpStatus === 429 || (httpStatus >= 200 && httpStatus < 300)) {
    // 2xx with a non-zero unknown code: an unexpected shape; treat like a server-side hiccup.
    return new KlingApiError(message, {
      ...meta,
      retryable: true,
      maybeAccepted: phase === "submit" && httpStatus !== 429,
      retryAfterMs: Math.max(MIN_RETRY_AFTER_MS, headerWait ?? 5000),
    });
  }
  return new KlingApiError(message, { ...meta, retryable: false });
}

/**
 * Kling refusing a create because our external_task_id is already used (the wording is not
 * documented; any parameter/policy error that names the field or says "exists"/"duplicate").
 */
export function isDuplicateExternalIdError(err: unknown): boolean {
  if (!(err instanceof KlingApiError) || err.retryable) return false;
  if (err.code !== undefined && err.code !== 1200 && err.code !== 1201 && err.code !== 1300) return false;
  return /external[\s_-]*task[\s_-]*id|duplicat|already exist|already been used|repeat/i.test(
    err.upstreamMessage ?? "",
  );
}

/**
 * A timeout or a network failure. `beforeSend` marks failures that happen before the request can
 * have reached Kling (connection refused, DNS), which cannot leave a task behind.
 */
export function transportError(
  phase: KlingPhase,
  kind: "timeout" | "network",
  detail: string,
  beforeSend = false,
): ProviderError {
  const what = kind === "timeout" ? "timed out" : "network error";
  return new ProviderError(`Kling ${phase} ${what}: ${oneLine(detail)}`, {
    retryable: true,
    maybeAccepted: phase === "submit" && !beforeSend,
    retryAfterMs: TRANSPORT_RETRY_AFTER_MS,
  });
}

/**
 * A 2xx answer we cannot read (malformed JSON, missing fields). On submit Kling most likely
 * created the task, so the router must look for it before going elsewhere.
 */
export function malformedResponseError(phase: KlingPhase, detail: string): ProviderError {
  return new ProviderError(`Kling ${phase}: unexpected response: ${oneLine(detail)}`, {
    retryable: true,
    maybeAccepted: phase === "submit",
    retryAfterMs: 5000,
  });
}

/**
 * Moderation wording in a failed task's `task_status_msg` (English and Chinese): "risk control",
 * content security/policy, sensitive, violation... Everything else is a provider error.
 */
const CONTENT_REJECTION_RE =
  /risk[\s_-]*control|moderat|content[\s_-]*(security|safety|policy|review|audit|violation)|sensitive|violat|inappropriate|prohibited|forbidden content|nsfw|porn|nudity|sexual|violence|politic|illegal|censor|风控|违规|敏感|审核|安全策略|不合规/i;

export function failureReasonFor(taskStatusMsg: string | undefined): FailureReason {
  return taskStatusMsg && CONTENT_REJECTION_RE.test(taskStatusMsg) ? "content_rejected" : "provider_error";
}

/** Retry-After as milliseconds (delta seconds or an HTTP date); undefined when absent or bad. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Single line, bounded length: upstream text ends up in logs and in task errors. */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
