/**
 * The request engine: URL building, auth and SDK headers, per-attempt timeouts combined with the
 * caller's signal, error mapping, and retries with exponential backoff and jitter.
 *
 * Retry policy (a request is retried at most `maxRetries` times, default 2):
 *  - "idempotent" (every GET, PATCH and DELETE, and POST /generations, which always carries an
 *    Idempotency-Key): connection errors and timeouts, 408, 429, every 5xx, and 409
 *    idempotency_conflict while the first request with the key is still running.
 *  - "unsafe" (the other POSTs: file uploads, webhook create, rotate-secret, test, redeliver):
 *    only answers that prove nothing was done, that is 429 rate_limited (the limiter refuses
 *    before the handler runs), and connection failures before the request could be sent
 *    (ECONNREFUSED, DNS errors). Never after a timeout or a 5xx: the server may have acted.
 *    Bodies that cannot be sent twice (streams) are never retried.
 * A Retry-After header (seconds or HTTP date) sets the delay when present; one above 60 s ends
 * the retries and the error is thrown to the caller.
 */
import {
  APIConnectionError,
  type APIError,
  APITimeoutError,
  ConflictError,
  errorFromResponse,
  FramegateError,
  parseRetryAfter,
} from "./errors.js";
import { abortReason, anySignal, sleep, timeoutSignal } from "./internal.js";
import { VERSION } from "./version.js";

/** Options every method takes as its last argument. */
export interface RequestOptions {
  /** Cancels the call (including retries and their waits); the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds per attempt (default: the client's `timeout`). */
  timeout?: number;
  /** Retries after the first attempt (default: the client's `maxRetries`). */
  maxRetries?: number;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

export type RetryPolicy = "idempotent" | "unsafe";

export interface FinalRequest {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined> | undefined;
  /** A JSON body. */
  json?: unknown;
  /** A prepared body; `replayable: false` bodies are sent once only. */
  body?:
    | { value: Blob | ReadableStream<Uint8Array>; contentType: string; replayable: boolean; stream: boolean }
    | undefined;
  headers?: Record<string, string> | undefined;
  retry: RetryPolicy;
  options?: RequestOptions | undefined;
}

export interface ApiResponse<T> {
  data: T;
  response: Response;
}

/** fetch's credentials modes (spelled out: the SDK builds without the DOM library). */
export type CredentialsMode = "omit" | "same-origin" | "include";

export interface CoreOptions {
  apiKey: string | undefined;
  baseUrl: string;
  timeout: number;
  maxRetries: number;
  fetch: typeof fetch;
  defaultHeaders: Record<string, string>;
  /** fetch's `credentials` mode for every API request; undefined leaves fetch's default. */
  credentials: CredentialsMode | undefined;
}

const MAX_RETRY_AFTER_SECONDS = 60;
const INITIAL_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8000;
/** Connection failures that happen before anything is sent: safe to retry for any request. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]);

export class Core {
  constructor(readonly opts: CoreOptions) {}

  buildUrl(path: string, query?: Record<string, string | number | undefined>): string {
    const url = new URL(`${this.opts.baseUrl}${path}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async request<T>(req: FinalRequest): Promise<ApiResponse<T>> {
    const options = req.options ?? {};
    const maxRetries = Math.max(0, options.maxRetries ?? this.opts.maxRetries);
    const timeout = options.timeout ?? this.opts.timeout;
    const url = this.buildUrl(req.path, req.query);
    const headers = this.headers(req);
    const canReplay = req.body ? req.body.replayable : true;

    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      const attemptTimeout = timeoutSignal(timeout);
      const { signal, cleanup } = anySignal([options.signal, attemptTimeout]);
      let failure: FramegateError;
      let retryAfter: number | undefined;
      try {
        const init: RequestInit & { duplex?: "half" } = { method: req.method, headers, signal };
        if (this.opts.credentials) init.credentials = this.opts.credentials;
        if (req.json !== undefined) init.body = JSON.stringify(req.json);
        else if (req.body) {
          init.body = req.body.value;
          if (req.body.stream) init.duplex = "half";
        }
        const response = await this.opts.fetch.call(globalThis, url, init);
        const text = await response.text();
        if (response.ok) {
          cleanup();
          return { data: parseJson<T>(text, response), response };
        }
        failure = errorFromResponse(response.status, response.headers, text);
        retryAfter = parseRetryAfter(response.headers);
      } catch (error) {
        cleanup();
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (error instanceof FramegateError) throw error;
        failure = attemptTimeout.aborted
          ? new APITimeoutError(`Request timed out after ${timeout} ms.`, { cause: error })
          : new APIConnectionError(connectionMessage(error), { cause: error });
      }
      cleanup();
      if (attempt >= maxRetries || !canReplay || !shouldRetry(req.retry, failure)) throw failure;
      if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_SECONDS) throw failure;
      await sleep(retryDelay(attempt, retryAfter), options.signal);
    }
  }

  /** The headers of a request: SDK identification, the API key, defaults, then the call's own. */
  headers(req: FinalRequest): Headers {
    const headers = new Headers({
      accept: "application/json",
      "user-agent": `framegate-sdk-ts/${VERSION}`,
      "x-framegate-sdk": `ts/${VERSION}`,
    });
    if (this.opts.apiKey) headers.set("authorization", `Bearer ${this.opts.apiKey}`);
    if (req.json !== undefined) headers.set("content-type", "application/json");
    else if (req.body) headers.set("content-type", req.body.contentType);
    for (const source of [this.opts.defaultHeaders, req.headers, req.options?.headers]) {
      for (const [name, value] of Object.entries(source ?? {})) headers.set(name, value);
    }
    return headers;
  }
}

function parseJson<T>(text: string, response: Response): T {
  if (text === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new FramegateError(`Expected a JSON response, got ${JSON.stringify(text.slice(0, 80))}.`, {
      status: response.status,
      code: "invalid_response",
      requestId: response.headers.get("x-request-id") ?? undefined,
      headers: response.headers,
      cause: error,
    });
  }
}

function connectionMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const detail = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : undefined);
  return detail ? `Connection error (${detail}).` : "Connection error.";
}

/** True for a connection failure that happened before the request was sent. */
function neverSent(error: FramegateError): boolean {
  let cause: unknown = error.cause;
  for (let depth = 0; cause && depth < 4; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

/** An idempotency_conflict that means "the first request with this key is still running". */
function stillRunning(error: APIError): boolean {
  return error.headers?.has("retry-after") === true || /still being processed|retry later/i.test(error.message);
}

export function shouldRetry(policy: RetryPolicy, error: FramegateError): boolean {
  if (error instanceof APIConnectionError) {
    return policy === "idempotent" ? true : !(error instanceof APITimeoutError) && neverSent(error);
  }
  const status = error.status;
  if (status === undefined) return false;
  if (status === 429) return true;
  if (policy === "unsafe") return false;
  if (status === 408 || status >= 500) return true;
  if (error instanceof ConflictError && error.code === "idempotency_conflict") return stillRunning(error);
  // A cancel that met a submit in flight: the server says when to try again.
  if (error instanceof ConflictError && error.code === "not_cancelable")
    return error.headers?.has("retry-after") === true;
  return false;
}

/** Retry-After when given, else exponential backoff (0.5 s, 1 s, 2 s, … ≤ 8 s) with jitter. */
export function retryDelay(attempt: number, retryAfterSeconds: number | undefined): number {
  if (retryAfterSeconds !== undefined) return retryAfterSeconds * 1000;
  const base = Math.min(INITIAL_RETRY_DELAY_MS * 2 ** attempt, MAX_RETRY_DELAY_MS);
  return base * (0.75 + Math.random() * 0.25);
}
