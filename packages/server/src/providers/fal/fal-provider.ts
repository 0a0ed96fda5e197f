/**
 * fal.ai queue adapter for Kling 2.6 (docs/kling-upstreams.md §2).
 *
 *   submit  POST {queueUrl}/{model id} with the raw JSON input (mapping.ts) -> request_id
 *   poll    GET  {queueUrl}/fal-ai/kling-video/requests/{id}/status   202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED
 *           GET  {queueUrl}/fal-ai/kling-video/requests/{id}          the raw model output or the model's error
 *
 * Security: the status_url / response_url / cancel_url that fal returns are never used. Every URL
 * is rebuilt from the configured base and a validated request id, so a forged value can never
 * make us send `Authorization: Key …` elsewhere. Redirects are not followed for the same reason.
 * The key never appears in an error message (upstream text is redacted and truncated).
 *
 * fal keeps a finished result only for minutes, so a transient failure of the result fetch is
 * retried a few times inside the same poll before the poll is reported as retryable; the worker
 * must copy `media[0].url` right away.
 *
 *   cancel  GET  …/status, then only while IN_QUEUE: PUT {queueUrl}/fal-ai/kling-video/requests/{id}/cancel
 *
 * Not implemented on purpose: `findSubmitted` (fal has no lookup by our own id) and `release`
 * (fal has nothing to delete).
 */
import { injectTraceHeaders } from "../../observability/tracing.js";
import type { CancelOutcome, PollResult, Provider, ProviderTask, SubmitResult } from "../provider.js";
import { ProviderError } from "../provider.js";
import {
  cancelHttpOutcome,
  cleanText,
  type FalStage,
  type HttpAnswer,
  parseJson,
  pollHttpOutcome,
  submitHttpError,
  transportError,
} from "./errors.js";
import {
  buildFalRequest,
  falCancelUrl,
  falResultUrl,
  falStatusUrl,
  falSubmitUrl,
  isFalRequestId,
  isRecord,
  mapFalOutput,
  normalizeQueueUrl,
} from "./mapping.js";

export const FAL_DEFAULT_QUEUE_URL = "https://queue.fal.run";
export const FAL_DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Poll hints: fal jobs take one to a few minutes; the worker caps these with its own maximum. */
export const FAL_IN_QUEUE_RETRY_MS = 10_000;
export const FAL_IN_PROGRESS_RETRY_MS = 5_000;
/** fal's JSON answers are tiny; anything bigger is treated as a malformed answer. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface FalProviderOptions {
  /** FAL_KEY, sent as `Authorization: Key <key>`. */
  key: string;
  /** FAL_QUEUE_URL (default https://queue.fal.run); trailing slashes are removed. */
  queueUrl?: string;
  /** Per-request deadline: connect, headers and body (default 30 s). */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
  /** Result fetches per poll after COMPLETED before giving up with a retryable error (default 3). */
  resultFetchAttempts?: number;
  /** Wait before the 2nd result fetch; doubled each time (default 500 ms). */
  resultRetryDelayMs?: number;
}

export class FalProvider implements Provider {
  readonly name = "fal";
  private readonly key: string;
  private readonly queueUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly resultAttempts: number;
  private readonly resultDelayMs: number;

  constructor(opts: FalProviderOptions) {
    // Header-safe and non-empty; the message never includes the value.
    if (typeof opts.key !== "string" || !/^[\x21-\x7e]+$/u.test(opts.key)) {
      throw new Error("fal: FAL_KEY is missing or contains invalid characters");
    }
    this.key = opts.key;
    this.queueUrl = normalizeQueueUrl(opts.queueUrl ?? FAL_DEFAULT_QUEUE_URL);
    this.timeoutMs = positiveInt(opts.requestTimeoutMs, FAL_DEFAULT_REQUEST_TIMEOUT_MS);
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = opts.now ?? Date.now;
    this.resultAttempts = positiveInt(opts.resultFetchAttempts, 3);
    this.resultDelayMs = Math.max(0, opts.resultRetryDelayMs ?? 500);
  }

  async submit(task: ProviderTask): Promise<SubmitResult> {
    const request = buildFalRequest(task);
    const res = await this.exchange("submit", "POST", falSubmitUrl(this.queueUrl, request.modelId), request.input);
    if (res.status < 200 || res.status > 299) {
      if (res.status >= 300 && res.status <= 399) {
        // Not followed (the Key header would go along); nothing was queued.
        throw new ProviderError(`fal submit failed: unexpected redirect (HTTP ${res.status})`, { retryable: false });
      }
      throw submitHttpError(res, this.key, this.now);
    }
    // A 2xx means fal queued it; if we cannot read the id the task may be running unseen.
    const json = parseJson(res.text);
    if (!isRecord(json)) {
      throw new ProviderError("fal submit: malformed answer (not a JSON object)", {
        retryable: true,
        maybeAccepted: true,
      });
    }
    // Only the id is kept: status_url / response_url / cancel_url are deliberately ignored.
    if (!isFalRequestId(json.request_id)) {
      throw new ProviderError("fal submit: answer has no valid request_id", { retryable: true, maybeAccepted: true });
    }
    return { upstreamId: json.request_id };
  }

  async poll(upstreamId: string, _task: ProviderTask): Promise<PollResult> {
    if (!isFalRequestId(upstreamId)) throw new ProviderError("fal: malformed upstream id", { retryable: false });
    const res = await this.exchange("status", "GET", falStatusUrl(this.queueUrl, upstreamId));
    if (res.status !== 200 && res.status !== 202) {
      const outcome = pollHttpOutcome("status", res, this.key, this.now);
      if ("failed" in outcome) return outcome.failed;
      throw outcome.retry;
    }
    const json = parseJson(res.text);
    if (!isRecord(json) || typeof json.status !== "string") {
      throw new ProviderError("fal status: malformed answer", { retryable: true });
    }
    switch (json.status.toUpperCase()) {
      case "IN_QUEUE":
        return { state: "pending", retryAfterMs: FAL_IN_QUEUE_RETRY_MS };
      case "IN_PROGRESS":
        return { state: "pending", retryAfterMs: FAL_IN_PROGRESS_RETRY_MS };
      case "COMPLETED":
        return this.fetchResult(upstreamId, typeof json.error_type === "string" ? json.error_type : undefined);
      case "FAILED":
      case "ERROR":
      case "CANCELED":
      case "CANCELLED": {
        const why = typeof json.error === "string" && json.error ? `: ${json.error}` : "";
        const canceled = json.status.toUpperCase().startsWith("CANCEL");
        return {
          state: "failed",
          reason: canceled ? "canceled" : "provider_error",
          message: cleanText(`fal request ${json.status.toLowerCase()}${why}`, this.key, 500),
        };
      }
      default:
        // Unknown statuses are treated as still running; the task deadline bounds this.
        return { state: "pending", retryAfterMs: FAL_IN_PROGRESS_RETRY_MS };
    }
  }

  /**
   * fal takes a request out of its queue only while it waits there (docs/kling-upstreams.md §2.4):
   * one already running just gets a signal its model may ignore, and it is billed. So the status
   * is read first and the cancel is sent only for IN_QUEUE. A request that starts in the moment
   * between the two may still run at fal; it is refunded here all the same.
   */
  async cancel(upstreamId: string, _task: ProviderTask): Promise<CancelOutcome> {
    if (!isFalRequestId(upstreamId)) throw new ProviderError("fal: malformed upstream id", { retryable: false });
    const res = await this.exchange("status", "GET", falStatusUrl(this.queueUrl, upstreamId));
    if (res.status !== 200 && res.status !== 202) {
      const outcome = pollHttpOutcome("status", res, this.key, this.now);
      if ("failed" in outcome) return "not_cancelable";
      throw outcome.retry;
    }
    const json = parseJson(res.text);
    if (!isRecord(json) || typeof json.status !== "string") {
      throw new ProviderError("fal status: malformed answer", { retryable: true });
    }
    if (json.status.toUpperCase() !== "IN_QUEUE") return "not_cancelable";
    const answer = await this.exchange("cancel", "PUT", falCancelUrl(this.queueUrl, upstreamId));
    return cancelHttpOutcome(answer, this.key, this.now);
  }

  /**
   * GET the result after COMPLETED, retrying transient failures (5xx, 429, timeouts, malformed
   * JSON) a few times within one request timeout's worth of time. `statusErrorType` is the
   * `error_type` a COMPLETED status may carry: when the result endpoint answers with that same
   * request error, the request failed at fal for good and retrying the fetch cannot help.
   */
  private async fetchResult(requestId: string, statusErrorType: string | undefined): Promise<PollResult> {
    const deadline = this.now() + this.timeoutMs;
    let lastError: ProviderError | undefined;
    for (let attempt = 1; attempt <= this.resultAttempts; attempt++) {
      let res: HttpAnswer | undefined;
      try {
        res = await this.exchange("result", "GET", falResultUrl(this.queueUrl, requestId));
      } catch (err) {
        if (!(err instanceof ProviderError) || !err.retryable) throw err;
        lastError = err;
      }
      if (res) {
        if (res.status >= 200 && res.status <= 299) {
          const json = parseJson(res.text);
          if (json !== undefined) return mapFalOutput(json);
          lastError = new ProviderError("fal result: malformed JSON", { retryable: true });
        } else {
          const outcome = pollHttpOutcome("result", res, this.key, this.now);
          if ("failed" in outcome) return outcome.failed;
          const errorType = res.headers.get("x-fal-error-type") ?? requestErrorType(res.text);
          if (statusErrorType && errorType === statusErrorType) {
            return {
              state: "failed",
              reason: "provider_error",
              message: cleanText(`fal request failed: ${outcome.retry.message}`, this.key, 500),
            };
          }
          lastError = outcome.retry;
        }
      }
      if (attempt === this.resultAttempts) break;
      const wait = Math.max(this.resultDelayMs * 2 ** (attempt - 1), lastError?.retryAfterMs ?? 0);
      if (this.now() + wait >= deadline) break;
      await sleep(wait);
    }
    throw lastError ?? new ProviderError("fal result: fetch failed", { retryable: true });
  }

  /** One HTTP exchange with a deadline covering connect, headers and body. Never follows redirects. */
  private async exchange(
    stage: FalStage,
    method: "GET" | "POST" | "PUT",
    url: string,
    body?: unknown,
  ): Promise<HttpAnswer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const headers: Record<string, string> = { authorization: `Key ${this.key}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    // The provider call's span (when tracing is on): fal can join the trace; nothing is added otherwise.
    injectTraceHeaders(headers);
    try {
      const res = await this.fetchImpl(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        redirect: "manual",
        signal: controller.signal,
      });
      const text = await readCapped(res, MAX_BODY_BYTES);
      return { status: res.status, headers: res.headers, text };
    } catch (err) {
      throw transportError(stage, err, { timedOut: controller.signal.aborted, timeoutMs: this.timeoutMs });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The body as text, or "" past `max` bytes (then it reads as malformed). */
async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return "";
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function requestErrorType(text: string): string | undefined {
  const json = parseJson(text);
  return isRecord(json) && typeof json.error_type === "string" ? json.error_type : undefined;
}

function positiveInt(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
