/**
 * File inspection off the event loop (issue #11): `inspectFile` plus the image decode run in a
 * bounded piscina pool of worker threads, so a crafted upload costs a pool thread some CPU, never
 * the thread that answers HTTP.
 *
 * - Threads: `concurrency`, started with the first file; each has a V8 heap cap (resourceLimits).
 *   Native memory (libvips) is bounded by the decoder's own caps, see media/image-decode.ts.
 * - Queue: at most `maxQueue` files wait for a thread; past that, uploads are turned away with
 *   a 503 and Retry-After instead of piling up behind a hostile tenant's files.
 * - Time budget: counted from the moment a thread picks the file up (the thread says "started"),
 *   not from when it was queued. Past it the thread is asked to abort (which kills ffmpeg
 *   children), and if it does not answer within a short grace, piscina terminates it and starts a
 *   fresh one. The caller gets a "too complex" refusal at the budget either way.
 */
import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { MessageChannel } from "node:worker_threads";
import { Piscina } from "piscina";
// sharp's native libraries must be loaded by the main thread before any worker loads them, or
// they are unloaded (and the process crashes) when a worker exits (sharp's worker-thread notes).
import "sharp";
import type { FileKind } from "./sniff.js";
import type { Inspection } from "./types.js";
import type { InspectionOutcome, InspectionTask } from "./worker.js";

/** V8 heap per thread. The parsers read in fixed blocks; the largest buffer is 8 MiB of PNG text. */
export const INSPECT_THREAD_HEAP_MB = 256;
/** How long a thread asked to abort may take before it is terminated. */
const ABORT_GRACE_MS = 1000;

export interface InspectionPoolOptions {
  /** Threads (default: one less than the cores, at least one). */
  concurrency?: number;
  /** Per-file time budget, counted while a thread works on the file. */
  timeoutMs: number;
  /** Files allowed to wait for a thread (default: 4 per thread, at least 8). */
  maxQueue?: number;
  limits: { maxImageSide: number; maxImagePixels: number };
  /** Thread entry (tests substitute their own); default: worker.ts/.js next to this file. */
  workerUrl?: URL;
}

export interface InspectRequest {
  kind: FileKind;
  allowedMimeTypes: readonly string[];
  ffmpegPath: string;
}

export interface InspectionResult {
  inspection: Inspection;
  /** The thread that inspected the file; undefined when the budget ran out first. */
  threadId: number | undefined;
}

/** Every thread is busy and the queue is full: the caller should answer 503 with Retry-After. */
export class InspectionPoolBusy extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("file inspection is busy");
    this.name = "InspectionPoolBusy";
  }
}

export function defaultInspectConcurrency(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** worker.js in production (dist/), worker.ts under vitest and tsx, which need tsx in the thread too. */
function defaultWorkerUrl(): URL {
  const here = new URL(import.meta.url);
  return new URL(`./worker${extname(here.pathname)}`, here);
}

const refusal = (message: string): Inspection => ({ ok: false, code: "validation_failed", message });

export class InspectionPool {
  private pool: Piscina<InspectionTask, InspectionOutcome> | undefined;
  private readonly timeoutMs: number;
  private readonly limits: InspectionPoolOptions["limits"];
  private readonly concurrency: number;
  /** Running plus queued files; more than concurrency + maxQueue are turned away. */
  private readonly capacity: number;
  private inFlight = 0;

  constructor(private readonly opts: InspectionPoolOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.limits = opts.limits;
    this.concurrency = opts.concurrency ?? defaultInspectConcurrency();
    this.capacity = this.concurrency + (opts.maxQueue ?? Math.max(8, 4 * this.concurrency));
  }

  /**
   * The threads start with the first file, so processes that never inspect one (workers, most
   * tests) pay nothing. minThreads equals maxThreads on purpose: piscina replaces a terminated
   * thread only up to minThreads, and with fewer, files queued behind a terminated thread could
   * wait for a thread that never comes.
   */
  private threads(): Piscina<InspectionTask, InspectionOutcome> {
    if (this.pool) return this.pool;
    const concurrency = this.concurrency;
    const workerUrl = this.opts.workerUrl ?? defaultWorkerUrl();
    this.pool = new Piscina({
      filename: workerUrl.href,
      minThreads: concurrency,
      maxThreads: concurrency,
      // piscina's maxQueue does not apply to tasks with an AbortSignal (they skip its queue), so
      // the limit is kept in inspect() instead.
      concurrentTasksPerWorker: 1,
      // The tasks are async (ffmpeg, libvips); "async" keeps the thread's event loop running between them.
      atomics: "async",
      resourceLimits: { maxOldGenerationSizeMb: INSPECT_THREAD_HEAP_MB, maxYoungGenerationSizeMb: 8 },
      execArgv: fileURLToPath(workerUrl).endsWith(".ts") ? ["--conditions=source", "--import", "tsx"] : [],
    });
    // A thread dying between tasks is reported here; without a listener it would crash the process.
    this.pool.on("error", () => {});
    return this.pool;
  }

  /** Inspects the file at `path` in a pool thread within the time budget. */
  async inspect(path: string, request: InspectRequest): Promise<InspectionResult> {
    if (this.inFlight >= this.capacity) throw new InspectionPoolBusy(this.retryAfterSeconds());
    const { port1, port2 } = new MessageChannel();
    const abort = new AbortController();
    const task: InspectionTask = { path, ...request, limits: this.limits, budgetMs: this.timeoutMs, port: port2 };
    const run = this.threads().run(task, { transferList: [port2], signal: abort.signal });
    this.inFlight++;
    let budgetTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const budgetSpent = new Promise<"spent">((resolve) => {
      port1.on("message", (message) => {
        if (message !== "started" || budgetTimer) return;
        budgetTimer = setTimeout(() => {
          port1.postMessage("abort");
          graceTimer = setTimeout(() => abort.abort(), ABORT_GRACE_MS);
          resolve("spent");
        }, this.timeoutMs);
      });
    });
    // Whatever happens, the thread's answer (or termination) releases the port and the timers.
    const settled = run.then(
      () => {},
      () => {},
    );
    void settled.then(() => {
      this.inFlight--;
      clearTimeout(budgetTimer);
      clearTimeout(graceTimer);
      port1.close();
    });
    try {
      const outcome = await Promise.race([run, budgetSpent]);
      if (outcome === "spent") {
        return { inspection: refusal(this.tooComplexMessage()), threadId: undefined };
      }
      return { inspection: outcome.inspection, threadId: outcome.threadId };
    } catch (error) {
      return { inspection: this.classifyFailure(error), threadId: undefined };
    }
  }

  /** About one budget: by then a thread has finished or given up on its file. */
  private retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.timeoutMs / 1000));
  }

  private tooComplexMessage(): string {
    const seconds = Math.round(this.timeoutMs / 100) / 10;
    return `The file is too complex to inspect within ${seconds} s.`;
  }

  /** A thread that died on the file is the file's fault (as far as the client is concerned); pool trouble is ours. */
  private classifyFailure(error: unknown): Inspection {
    const message = error instanceof Error ? error.message : String(error);
    if (message === "Task queue is at limit" || message.startsWith("No task queue available")) {
      throw new InspectionPoolBusy(this.retryAfterSeconds());
    }
    if ((error as { code?: string } | null)?.code === "ERR_WORKER_OUT_OF_MEMORY") {
      return refusal("The file needs more memory to inspect than allowed.");
    }
    if (message.startsWith("worker exited with code")) return refusal("The file could not be inspected.");
    throw error;
  }

  /** Waits for running inspections, then stops every thread. */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}
