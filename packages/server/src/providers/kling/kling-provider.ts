/**
 * The official Kling API adapter for kling-2-6 (kling-upstreams §1).
 *
 * - Auth: a cached HS256 JWT (jwt.ts); an auth refusal (HTTP 401 / codes 1000–1004) signs a
 *   fresh token and retries exactly once, then fails for good.
 * - submit: POST /v1/videos/{text2video|image2video} with the body from mapping.ts; the upstream
 *   id is "<subpath>:<task_id>" because a task can only be queried on the sub-path it was
 *   created on. Our task id goes out as external_task_id, so a submit whose answer was lost can
 *   be found again (findSubmitted) and a repeated submit is answered with the existing task.
 * - poll: GET /v1/videos/<subpath>/<task_id>; `data` may be an object or an array; failed tasks
 *   come back with code 0 / "SUCCEED" and the reason in task_status_msg.
 * - errors: by the envelope's `code` (errors.ts), never by the HTTP status alone.
 *
 * Nothing here logs; error messages carry Kling's code, message and request_id, never the JWT
 * or the secret key.
 */

import { injectTraceHeaders } from "../../observability/tracing.js";
import {
  type PollResult,
  type Provider,
  ProviderError,
  type ProviderReference,
  type ProviderTask,
  type SubmitResult,
} from "../provider.js";
import {
  errorFromResponse,
  isAuthCode,
  isDuplicateExternalIdError,
  isNotFoundCode,
  KlingApiError,
  type KlingPhase,
  malformedResponseError,
  oneLine,
  transportError,
} from "./errors.js";
import { resolveImage, type SendImagesAs } from "./image.js";
import { KlingTokenSource } from "./jwt.js";
import {
  buildCreateRequest,
  formatUpstreamId,
  type KlingCreateBody,
  type KlingMode,
  type KlingSubpath,
  parseUpstreamId,
  subpathFor,
} from "./mapping.js";
import {
  asEnvelope,
  isObject,
  type KlingEnvelope,
  PENDING_RETRY_AFTER_MS,
  parseKlingJson,
  pickTask,
  toPollResult,
} from "./response.js";

export const KLING_DEFAULT_BASE_URL = "https://api-singapore.klingai.com";
export const KLING_DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface KlingProviderOptions {
  accessKey: string;
  secretKey: string;
  /** KLING_BASE_URL; default https://api-singapore.klingai.com (a trailing slash is dropped). */
  baseUrl?: string;
  /** KLING_MODE for silent videos (default "pro"); sound on always uses "pro". */
  mode?: KlingMode;
  /** KLING_SEND_IMAGES_AS (default "url"); WEBP is always converted and sent as base64. */
  sendImagesAs?: SendImagesAs;
  /** Builds the callback URL for one of our task ids; no callback_url is sent without it. */
  callbackUrl?: (taskId: string) => string;
  /** Per-request timeout, covering the response body too (default 30 s). */
  requestTimeoutMs?: number;
  /** The `retryAfterMs` hint of pending polls (default 10 s). */
  pollIntervalMs?: number;
  fetch?: typeof fetch;
  /** Clock in epoch ms (JWT claims). */
  now?: () => number;
}

interface RawResponse {
  status: number;
  text: string;
  headers: Headers;
}

/** Connection-level failures that happen before the request can have reached Kling. */
const BEFORE_SEND_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_INVALID_URL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

export class KlingProvider implements Provider {
  readonly name = "kling";
  private readonly baseUrl: string;
  private readonly mode: KlingMode;
  private readonly sendImagesAs: SendImagesAs;
  private readonly callbackUrl: ((taskId: string) => string) | undefined;
  private readonly timeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly tokens: KlingTokenSource;
  private readonly secretKey: string;
  /** The token last sent, so it can be scrubbed from any message. */
  private lastToken = "";

  constructor(opts: KlingProviderOptions) {
    if (!opts.accessKey || !opts.secretKey) throw new Error("Kling needs both an access key and a secret key");
    const baseUrl = (opts.baseUrl ?? KLING_DEFAULT_BASE_URL).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+/i.test(baseUrl)) throw new Error(`Kling base URL must be http(s): ${baseUrl}`);
    this.baseUrl = baseUrl;
    this.mode = opts.mode ?? "pro";
    this.sendImagesAs = opts.sendImagesAs ?? "url";
    this.callbackUrl = opts.callbackUrl;
    this.timeoutMs = opts.requestTimeoutMs ?? KLING_DEFAULT_REQUEST_TIMEOUT_MS;
    this.pollIntervalMs = opts.pollIntervalMs ?? PENDING_RETRY_AFTER_MS;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    this.secretKey = opts.secretKey;
    this.tokens = new KlingTokenSource({
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  /** How many JWTs this adapter has signed (diagnostics and tests). */
  get tokensSigned(): number {
    return this.tokens.signedCount;
  }

  async submit(task: ProviderTask): Promise<SubmitResult> {
    return this.scrubbed(async () => {
      const body = await this.createBody(task);
      const subpath: KlingSubpath = body.image !== undefined ? "image2video" : "text2video";
      try {
        const envelope = await this.call("submit", "POST", `/v1/videos/${subpath}`, body);
        const created = pickTask(envelope.data, {});
        if (!created.ok) throw malformedResponseError("submit", `create answer: ${created.problem}`);
        return { upstreamId: formatUpstreamId(subpath, created.task.task_id) };
      } catch (err) {
        // A repeated submit (e.g. after a crash): Kling refuses the second external_task_id.
        if (isDuplicateExternalIdError(err)) {
          const existing = await this.findSubmitted(task);
          if (existing) return existing;
        }
        throw err;
      }
    });
  }

  /** The create body for a task (references resolved); exposed for tests and diagnostics. */
  async createBody(task: ProviderTask): Promise<KlingCreateBody> {
    const ref = imageReference(task);
    const image = ref ? await resolveImage(ref, { sendImagesAs: this.sendImagesAs }) : undefined;
    const callbackUrl = this.callbackUrl?.(task.taskId);
    return buildCreateRequest(task, {
      mode: this.mode,
      ...(image ? { image: image.value } : {}),
      ...(callbackUrl ? { callbackUrl } : {}),
    }).body;
  }

  async poll(upstreamId: string, _task: ProviderTask): Promise<PollResult> {
    return this.scrubbed(async () => {
      const { subpath, taskId } = parseUpstreamId(upstreamId);
      const envelope = await this.call("poll", "GET", `/v1/videos/${subpath}/${encodeURIComponent(taskId)}`);
      const picked = pickTask(envelope.data, { taskId });
      if (!picked.ok) throw malformedResponseError("poll", picked.problem);
      const result = toPollResult(picked.task, this.pollIntervalMs);
      if (typeof result === "string") throw malformedResponseError("poll", `task ${taskId}: ${result}`);
      return result;
    });
  }

  /**
   * Looks the task up by external_task_id (= our task id) as a path parameter, on the sub-path
   * it would have been created on first, then the other one. 1203 / 404 = not there.
   */
  async findSubmitted(task: ProviderTask): Promise<SubmitResult | undefined> {
    return this.scrubbed(async () => {
      const first = subpathFor(task);
      const order: KlingSubpath[] =
        first === "image2video" ? ["image2video", "text2video"] : ["text2video", "image2video"];
      for (const subpath of order) {
        let envelope: KlingEnvelope;
        try {
          envelope = await this.call("find", "GET", `/v1/videos/${subpath}/${encodeURIComponent(task.taskId)}`);
        } catch (err) {
          if (err instanceof KlingApiError && isNotFound(err)) continue;
          throw err;
        }
        if (envelope.data === undefined || envelope.data === null) continue;
        if (Array.isArray(envelope.data) && envelope.data.length === 0) continue;
        const exact = pickTask(envelope.data, { externalTaskId: task.taskId });
        if (exact.ok) return { upstreamId: formatUpstreamId(subpath, exact.task.task_id) };
        if (exact.kind === "shape") throw malformedResponseError("find", exact.problem);
        // Kling resolved the path id to one task but did not echo task_info: accept that one.
        const single = pickTask(envelope.data, {});
        const info = single.ok ? single.task.task_info : undefined;
        if (single.ok && (!isObject(info) || info.external_task_id === undefined)) {
          return { upstreamId: formatUpstreamId(subpath, single.task.task_id) };
        }
        // Other tasks only: ours is not on this sub-path.
      }
      return undefined;
    });
  }

  /**
   * One API call: sign (or reuse) the JWT, send with a timeout, and return the envelope of a
   * code-0 answer. An auth refusal re-signs and retries exactly once.
   */
  private async call(phase: KlingPhase, method: "GET" | "POST", path: string, body?: unknown): Promise<KlingEnvelope> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokens.get({ fresh: attempt > 0 });
      this.lastToken = token;
      const res = await this.send(phase, method, path, body, token);
      let parsed: unknown;
      let parseProblem: string | undefined;
      if (res.text.trim().length === 0) parseProblem = "empty body";
      else {
        try {
          parsed = parseKlingJson(res.text);
        } catch {
          parseProblem = `invalid JSON: ${excerpt(res.text)}`;
        }
      }
      const envelope = asEnvelope(parsed);
      const authRefused = envelope ? isAuthCode(envelope.code) : res.status === 401;
      if (authRefused && attempt === 0) {
        this.tokens.invalidate();
        continue;
      }
      if (envelope?.code === 0) return envelope;
      if (envelope) {
        throw errorFromResponse({
          phase,
          httpStatus: res.status,
          code: envelope.code,
          ...(typeof envelope.message === "string" ? { message: envelope.message } : {}),
          ...(typeof envelope.request_id === "string" ? { requestId: envelope.request_id } : {}),
          retryAfter: res.headers.get("retry-after"),
          afterAuthRetry: attempt > 0,
        });
      }
      if (res.status >= 200 && res.status < 300) {
        throw malformedResponseError(
          phase,
          `HTTP ${res.status}, ${parseProblem ?? `no service code in ${excerpt(res.text)}`}`,
        );
      }
      throw errorFromResponse({
        phase,
        httpStatus: res.status,
        ...(res.text.trim() ? { message: excerpt(res.text) } : {}),
        retryAfter: res.headers.get("retry-after"),
        afterAuthRetry: attempt > 0,
      });
    }
  }

  private async send(
    phase: KlingPhase,
    method: "GET" | "POST",
    path: string,
    body: unknown,
    token: string,
  ): Promise<RawResponse> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        // With the provider call's traceparent when tracing is on (observability/provider-tracing.ts).
        headers: injectTraceHeaders({
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
          Accept: "application/json",
        }),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: controller.signal,
      });
      const text = await res.text();
      return { status: res.status, text, headers: res.headers };
    } catch (err) {
      if (controller.signal.aborted) {
        throw transportError(phase, "timeout", `no complete answer within ${this.timeoutMs} ms (${method} ${path})`);
      }
      const { detail, beforeSend } = describeNetworkError(err);
      throw transportError(phase, "network", `${method} ${path}: ${detail}`, beforeSend);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Belt and braces: no error leaving the adapter mentions the JWT or the secret key. */
  private async scrubbed<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw scrub(err, [this.lastToken, this.secretKey]);
    }
  }
}

function imageReference(task: ProviderTask): ProviderReference | undefined {
  const other = task.references.find((r) => r.kind !== "image");
  if (other) {
    throw new ProviderError(`Kling 2.6 takes image references only, not ${other.kind}`, {
      retryable: false,
      reason: "invalid_input",
    });
  }
  if (task.references.length > 1) {
    throw new ProviderError("Kling 2.6 takes a single start-frame image", {
      retryable: false,
      reason: "invalid_input",
    });
  }
  return task.references[0];
}

function isNotFound(err: KlingApiError): boolean {
  return isNotFoundCode(err.code) || (err.code === undefined && err.httpStatus === 404);
}

function excerpt(text: string): string {
  return JSON.stringify(oneLine(text, 120));
}

function describeNetworkError(err: unknown): { detail: string; beforeSend: boolean } {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | null;
  const code = e?.cause?.code;
  const detail = [e?.message ?? String(err), e?.cause?.message, code].filter(Boolean).join(": ");
  return { detail, beforeSend: code !== undefined && BEFORE_SEND_CODES.has(code) };
}

function scrub(err: unknown, secrets: string[]): unknown {
  if (!(err instanceof Error)) return err;
  const live = secrets.filter((s) => s.length >= 8 && err.message.includes(s));
  if (live.length === 0) return err;
  let message = err.message;
  for (const s of live) message = message.split(s).join("[redacted]");
  err.message = message;
  if (err.stack)
    err.stack = err.stack
      .split("\n")
      .filter((line) => !live.some((s) => line.includes(s)))
      .join("\n");
  return err;
}
