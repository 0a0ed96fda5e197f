/**
 * The worker's side of a task: three short, idempotent jobs.
 *   submit   -> call the upstream once, store its id (queued -> processing), schedule a poll
 *   poll     -> ask the upstream; reschedule with backoff, or schedule finalize
 *   finalize -> copy the media into our storage, probe it, commit succeeded/failed with credits
 * Every job re-reads the task first, so running one twice (at-least-once delivery) is harmless.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { probeMp4 } from "../media/mp4-probe.js";
import {
  type FailureReason,
  type Provider,
  ProviderError,
  type ProviderMedia,
  type ProviderReference,
  type ProviderTask,
} from "../providers/provider.js";
import type { JobHandler, Queue } from "../queue/queue.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Storage } from "../storage/storage.js";
import type { Db } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import type { StoredReference } from "./references.js";
import type { StoredResult } from "./serialize.js";
import { SUBMIT_JOB } from "./service.js";
import { failTask, type OnTerminal, succeedTask } from "./transitions.js";

export const POLL_JOB = "generation.poll";
export const FINALIZE_JOB = "generation.finalize";

type FinalizePayload =
  | { taskId: string; outcome: "succeeded"; media: ProviderMedia[] }
  | { taskId: string; outcome: "failed"; reason: FailureReason; message: string };

export interface GenerationWorkerDeps {
  db: Db;
  clock: Clock;
  queue: Queue;
  storage: Storage;
  signer: UrlSigner;
  log: Logger;
  providers: Map<string, Provider>;
  /** Provider names in the order submit tries them. */
  chain: string[];
  taskTimeoutMs: number;
  resultRetentionMs: number;
  /** Called inside the transaction that makes a task terminal (records webhook events). */
  onTerminal?: OnTerminal;
  /** Delay before the first poll and the cap of the poll backoff. */
  pollIntervalMs?: { first: number; max: number };
}

export class GenerationWorker {
  private readonly onTerminal: OnTerminal | undefined;

  constructor(private readonly deps: GenerationWorkerDeps) {
    this.onTerminal = deps.onTerminal;
  }

  handlers(): Record<string, JobHandler> {
    const failOnExhaustion = (stage: string) => async (payload: Record<string, unknown>, error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.log.error({ taskId: payload.taskId, stage, err: error }, "giving up on task");
      await failTask(
        this.deps.db,
        this.deps.clock,
        {
          taskId: String(payload.taskId),
          reason: "provider_error",
          detail: `${stage} kept failing: ${message}`,
        },
        this.onTerminal,
      );
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

  private async loadTask(taskId: string): Promise<TasksTable | undefined> {
    return this.deps.db.selectFrom("tasks").selectAll().where("id", "=", taskId).executeTakeFirst();
  }

  private providerTask(task: TasksTable): ProviderTask {
    return {
      taskId: task.id,
      model: task.model,
      prompt: task.prompt,
      params: JSON.parse(task.params) as Record<string, string>,
      references: (JSON.parse(task.references_json) as StoredReference[]).map((r) => this.providerReference(r)),
    };
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

  async submit(taskId: string): Promise<undefined> {
    const { db, clock, queue } = this.deps;
    const task = await this.loadTask(taskId);
    if (task?.status === "processing") {
      // Submitted before a crash: make sure its poll exists.
      await this.schedulePoll(taskId, 0);
      return;
    }
    if (task?.status !== "queued") return;
    const providerName = this.deps.chain[0];
    const provider = providerName ? this.deps.providers.get(providerName) : undefined;
    if (!provider) throw new Error("no provider configured");
    let upstreamId: string;
    try {
      ({ upstreamId } = await provider.submit(this.providerTask(task)));
    } catch (error) {
      if (error instanceof ProviderError && !error.retryable) {
        await this.scheduleFinalize({ taskId, outcome: "failed", reason: error.reason, message: error.message });
        return;
      }
      throw error;
    }
    await db.transaction().execute(async (trx) => {
      const now = clock.now().toISOString();
      const updated = await trx
        .updateTable("tasks")
        .set({
          status: "processing",
          provider: provider.name,
          upstream_id: upstreamId,
          started_at: now,
          updated_at: now,
        })
        .where("id", "=", taskId)
        .where("status", "=", "queued")
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 1) {
        await queue.enqueue(trx, this.pollJob(taskId, this.deps.pollIntervalMs?.first ?? 500));
      }
    });
    queue.notify();
    return undefined;
  }

  async poll(taskId: string): Promise<undefined | { retryAt: Date }> {
    const { clock } = this.deps;
    const task = await this.loadTask(taskId);
    if (task?.status !== "processing" || !task.upstream_id || !task.provider) return;
    const provider = this.deps.providers.get(task.provider);
    if (!provider) throw new Error(`provider ${task.provider} is not configured in this process`);
    const startedAt = new Date(task.started_at ?? task.created_at);
    if (clock.now().getTime() - startedAt.getTime() > this.deps.taskTimeoutMs) {
      await this.scheduleFinalize({
        taskId,
        outcome: "failed",
        reason: "timeout",
        message: "The generation did not finish in time.",
      });
      return;
    }
    let result: Awaited<ReturnType<Provider["poll"]>>;
    try {
      result = await provider.poll(task.upstream_id, this.providerTask(task));
    } catch (error) {
      if (error instanceof ProviderError && !error.retryable) {
        await this.scheduleFinalize({ taskId, outcome: "failed", reason: error.reason, message: error.message });
        return;
      }
      throw error;
    }
    if (result.state === "pending") {
      const max = this.deps.pollIntervalMs?.max ?? 5000;
      const elapsed = clock.now().getTime() - startedAt.getTime();
      // Poll often at first, then back off towards `max`.
      const backoff = Math.min(max, Math.max(200, elapsed / 10));
      return { retryAt: addMs(clock.now(), Math.min(max, result.retryAfterMs ?? backoff)) };
    }
    if (result.state === "failed") {
      await this.scheduleFinalize({ taskId, outcome: "failed", reason: result.reason, message: result.message });
    } else {
      await this.scheduleFinalize({ taskId, outcome: "succeeded", media: result.media });
    }
    return;
  }

  async finalize(payload: FinalizePayload): Promise<undefined> {
    const { db, clock, log } = this.deps;
    const task = await this.loadTask(payload.taskId);
    if (!task) return;
    if (task.status === "succeeded" || task.status === "failed") {
      // A rerun after a crash between the commit and the clean-up: finish the clean-up.
      await this.releaseUpstream(task);
      return;
    }
    if (payload.outcome === "failed") {
      const changed = await failTask(
        db,
        clock,
        { taskId: task.id, reason: payload.reason, detail: payload.message },
        this.onTerminal,
      );
      if (changed) {
        log.info({ taskId: task.id, reason: payload.reason, detail: payload.message }, "task failed and was refunded");
      }
    } else {
      const result = await this.storeResult(task, payload.media);
      const changed = await succeedTask(db, clock, { taskId: task.id, result }, this.onTerminal);
      if (changed) log.info({ taskId: task.id }, "task succeeded");
    }
    await this.releaseUpstream(task);
    return;
  }

  private async storeResult(task: TasksTable, media: ProviderMedia[]): Promise<StoredResult> {
    const stored: StoredResult["media"] = [];
    for (const [index, item] of media.entries()) {
      const { path, cleanup } = await this.localCopy(item);
      try {
        const info = await probeMp4(path);
        const key = `results/${task.id}/${index === 0 ? "video" : `video-${index}`}.mp4`;
        const object = await this.deps.storage.putFile(key, path);
        stored.push({
          key,
          mime_type: item.mimeType,
          width: info.width,
          height: info.height,
          duration_seconds: info.durationSeconds,
          has_audio: info.hasAudio,
          size_bytes: object.size,
          sha256: object.sha256,
        });
      } finally {
        await cleanup();
      }
    }
    if (stored.length === 0) throw new Error("the provider reported success without any media");
    return { media: stored, expires_at: addMs(this.deps.clock.now(), this.deps.resultRetentionMs).toISOString() };
  }

  /** A local file for the media: the provider's own file, or a download of its URL. */
  private async localCopy(media: ProviderMedia): Promise<{ path: string; cleanup: () => Promise<void> }> {
    if (media.kind === "file") return { path: media.path, cleanup: async () => {} };
    const dir = await mkdtemp(join(tmpdir(), "framegate-dl-"));
    const path = join(dir, "media");
    const response = await fetch(media.url, { redirect: "follow", signal: AbortSignal.timeout(120_000) });
    if (!response.ok || !response.body) throw new Error(`media download failed with HTTP ${response.status}`);
    await pipeline(
      Readable.fromWeb(response.body as import("node:stream/web").ReadableStream),
      createWriteStream(path),
    );
    return { path, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }

  private async releaseUpstream(task: TasksTable): Promise<void> {
    const provider = task.provider ? this.deps.providers.get(task.provider) : undefined;
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
