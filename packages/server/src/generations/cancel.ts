/**
 * Cancelling a generation (POST /api/v1/generations/{id}/cancel). What a cancel can do depends
 * on where the task is:
 *   queued, no submit in flight  -> failed with reason `canceled` and refunded, at once
 *   queued, submit in flight     -> wait (briefly) for the submit to settle, then decide again
 *   processing                   -> ask the provider to cancel the upstream task; when it says
 *                                   it will not run it, failed as `canceled` and refunded
 *   succeeded / failed, or an upstream that cannot stop it -> 409 not_cancelable, nothing changes
 *
 * A cancel and a worker's submit of the same task never both win: the submit marks the task
 * (submit_state.uncertain) in its claim transaction before it calls a provider, and calls none
 * when that write finds the task no longer queued; the cancel's UPDATE ends only a queued task
 * without that mark (transitions.cancelTask). Whichever transaction commits first decides.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Task } from "@framegate/contract";
import type { Logger } from "pino";
import { ApiError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import type { ProviderRouter } from "../providers/router.js";
import type { Queue } from "../queue/queue.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Db } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { type FairShare, wasRunning } from "./fair-share.js";
import { serializeTask } from "./serialize.js";
import { type CancelGuard, cancelTask, type OnTerminal } from "./transitions.js";
import { providerTaskOf } from "./worker.js";

/**
 * How long a cancel waits for a submit in flight to settle. A submit is one upstream request
 * (seconds at most); one whose outcome is unknown is checked again by its job within seconds too.
 */
export const SUBMIT_SETTLE_MS = 3000;
const SETTLE_POLL_MS = 50;

export interface CancelDeps {
  db: Db;
  clock: Clock;
  signer: UrlSigner;
  queue: Queue;
  router: ProviderRouter;
  fairShare: FairShare;
  log: Logger;
  /** Records the task's webhook event in the terminal transaction, as the worker does. */
  onTerminal?: OnTerminal;
  /** Tests may shorten the wait for a submit in flight. */
  submitSettleMs?: number;
  /** Where cancelled tasks (and their refunds) are counted. */
  metrics?: Metrics;
}

const notCancelable = (message: string, retryAfterSeconds?: number) =>
  new ApiError(
    "not_cancelable",
    message,
    retryAfterSeconds !== undefined ? { headers: { "Retry-After": String(retryAfterSeconds) } } : {},
  );

function alreadyFinished(status: "succeeded" | "failed"): ApiError {
  return notCancelable(`This generation already ${status}; only a queued or processing generation can be cancelled.`);
}

export class CancelService {
  private readonly onTerminal: OnTerminal;

  constructor(private readonly deps: CancelDeps) {
    // As in the worker: a task that held a slot hands it on to the next task in fair order.
    this.onTerminal = async (trx, row) => {
      await deps.onTerminal?.(trx, row);
      if (wasRunning(row)) await deps.fairShare.wakeNext(trx, { account: row.account_id });
    };
  }

  /** Cancels the account's task and returns it as GET would now; throws not_found / not_cancelable. */
  async cancel(accountId: string, taskId: string): Promise<Task> {
    const settleBy = Date.now() + (this.deps.submitSettleMs ?? SUBMIT_SETTLE_MS);
    for (;;) {
      const row = await this.load(accountId, taskId);
      if (!row) throw new ApiError("not_found", "Generation not found.");
      if (row.status === "succeeded" || row.status === "failed") throw alreadyFinished(row.status);
      if (row.status === "processing") return this.cancelUpstream(row);
      if (!wasRunning(row)) {
        // Nothing upstream holds it: end it here. When the UPDATE finds it changed (a submit
        // claimed it, or it failed meanwhile), read it again.
        if (await this.end(row, { status: "queued" }, "cancelled before any upstream accepted it")) {
          return this.answer(accountId, taskId);
        }
        continue;
      }
      // A submit is in flight: its upstream may be accepting the task right now. Wait for it to
      // land (processing: cancel there) or to give the task back (queued again: cancel here).
      if (Date.now() >= settleBy) {
        throw notCancelable(
          "This generation is being submitted to an upstream right now; try the cancel again in a few seconds.",
          2,
        );
      }
      await sleep(SETTLE_POLL_MS);
    }
  }

  private async cancelUpstream(row: TasksTable): Promise<Task> {
    const { router, log } = this.deps;
    const provider = row.provider ? router.provider(row.provider) : undefined;
    const upstreamId = row.upstream_id;
    // Messages never name the upstream: task-facing text does not reveal which provider ran it.
    if (!provider?.cancel || !upstreamId) {
      throw notCancelable("This generation is already running upstream, where it cannot be cancelled.");
    }
    let outcome: Awaited<ReturnType<NonNullable<typeof provider.cancel>>>;
    try {
      // Described, not signed: no upstream fetches anything to cancel.
      outcome = await provider.cancel(
        upstreamId,
        providerTaskOf(row, (r) => ({ kind: r.kind, mimeType: r.mimeType })),
      );
    } catch (error) {
      log.warn({ taskId: row.id, provider: provider.name, err: error }, "could not ask the upstream to cancel");
      throw new ApiError(
        "service_unavailable",
        "The upstream could not be reached to cancel this generation; nothing changed. Try again.",
        { headers: { "Retry-After": "5" } },
      );
    }
    if (outcome === "not_cancelable") {
      throw notCancelable("This generation is already being rendered upstream and can no longer be cancelled.");
    }
    const guard: CancelGuard = { status: "processing", upstreamId };
    if (await this.end(row, guard, `cancelled at ${provider.name} (upstream id ${upstreamId})`)) {
      // Best effort, as after any finish: the simulator drops its files, others have nothing.
      await provider.release?.(upstreamId).catch((error: unknown) => {
        log.warn({ taskId: row.id, err: error }, "could not release upstream leftovers");
      });
      return this.answer(row.account_id, row.id);
    }
    // Something else ended it between our read and our UPDATE: a poll that saw the cancellation
    // upstream (then it is cancelled all the same), or a finish that came first.
    const now = await this.load(row.account_id, row.id);
    if (now?.status === "failed" && now.error_reason === "canceled") return this.serialize(now);
    if (now?.status === "succeeded" || now?.status === "failed") throw alreadyFinished(now.status);
    throw notCancelable("This generation changed while it was being cancelled; try again.", 1);
  }

  private async end(row: TasksTable, guard: CancelGuard, detail: string): Promise<boolean> {
    const { db, clock, queue, log } = this.deps;
    const changed = await cancelTask(
      db,
      clock,
      { taskId: row.id, accountId: row.account_id, guard, detail },
      this.onTerminal,
      this.deps.metrics && ((task) => this.deps.metrics?.recordTaskEnded(task)),
    );
    if (changed) {
      // The terminal transaction queued the event's deliveries (and maybe woke a waiting task).
      queue.notify();
      log.info({ taskId: row.id, was: row.status }, "task cancelled and refunded");
    }
    return changed;
  }

  private load(accountId: string, taskId: string): Promise<TasksTable | undefined> {
    return this.deps.db
      .selectFrom("tasks")
      .selectAll()
      .where("id", "=", taskId)
      .where("account_id", "=", accountId)
      .executeTakeFirst();
  }

  private async answer(accountId: string, taskId: string): Promise<Task> {
    const row = await this.load(accountId, taskId);
    if (!row) throw new ApiError("not_found", "Generation not found.");
    return this.serialize(row);
  }

  private serialize(row: TasksTable): Task {
    return serializeTask(row, this.deps.signer, this.deps.clock.now());
  }
}
