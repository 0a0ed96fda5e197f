/**
 * The small interface every upstream adapter implements (simulated, kling, fal).
 * The worker drives a task through submit -> poll -> finalize; adapters only translate.
 */

/**
 * Why a task failed, as shown in the public `error.reason`. `canceled`: the account cancelled it
 * (POST /api/v1/generations/{id}/cancel), or the upstream reports it cancelled.
 */
export type FailureReason = "provider_error" | "content_rejected" | "timeout" | "invalid_input" | "canceled";

/** A reference file resolved to our own storage before the task was created. */
export interface ProviderReference {
  kind: "image" | "video" | "audio";
  mimeType: string;
  /** Absolute path of our stored copy (local storage), when available. */
  localPath?: string;
  /** A signed URL of our stored copy that an upstream can fetch. */
  url?: string;
}

/** What a provider needs to start one generation. */
export interface ProviderTask {
  taskId: string;
  model: string;
  prompt: string;
  /** Normalized params (select values as strings), e.g. { duration: "5", sound: "false", aspect_ratio: "1:1" }. */
  params: Record<string, string>;
  references: ProviderReference[];
}

export interface SubmitResult {
  /**
   * The upstream's id for the task, in whatever form the adapter needs to poll it later
   * (e.g. "image2video:867283741759111202"); stored before anything else happens.
   */
  upstreamId: string;
  /**
   * The upstream knows its result is ready in this many ms (0: now): the first poll comes then
   * rather than after POLL_FIRST_DELAY_MS, though never later than that.
   */
  readyInMs?: number;
}

/** Where the finished media can be picked up from. */
export type ProviderMedia =
  | { kind: "file"; path: string; mimeType: string }
  /** An object in our own storage (the simulator's shared results, readable by every worker). */
  | { kind: "storage"; key: string; mimeType: string }
  | { kind: "url"; url: string; mimeType: string };

export type PollResult =
  | { state: "pending" /** hint for the next poll */; retryAfterMs?: number }
  | {
      state: "succeeded";
      media: ProviderMedia[];
      /** Operator-visible facts about the upstream run (e.g. Kling's final_unit_deduction). */
      details?: Record<string, string>;
    }
  | { state: "failed"; reason: FailureReason; message: string };

/**
 * Thrown by adapters. `retryable` errors leave the task where it is and the job is retried
 * with backoff; final errors fail the task (or fail over, before an upstream accepted it).
 */
export class ProviderError extends Error {
  readonly retryable: boolean;
  readonly reason: FailureReason;
  /** The provider is at its concurrency limit (Kling 1303): wait, it is not a fault. */
  readonly saturated: boolean;
  /**
   * A submit that failed in a way that leaves open whether the upstream accepted the task
   * (timeout, connection lost after sending, 5xx): the router must not hand the task to another
   * provider before it has checked (findSubmitted) or retried this one.
   */
  readonly maybeAccepted: boolean;
  /** Seconds the upstream asked us to wait, when it said so. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    opts: {
      retryable: boolean;
      reason?: FailureReason;
      saturated?: boolean;
      maybeAccepted?: boolean;
      retryAfterMs?: number;
    },
  ) {
    super(message);
    this.name = "ProviderError";
    this.retryable = opts.retryable;
    this.reason = opts.reason ?? "provider_error";
    this.saturated = opts.saturated ?? false;
    this.maybeAccepted = opts.maybeAccepted ?? false;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export type CancelOutcome = "canceled" | "not_cancelable";

export interface Provider {
  readonly name: string;
  /** Start the task upstream. Must be safe to call again for the same taskId after a crash. */
  submit(task: ProviderTask): Promise<SubmitResult>;
  /** Check an accepted task. */
  poll(upstreamId: string, task: ProviderTask): Promise<PollResult>;
  /**
   * Finds a task this provider may already have accepted for `task.taskId` (a crash or timeout
   * between submit and storing its id), e.g. by Kling's external_task_id. Undefined = not there.
   */
  findSubmitted?(task: ProviderTask): Promise<SubmitResult | undefined>;
  /**
   * Stops an accepted task that has not started producing its result (optional: Kling has no
   * cancel). "canceled": the upstream will not run it (or finish it), so it may be refunded;
   * "not_cancelable": it is running or done upstream and will be billed, so it is left alone.
   * Throws a ProviderError when the upstream could not be asked (then nothing is known).
   */
  cancel?(upstreamId: string, task: ProviderTask): Promise<CancelOutcome>;
  /** Drop upstream-side leftovers once the result is safely stored (optional). */
  release?(upstreamId: string): Promise<void>;
  /** Stop background work (graceful shutdown). */
  close?(): Promise<void>;
}
