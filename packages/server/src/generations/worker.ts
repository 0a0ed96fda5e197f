/**
 * The worker's side of a task: three short, idempotent jobs.
 *   submit   -> pick a provider (order, circuit breakers, concurrency caps), call it once, store
 *               its id (queued -> processing), schedule a poll (or, when the upstream says the
 *               result is ready now, poll at once in this job)
 *   poll     -> ask the provider; reschedule with backoff, or schedule finalize
 *   finalize -> mirror the media into our storage, probe it, commit succeeded/failed with credits
 * Every job re-reads the task first, so running one twice (at-least-once delivery) is harmless.
 * Failover happens only before an upstream accepted the task, and never for content_rejected.
 */
import type { Logger } from "pino";
import type { GuardOptions } from "../net/url-guard.js";
import type { Metrics } from "../observability/metrics.js";
import {
  type FailureReason,
  type Provider,
  ProviderError,
  type ProviderMedia,
  type ProviderReference,
  type ProviderTask,
} from "../providers/provider.js";
import type { ProviderRouter } from "../providers/router.js";
import type { JobHandler, JobResult, Queue } from "../queue/queue.js";
import type { LocalObjectCache } from "../storage/local-cache.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Storage } from "../storage/storage.js";
import type { Db, Executor } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { PreparedQuery } from "../store/prepared.js";
import type { TasksTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import { type FairShare, wasRunning } from "./fair-share.js";
import { publishTaskChange } from "./live/changes.js";
import { MediaRejected, mirrorResult } from "./mirror.js";
import type { PosterMaker } from "./poster.js";
import type { StoredReference } from "./references.js";
import { SUBMIT_JOB } from "./service.js";
import { failTask, type OnTerminal, succeedTask } from "./transitions.js";

export const POLL_JOB = "generation.poll";
export const FINALIZE_JOB = "generation.finalize";

type FinalizePayload =
  | { taskId: string; outcome: "succeeded"; media: ProviderMedia[]; details?: Record<string, string> }
  | { taskId: string; outcome: "failed"; reason: FailureReason; message: string };

/** Per-task memory of submit attempts (tasks.submit_state). */
interface SubmitState {
  /** Providers that refused this task for good (it may go to the next one). */
  refused: string[];
  /** A provider a submit was sent to without a clear answer: it may hold the task. */
  uncertain?: string;
  lastError?: string;
  lastReason?: FailureReason;
  /** Why the task last waited without a submit (kept so a deadline failure can say so). */
  waitingFor?: WaitReason;
}

/** Whether the stored state of a task being submitted holds a slot (a submit in flight). */
interface SlotHolding {
  holdsSlot: boolean;
  accountId: string;
}

/** What a queued task with no submit in flight is waiting for. */
type WaitReason = "account_limit" | "fair_share" | "provider_capacity";

export interface GenerationWorkerDeps {
  db: Db;
  clock: Clock;
  queue: Queue;
  storage: Storage;
  /** Local copies of image references when the storage has no local paths (S3). */
  localFiles?: LocalObjectCache;
  signer: UrlSigner;
  log: Logger;
  router: ProviderRouter;
  taskDeadlineMs: number;
  resultRetentionMs: number;
  mirror: { guard: GuardOptions; maxBytes: number; timeoutMs: number; posters?: PosterMaker };
  /** Called inside the transaction that makes a task terminal (records webhook events). */
  onTerminal?: OnTerminal;
  /** Called inside the transaction that makes a task `processing` (records the opt-in webhook event). */
  onProcessing?: (trx: Executor, task: { taskId: string; accountId: string }) => Promise<void>;
  /** Delay before the first poll and the cap of the poll backoff. */
  pollIntervalMs?: { first: number; max: number };
  /** Per-account caps and fair hand-out of provider slots. */
  fairShare: FairShare;
  /** Jitter source for waiting tasks' retries (tests may fix it). */
  random?: () => number;
  /** Where task outcomes, queue waits and result downloads are counted. */
  metrics?: Metrics;
}

/** Retry after an open circuit or a failed check for an earlier submit: both clear up on their own. */
const RECHECK_RETRY_MS = 2000;
/**
 * Retry of a task waiting for a slot (account cap, fair share, provider cap). Such tasks are woken
 * when a slot frees up (a wake that comes while the task's own submit job runs makes that job's
 * retry due at once: Queue.runNow), so this is only a backstop; the jitter keeps hundreds of
 * waiting tasks from retrying in step.
 */
const WAIT_RETRY_MS = { min: 10_000, max: 20_000 };

export class GenerationWorker {
  private readonly onTerminal: OnTerminal | undefined;
  /** After a terminal transition committed: the task's outcome, phases and credits are counted. */
  private readonly terminalCommitted: ((task: TasksTable) => void) | undefined;

  constructor(private readonly deps: GenerationWorkerDeps) {
    // A task that held a slot and ends frees it: hand it out in fair order in the same transaction.
    this.onTerminal = async (trx, row) => {
      await deps.onTerminal?.(trx, row);
      if (wasRunning(row)) await deps.fairShare.wakeNext(trx, { account: row.account_id });
    };
    const metrics = deps.metrics;
    this.terminalCommitted = metrics && ((task) => metrics.recordTaskEnded(task));
  }

  handlers(): Record<string, JobHandler> {
    const failOnExhaustion = (stage: string) => async (payload: Record<string, unknown>, error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.log.error({ taskId: payload.taskId, stage, err: error }, "giving up on task");
      await this.fail(String(payload.taskId), "provider_error", `${stage} kept failing: ${message}`);
    };
    return {
      [SUBMIT_JOB]: { run: (p) => this.submit(String(p.taskId)), exhausted: failOnExhaustion("submit") },
      [POLL_JOB]: { run: (p) => this.poll(String(p.taskId)), exhausted: failOnExhaustion("poll") },
      [FINALIZE_JOB]: {
        run: (p) => this.finalize(p as unknown as FinalizePayload),
        exhausted: failOnExhaustion("finalize"),
      },
    };
  }

  private async fail(taskId: string, reason: FailureReason, detail: string, publicMessage?: string): Promise<boolean> {
    const changed = await failTask(
      this.deps.db,
      this.deps.clock,
      { taskId, reason, detail, ...(publicMessage ? { publicMessage } : {}) },
      this.onTerminal,
      this.terminalCommitted,
    );
    // The terminal transaction queued the event's deliveries: wake their runners now it committed.
    if (changed) this.deps.queue.notify();
    return changed;
  }

  private waitRetryMs(): number {
    const { min, max } = WAIT_RETRY_MS;
    return min + Math.round((this.deps.random ?? Math.random)() * (max - min));
  }

  private waitRetry(): JobResult {
    return { retryAt: addMs(this.deps.clock.now(), this.waitRetryMs()) };
  }

  private async loadTask(taskId: string): Promise<TasksTable | undefined> {
    return taskById.first(this.deps.db, taskId);
  }

  private providerTask(task: TasksTable): ProviderTask {
    return providerTaskOf(task, (r) => this.providerReference(r));
  }

  /** Where a provider can read a reference: our stored copy, by local path and by signed URL. */
  private providerReference(ref: StoredReference): ProviderReference {
    const localPath = this.deps.storage.localPath(ref.storageKey);
    // Upstreams fetch it while the task runs: sign for at least a day even if the file expires sooner.
    const expiresAt = new Date(Math.max(Date.parse(ref.expiresAt), this.deps.clock.now().getTime() + 86_400_000));
    return {
      kind: ref.kind,
      mimeType: ref.mimeType,
      ...(localPath ? { localPath } : {}),
      url: this.deps.signer.signMediaUrl(ref.storageKey, expiresAt),
    };
  }

  /**
   * The task for submit: image references also get a local path when the storage has none,
   * since the simulator renders from the file and Kling converts WEBP with ffmpeg.
   */
  private async providerTaskWithLocalFiles(task: TasksTable): Promise<ProviderTask> {
    const providerTask = this.providerTask(task);
    const { localFiles } = this.deps;
    if (!localFiles) return providerTask;
    const stored = JSON.parse(task.references_json) as StoredReference[];
    const references = await Promise.all(
      providerTask.references.map(async (ref, i) => {
        const key = stored[i]?.storageKey;
        if (ref.localPath || ref.kind !== "image" || !key) return ref;
        return { ...ref, localPath: await localFiles.localPath(key) };
      }),
    );
    return { ...providerTask, references };
  }

  private pastDeadline(task: TasksTable): boolean {
    return this.deps.clock.now().getTime() - Date.parse(task.created_at) > this.deps.taskDeadlineMs;
  }

  /**
   * Stores the task's submit state. With `releasedBy` (the task's account), the save gives back
   * a claim (`uncertain` held before, not now): the slot goes to the next task in fair order, in
   * the same transaction.
   */
  private async saveSubmitState(
    taskId: string,
    state: SubmitState,
    db: Executor = this.deps.db,
    releasedBy?: string,
  ): Promise<boolean> {
    const save = async (trx: Executor) => {
      const saved = await saveSubmitStateQuery.execute(trx, JSON.stringify(state), taskId);
      if (releasedBy !== undefined && !state.uncertain) {
        await this.deps.fairShare.wakeNext(trx, { account: releasedBy, exceptTask: taskId });
      }
      return saved.length === 1;
    };
    if (releasedBy === undefined || db !== this.deps.db) return save(db);
    return writeTransaction(this.deps.db, save);
  }

  async submit(taskId: string): Promise<JobResult> {
    const { router, clock, log, fairShare } = this.deps;
    const task = await this.loadTask(taskId);
    if (task?.status === "processing") {
      // Submitted before a crash: make sure its poll exists.
      await this.schedulePoll(taskId, 0);
      return;
    }
    if (task?.status !== "queued") return;
    const state: SubmitState = task.submit_state ? (JSON.parse(task.submit_state) as SubmitState) : { refused: [] };
    if (this.pastDeadline(task)) {
      await this.failPastDeadline(taskId, state);
      return;
    }
    // Whether the stored state holds a slot (a submit in flight): giving it back wakes another task.
    const stored: SlotHolding = { holdsSlot: state.uncertain !== undefined, accountId: task.account_id };
    // Built only when a provider is about to be called: a waiting task may retry many times.
    let providerTask: ProviderTask | undefined;
    const getProviderTask = async () => {
      providerTask ??= await this.providerTaskWithLocalFiles(task);
      return providerTask;
    };

    // A submit whose outcome is unknown (crash, timeout) may have been accepted: look before
    // sending the task anywhere, so it is never running on two upstreams.
    if (state.uncertain) {
      const provider = router.provider(state.uncertain);
      if (provider?.findSubmitted) {
        try {
          const found = await provider.findSubmitted(await getProviderTask());
          if (found) {
            // The submit that looked like a failure was in fact accepted: the provider is healthy.
            router.breaker(provider.name).recordSuccess();
            return this.accepted(task, provider, found.upstreamId);
          }
        } catch (error) {
          log.warn({ taskId, provider: provider.name, err: error }, "could not check for an earlier submit");
          return { retryAt: addMs(clock.now(), RECHECK_RETRY_MS) };
        }
        state.uncertain = undefined;
      }
    }

    // Without a way to check, an uncertain provider is retried itself rather than bypassed.
    const candidates = state.uncertain
      ? [state.uncertain]
      : router.chain.filter((name) => !state.refused.includes(name));
    if (candidates.length === 0) {
      await this.fail(
        taskId,
        state.lastReason ?? "provider_error",
        `every provider refused the task: ${state.lastError}`,
      );
      return;
    }

    let waitMs: number | undefined;
    const waitFor = (ms: number) => {
      waitMs = Math.min(waitMs ?? Number.POSITIVE_INFINITY, ms);
    };
    for (const name of candidates) {
      const provider = router.provider(name);
      if (!provider) continue;
      // One transaction decides and claims: the account's cap and fair share, then the
      // provider's cap. `uncertain` is written before the call, so a concurrent submit counts
      // this one, and if we die while it is in flight, the next run checks first.
      const decision = await writeTransaction(this.deps.db, async (trx) => {
        // A task retrying its own in-flight submit already holds its slot.
        if (state.uncertain !== name) {
          const fair = await fairShare.decide(trx, { taskId, accountId: task.account_id, provider: name });
          if (fair.kind !== "go") {
            await this.noteWaiting(trx, taskId, state, stored, fair.kind);
            return fair;
          }
        }
        const answer = await router.availability(name, { taskId, db: trx });
        if (answer === "available") {
          state.waitingFor = undefined;
          // Not queued any more (cancelled since it was read): claim nothing and call no provider.
          // A cancel, in turn, ends only a queued task without `uncertain` (transitions.cancelTask).
          if (!(await this.saveSubmitState(taskId, { ...state, uncertain: name }, trx))) return "gone";
          stored.holdsSlot = true;
        } else if (answer === "saturated") {
          await this.noteWaiting(trx, taskId, state, stored, "provider_capacity");
        }
        return answer;
      });
      if (decision === "gone") {
        // Frees the half-open trial slot availability() may have taken for this call.
        router.breaker(name).recordNeutral();
        return;
      }
      if (decision !== "available") {
        if (typeof decision === "object" && decision.kind === "account_limit") {
          // No provider is called and nothing changes: a finishing task of the account wakes this one.
          log.debug({ taskId, running: decision.running, cap: decision.cap }, "account at its running-task limit");
          return this.waitRetry();
        }
        if (decision === "open_circuit") waitFor(RECHECK_RETRY_MS);
        else waitFor(this.waitRetryMs());
        continue;
      }
      try {
        const { upstreamId, readyInMs } = await provider.submit(await getProviderTask());
        router.breaker(name).recordSuccess();
        return this.accepted(task, provider, upstreamId, readyInMs);
      } catch (error) {
        const failure =
          error instanceof ProviderError
            ? error
            : new ProviderError(error instanceof Error ? error.message : String(error), {
                retryable: true,
                maybeAccepted: true,
              });
        state.lastError = `${name}: ${failure.message}`.slice(0, 500);
        if (failure.reason === "content_rejected") {
          // The same input would be rejected anywhere: no failover. Says nothing about the
          // provider's health, but frees a half-open trial slot this call may hold.
          router.breaker(name).recordNeutral();
          await this.fail(taskId, "content_rejected", state.lastError);
          return;
        }
        if (failure.saturated) {
          router.breaker(name).recordNeutral();
          await this.releaseSlot(taskId, { ...state, uncertain: undefined }, stored);
          waitFor(Math.max(1000, failure.retryAfterMs ?? 1000));
          continue;
        }
        if (failure.retryable) {
          router.breaker(name).recordFailure();
          if (failure.maybeAccepted) {
            // Keep `uncertain`: the next run checks (or retries) this provider before any other.
            await this.saveSubmitState(taskId, { ...state, uncertain: name });
            log.warn(
              { taskId, provider: name, err: failure.message },
              "submit outcome unknown; will check before retrying",
            );
            return { retryAt: addMs(clock.now(), Math.max(1000, failure.retryAfterMs ?? 1000)) };
          }
          await this.releaseSlot(taskId, { ...state, uncertain: undefined }, stored);
          waitFor(Math.max(1000, failure.retryAfterMs ?? 1000));
          continue; // the next provider may take it now
        }
        // Final for this provider (bad credentials, no balance, invalid parameters…): fail over.
        router.breaker(name).recordNeutral();
        state.refused.push(name);
        state.uncertain = undefined;
        state.lastReason = failure.reason;
        await this.releaseSlot(taskId, state, stored);
        log.warn({ taskId, provider: name, err: failure.message }, "provider refused the task");
      }
    }
    if (waitMs !== undefined) {
      // Waiting for a slot, open circuits or passing failures: the task stays queued and tries again.
      return { retryAt: addMs(clock.now(), waitMs) };
    }
    await this.fail(
      taskId,
      state.lastReason ?? "provider_error",
      `every provider refused the task: ${state.lastError}`,
    );
    return;
  }

  /** Gives back the slot a failed submit held (if the stored state held one) and saves `next`. */
  private async releaseSlot(taskId: string, next: SubmitState, stored: SlotHolding): Promise<void> {
    await this.saveSubmitState(taskId, next, this.deps.db, stored.holdsSlot ? stored.accountId : undefined);
    stored.holdsSlot = next.uncertain !== undefined;
  }

  /**
   * Records why the task waits, only when that changed or the stored state still holds a slot
   * it no longer uses (an earlier submit was found not accepted): most retries write nothing.
   */
  private async noteWaiting(
    trx: Executor,
    taskId: string,
    state: SubmitState,
    stored: SlotHolding,
    reason: WaitReason,
  ): Promise<void> {
    const releases = stored.holdsSlot && state.uncertain === undefined;
    if (state.waitingFor === reason && !releases) return;
    state.waitingFor = reason;
    await this.saveSubmitState(taskId, state, trx, releases ? stored.accountId : undefined);
    stored.holdsSlot = state.uncertain !== undefined;
  }

  /** TASK_DEADLINE passed while queued: the failure says what the task was waiting for. */
  private async failPastDeadline(taskId: string, state: SubmitState): Promise<void> {
    switch (state.waitingFor) {
      case "account_limit":
        await this.fail(
          taskId,
          "timeout",
          "waited for the account's running-task limit (ACCOUNT_MAX_RUNNING_TASKS or its admin override) until the deadline",
          "The generation timed out waiting for a free slot under the account's limit on running tasks.",
        );
        return;
      case "fair_share":
      case "provider_capacity":
        await this.fail(taskId, "timeout", "waited for free provider capacity until the deadline");
        return;
      default:
        await this.fail(taskId, "timeout", "no provider accepted the task before its deadline");
    }
  }

  private async accepted(
    task: TasksTable,
    provider: Provider,
    upstreamId: string,
    readyInMs?: number,
  ): Promise<JobResult> {
    const { db, clock, queue } = this.deps;
    const taskId = task.id;
    const first = this.deps.pollIntervalMs?.first ?? 500;
    // An upstream that says when its result is ready is asked then: polling earlier finds nothing,
    // and waiting the full first delay for a result that is there only adds latency.
    const pollDelay = readyInMs === undefined ? first : Math.min(first, Math.max(0, readyInMs));
    // Ready now: the first poll runs in this job, after the commit, instead of as a job of its own
    // (no job to add, claim and delete). Until this job completes, its own row stands in for the
    // poll: a crash before then runs this submit again, which finds the task processing and
    // schedules the poll (submit's first lines).
    const pollInline = pollDelay === 0;
    // The task as it became `processing`; undefined when it was no longer queued.
    const row = await writeTransaction(db, async (trx) => {
      const updated = await startProcessing.first(trx, taskId, provider.name, upstreamId, clock.now().toISOString());
      if (!updated) return undefined;
      if (!pollInline) await queue.enqueue(trx, this.pollJob(taskId, pollDelay));
      await this.deps.onProcessing?.(trx, { taskId, accountId: updated.account_id });
      return updated;
    });
    queue.notify();
    if (!row) return;
    // Committed: live followers (SSE, Prefer: wait) hear queued -> processing.
    publishTaskChange(db, taskId);
    const waited = (Date.parse(row.started_at ?? row.updated_at) - Date.parse(task.created_at)) / 1000;
    this.deps.metrics?.recordTaskStarted(task.model, provider.name, waited);
    if (!pollInline) return;
    const next = await this.poll(taskId, row);
    // Not ready after all: from here on the poll is a job of its own.
    if (next?.retryAt) {
      await this.schedulePoll(taskId, Math.max(0, next.retryAt.getTime() - clock.now().getTime()));
      queue.notify();
    }
    return;
  }

  /** One poll of the task's upstream; `known`: the task as just committed (no need to read it). */
  async poll(taskId: string, known?: TasksTable): Promise<JobResult> {
    const { clock, router } = this.deps;
    const task = known ?? (await this.loadTask(taskId));
    if (task?.status !== "processing" || !task.upstream_id || !task.provider) return;
    const provider = router.provider(task.provider);
    if (!provider) throw new Error(`provider ${task.provider} is not configured in this process`);
    if (this.pastDeadline(task)) {
      // The upstream id stays on the task, so an operator can still recover a late result.
      await this.finishPoll(
        {
          taskId,
          outcome: "failed",
          reason: "timeout",
          message: `not finished by ${provider.name} before the deadline (upstream id ${task.upstream_id})`,
        },
        task,
      );
      return;
    }
    const startedAt = new Date(task.started_at ?? task.created_at);
    const max = this.deps.pollIntervalMs?.max ?? 15_000;
    const elapsed = clock.now().getTime() - startedAt.getTime();
    // Poll often at first, then back off towards `max`.
    const backoff = Math.min(max, Math.max(200, elapsed / 10));
    let result: Awaited<ReturnType<Provider["poll"]>>;
    try {
      result = await provider.poll(task.upstream_id, this.providerTask(task));
    } catch (error) {
      if (error instanceof ProviderError && !error.retryable) {
        await this.finishPoll({ taskId, outcome: "failed", reason: error.reason, message: error.message }, task);
        return;
      }
      // A passing upstream problem: keep polling until the deadline decides.
      this.deps.log.warn({ taskId, provider: provider.name, err: error }, "poll failed; will retry");
      const hint = error instanceof ProviderError ? (error.retryAfterMs ?? 0) : 0;
      return { retryAt: addMs(clock.now(), Math.max(1000, hint, backoff)) };
    }
    if (result.state === "pending") {
      return { retryAt: addMs(clock.now(), Math.min(max, result.retryAfterMs ?? backoff)) };
    }
    if (result.state === "failed") {
      await this.finishPoll({ taskId, outcome: "failed", reason: result.reason, message: result.message }, task);
    } else {
      await this.finishPoll(
        {
          taskId,
          outcome: "succeeded",
          media: result.media,
          ...(result.details ? { details: result.details } : {}),
        },
        task,
      );
    }
    return;
  }

  /** `known`: the task as the poll that decided this just read it (no need to read it again). */
  async finalize(payload: FinalizePayload, known?: TasksTable): Promise<JobResult> {
    const { db, clock, log } = this.deps;
    const task = known ?? (await this.loadTask(payload.taskId));
    if (!task) return;
    if (task.status === "succeeded" || task.status === "failed") {
      // A rerun after a crash between the commit and the clean-up: finish the clean-up.
      await this.releaseUpstream(task);
      return;
    }
    if (payload.outcome === "failed") {
      const changed = await this.fail(task.id, payload.reason, payload.message);
      if (changed)
        log.info({ taskId: task.id, reason: payload.reason, detail: payload.message }, "task failed and was refunded");
    } else {
      let result: Awaited<ReturnType<typeof mirrorResult>>;
      const downloadStarted = performance.now();
      const recordDownload = (outcome: "ok" | "retryable_error" | "final_error") =>
        this.deps.metrics?.recordProviderCall(
          task.provider ?? "none",
          "download",
          outcome,
          (performance.now() - downloadStarted) / 1000,
        );
      try {
        result = await mirrorResult(task.id, payload.media, {
          storage: this.deps.storage,
          clock,
          retentionMs: this.deps.resultRetentionMs,
          ...this.deps.mirror,
        });
        recordDownload("ok");
      } catch (error) {
        recordDownload(error instanceof MediaRejected ? "final_error" : "retryable_error");
        if (!(error instanceof MediaRejected)) throw error;
        await this.fail(task.id, "provider_error", error.message);
        return;
      }
      const changed = await succeedTask(
        db,
        clock,
        {
          taskId: task.id,
          result,
          ...(payload.details ? { upstreamDetails: JSON.stringify(payload.details) } : {}),
        },
        this.onTerminal,
        this.terminalCommitted,
      );
      if (changed) {
        // As in fail(): the event's deliveries were queued in that transaction.
        this.deps.queue.notify();
        log.info({ taskId: task.id, provider: task.provider }, "task succeeded");
      }
    }
    await this.releaseUpstream(task);
    return;
  }

  private async releaseUpstream(task: TasksTable): Promise<void> {
    const provider = task.provider ? this.deps.router.provider(task.provider) : undefined;
    if (!provider?.release || !task.upstream_id) return;
    try {
      await provider.release(task.upstream_id);
    } catch (error) {
      this.deps.log.warn({ taskId: task.id, err: error }, "could not release upstream leftovers");
    }
  }

  private pollJob(taskId: string, delayMs: number) {
    return {
      kind: POLL_JOB,
      payload: { taskId },
      key: `poll:${taskId}`,
      runAt: addMs(this.deps.clock.now(), delayMs),
      maxAttempts: 20,
    };
  }

  private async schedulePoll(taskId: string, delayMs: number): Promise<void> {
    await this.deps.queue.enqueue(this.deps.db, this.pollJob(taskId, delayMs));
  }

  /**
   * The poll's answer is final: finalize at once, in this poll's job, instead of adding a job for
   * it (one job fewer per task, and no wait for a runner). When that fails (a media download that
   * errs), the finalize becomes a job of its own, retried with backoff, and this poll is done. A
   * crash before the finalize commits leaves this poll's job to run again: it polls and finalizes
   * again, and finalizing twice is safe.
   */
  private async finishPoll(payload: FinalizePayload, task: TasksTable): Promise<void> {
    try {
      await this.finalize(payload, task);
    } catch (error) {
      this.deps.log.warn({ taskId: payload.taskId, err: error }, "finalize failed; it will be retried as a job");
      await this.scheduleFinalize(payload);
    }
  }

  private async scheduleFinalize(payload: FinalizePayload): Promise<void> {
    await this.deps.queue.enqueue(this.deps.db, {
      kind: FINALIZE_JOB,
      payload: payload as unknown as Record<string, unknown>,
      key: `finalize:${payload.taskId}`,
      maxAttempts: 10,
    });
    this.deps.queue.notify();
  }
}

/** What a provider is given about a stored task; `reference` says how each reference is described. */
export function providerTaskOf(task: TasksTable, reference: (ref: StoredReference) => ProviderReference): ProviderTask {
  return {
    taskId: task.id,
    model: task.model,
    prompt: task.prompt,
    params: JSON.parse(task.params) as Record<string, string>,
    references: (JSON.parse(task.references_json) as StoredReference[]).map(reference),
  };
}

// The worker's statements on every task, compiled once (store/prepared.ts).

const taskById = new PreparedQuery((db, id: string) => db.selectFrom("tasks").selectAll().where("id", "=", id), 1);

/** Saves a queued task's submit state; returns the row's id when it was still queued. */
const saveSubmitStateQuery = new PreparedQuery(
  (db, state: string, id: string) =>
    db
      .updateTable("tasks")
      .set({ submit_state: state })
      .where("id", "=", id)
      .where("status", "=", "queued")
      .returning("id"),
  2,
);

/** queued -> processing on the upstream that accepted it. Arguments: task, provider, upstream id, now. */
const startProcessing = new PreparedQuery(
  (db, id: string, provider: string, upstreamId: string, now: string) =>
    db
      .updateTable("tasks")
      .set({
        status: "processing",
        provider,
        upstream_id: upstreamId,
        submit_state: null,
        started_at: now,
        updated_at: now,
      })
      .where("id", "=", id)
      .where("status", "=", "queued")
      .returningAll(),
  4,
);
