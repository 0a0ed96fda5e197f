import type { Core, RequestOptions } from "../core.js";
import { type DownloadDestination, type DownloadOptions, type DownloadResult, downloadMedia } from "../download.js";
import {
  APIConnectionError,
  FramegateError,
  InternalServerError,
  RateLimitedError,
  ServiceUnavailableError,
  WaitTimeoutError,
} from "../errors.js";
import type { KnownModelId, ModelRequests } from "../generated/models.js";
import { randomUuid, sleep } from "../internal.js";
import { PagePromise } from "../pagination.js";
import type { ListResponse, Task, TaskStatus } from "../types.js";
import { type StreamOptions, streamTask } from "./generation-stream.js";

/** The body for a model the SDK does not know (or a model id typed as plain `string`): params unchecked. */
export interface LooseGenerationRequest<M extends string = string> {
  model: M;
  prompt: string;
  params?: Record<string, unknown>;
  client_request_id?: string | null;
}

/**
 * The request body for model `M`: the exact generated type for a catalog model id literal
 * (`"kling-2-6"`), a loose one for any other id.
 */
export type GenerationCreateParams<M extends string = KnownModelId> = string extends M
  ? LooseGenerationRequest
  : M extends KnownModelId
    ? ModelRequests[M]
    : LooseGenerationRequest<M>;

export interface CreateOptions extends RequestOptions {
  /**
   * Idempotency-Key (1–255 printable ASCII). When omitted the SDK generates one per call
   * (crypto.randomUUID()) and sends it on every retry, so a retried create never makes a second task.
   */
  idempotencyKey?: string;
}

export interface GenerationListParams {
  /** Page size, 1–100 (server default 20). */
  limit?: number;
  status?: TaskStatus;
  /** Only the tasks created with this `client_request_id` (Framegate extension; 1–128 characters). */
  clientRequestId?: string;
  /** A task id: list the tasks after it (newest first). */
  startingAfter?: string;
}

export interface PollInterval {
  /** Wait before the first check (default 2500 ms: the docs advise 2–3 s after submitting). */
  first?: number;
  /** Interval after the first check (default 5000 ms); it grows ×1.5 per check … */
  min?: number;
  /** … up to this (default 10000 ms: the docs advise 5–10 s). */
  max?: number;
}

export interface WaitOptions {
  /** Stops waiting: the promise rejects with the signal's reason (an AbortError by default). */
  signal?: AbortSignal;
  /** Give up after this many ms with a WaitTimeoutError (default 30 minutes). */
  timeout?: number;
  /** Called with the task after every check (and with the created task in createAndWait). */
  onUpdate?: (task: Task) => void | Promise<void>;
  /** Polling cadence; defaults to the client's `pollInterval`. */
  pollInterval?: PollInterval;
  /**
   * Called when a check fails with an error worth another try (no connection, 429, 5xx), before
   * waiting to try again; the wait goes on until the task is terminal or `timeout`. Lets a caller
   * say that the server is unreachable (and, at the next `onUpdate`, that it is back).
   */
  onRetry?: (error: FramegateError) => void | Promise<void>;
}

export type CreateAndWaitOptions = CreateOptions & WaitOptions;

export const DEFAULT_POLL_INTERVAL: Required<PollInterval> = { first: 2500, min: 5000, max: 10000 };
const DEFAULT_WAIT_TIMEOUT_MS = 30 * 60 * 1000;
/** The longest `Prefer: wait` a server honours (RFC 7240 wait=N; larger values are clamped to it). */
const MAX_HOLD_SECONDS = 60;
const BACKOFF = 1.5;

const isTerminal = (task: Task) => task.status === "succeeded" || task.status === "failed";

/** Errors worth another poll: the task is fine, the read failed. */
function transient(error: unknown): error is FramegateError {
  return (
    error instanceof APIConnectionError ||
    error instanceof RateLimitedError ||
    error instanceof ServiceUnavailableError ||
    error instanceof InternalServerError ||
    (error instanceof FramegateError && error.status !== undefined && error.status >= 500)
  );
}

export class Generations {
  constructor(
    private readonly core: Core,
    private readonly pollInterval: PollInterval,
  ) {}

  /**
   * POST /api/v1/generations → the task (202, status `queued`). For `model: "kling-2-6"` the params
   * are typed exactly (`duration: "7"` does not compile); other model ids take any params.
   */
  async create<const M extends string>(
    body: GenerationCreateParams<M> & { model: M },
    options: CreateOptions = {},
  ): Promise<Task> {
    const { idempotencyKey, ...rest } = options;
    const { data } = await this.core.request<Task>({
      method: "POST",
      path: "/api/v1/generations",
      json: body,
      headers: { "idempotency-key": idempotencyKey ?? randomUuid() },
      retry: "idempotent",
      options: rest,
    });
    return data;
  }

  /**
   * Downloads a succeeded task's video (or, with `poster: true`, its poster frame) through its
   * signed URL, to a file path or a stream, with progress; checks the size and the video's SHA-256.
   * Given an id, the task is fetched first.
   */
  async download(
    task: Task | string,
    destination: DownloadDestination,
    options: DownloadOptions = {},
  ): Promise<DownloadResult> {
    const current =
      typeof task === "string" ? await this.retrieve(task, options.signal ? { signal: options.signal } : {}) : task;
    return downloadMedia(this.core.opts.fetch, this.core.opts.baseUrl, current, destination, options);
  }

  /** GET /api/v1/generations/{id}. */
  async retrieve(id: string, options?: RequestOptions): Promise<Task> {
    const { data } = await this.core.request<Task>({
      method: "GET",
      path: `/api/v1/generations/${encodeURIComponent(id)}`,
      retry: "idempotent",
      options,
    });
    return data;
  }

  /**
   * POST /api/v1/generations/{id}/cancel → the task, `failed` with `error.reason: "canceled"` and
   * refunded. Throws NotCancelableError (409) when it has finished or runs at an upstream that
   * cannot stop it; one being submitted right now is retried after the server's Retry-After.
   * Repeating a cancel changes nothing (a retry after a lost answer may see that 409).
   */
  async cancel(id: string, options?: RequestOptions): Promise<Task> {
    const { data } = await this.core.request<Task>({
      method: "POST",
      path: `/api/v1/generations/${encodeURIComponent(id)}/cancel`,
      retry: "idempotent",
      options,
    });
    return data;
  }

  /** GET /api/v1/generations (newest first). Await for one page, or `for await` over every task. */
  list(params: GenerationListParams = {}, options?: RequestOptions): PagePromise<Task> {
    return new PagePromise<Task>(async (startingAfter) => {
      const { data } = await this.core.request<ListResponse<Task>>({
        method: "GET",
        path: "/api/v1/generations",
        query: {
          limit: params.limit,
          status: params.status,
          client_request_id: params.clientRequestId,
          starting_after: startingAfter,
        },
        retry: "idempotent",
        options,
      });
      return data;
    }, params.startingAfter);
  }

  /**
   * GET /api/v1/generations/{id}/events: the task's states as they change (Server-Sent Events),
   * starting with the current one and ending after `succeeded` or `failed`. A dropped connection
   * is resumed with Last-Event-ID (no state twice, none skipped); `break` out of the loop to stop.
   *
   *   for await (const task of client.generations.stream(id)) console.log(task.status);
   */
  stream(id: string, options: StreamOptions = {}): AsyncGenerator<Task, void> {
    return streamTask(this.core, id, options);
  }

  /**
   * Waits until the task is `succeeded` or `failed` and returns it (a failed task is returned,
   * not thrown: check `status`). Each check asks the server to hold the answer until the task
   * ends (`Prefer: wait`, up to 60 s), so the change is seen as it happens; when the server does
   * not hold it (no Preference-Applied: an older server, or one holding too many), the checks
   * fall back to polling: after `first`, then every `min` growing to `max`. A 429's Retry-After is
   * honoured, and failed reads (429, 5xx, connection) are retried until `timeout`, which rejects
   * with WaitTimeoutError.
   */
  async waitFor(task: string | { id: string }, options: WaitOptions = {}): Promise<Task> {
    const id = typeof task === "string" ? task : task.id;
    const { signal, onUpdate } = options;
    const timeout = options.timeout ?? DEFAULT_WAIT_TIMEOUT_MS;
    const cadence = { ...DEFAULT_POLL_INTERVAL, ...this.pollInterval, ...options.pollInterval };
    const deadline = Date.now() + timeout;
    let delay = cadence.first;
    let next = cadence.min;
    let last: Task | undefined;
    // The first check goes at once: a server that holds it answers when the task changes.
    let held = true;
    let polled = false;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new WaitTimeoutError(id, timeout, last);
      if (!held) await sleep(Math.min(delay, remaining), signal);
      held = false;
      try {
        const holdSeconds = Math.min(MAX_HOLD_SECONDS, Math.floor((deadline - Date.now()) / 1000));
        const asked = Date.now();
        const answer = await this.retrieveHeld(id, holdSeconds, {
          ...(signal ? { signal } : {}),
          timeout: holdSeconds * 1000 + Math.max(1000, Math.min(this.core.opts.timeout, deadline - Date.now())),
        });
        last = answer.task;
        // Asking again at once is right only after a real hold: an answer that came back early
        // without a final state (a server shutting down, or one that claims holds it does not
        // make) is followed by the polling cadence, never by a tight loop.
        held = answer.held && Date.now() - asked >= (holdSeconds * 1000) / 2;
      } catch (error) {
        if (signal?.aborted || !transient(error)) throw error;
        await options.onRetry?.(error);
        const retryAfter = error instanceof RateLimitedError ? (error.retryAfter ?? 0) * 1000 : 0;
        delay = Math.max(next, retryAfter);
        // Back off while the reads fail too, so a server that is down is not hammered until `timeout`.
        next = Math.min(next * BACKOFF, cadence.max);
        continue;
      }
      await onUpdate?.(last);
      if (isTerminal(last)) return last;
      // A held answer is followed by the next held check at once; the polling cadence starts with
      // the first answer that was not held (the next check `first` after it).
      if (held) continue;
      if (polled) {
        delay = next;
        next = Math.min(next * BACKOFF, cadence.max);
      }
      polled = true;
    }
  }

  /** GET with `Prefer: wait=<seconds>` (none when 0); `held` when the server says it honoured it. */
  private async retrieveHeld(
    id: string,
    seconds: number,
    options: RequestOptions,
  ): Promise<{ task: Task; held: boolean }> {
    const { data, response } = await this.core.request<Task>({
      method: "GET",
      path: `/api/v1/generations/${encodeURIComponent(id)}`,
      ...(seconds > 0 ? { headers: { prefer: `wait=${seconds}` } } : {}),
      retry: "idempotent",
      options,
    });
    return { task: data, held: seconds > 0 && response.headers.has("preference-applied") };
  }

  /** create() then waitFor(): resolves with the finished task (succeeded or failed). */
  async createAndWait<const M extends string>(
    body: GenerationCreateParams<M> & { model: M },
    options: CreateAndWaitOptions = {},
  ): Promise<Task> {
    const { onUpdate, onRetry, pollInterval, timeout, signal, ...createOptions } = options;
    const task = await this.create(body, { ...createOptions, ...(signal ? { signal } : {}) });
    await onUpdate?.(task);
    if (isTerminal(task)) return task;
    return this.waitFor(task, {
      ...(signal ? { signal } : {}),
      ...(onUpdate ? { onUpdate } : {}),
      ...(onRetry ? { onRetry } : {}),
      ...(pollInterval ? { pollInterval } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
    });
  }
}
