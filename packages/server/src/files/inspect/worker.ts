/**
 * Entry point of an inspection thread (see pool.ts): inspects one file with `inspectFile`, then,
 * for images, decodes it whole with `verifyImageDecodes`. Nothing here runs on the thread that
 * answers HTTP.
 *
 * Protocol with the pool, over the MessagePort that comes with each task: the thread posts
 * "started" when it picks the task up (the pool's clock for the time budget starts then, not
 * while the task waits in the queue), and listens for "abort", which it turns into an
 * AbortSignal so that ffmpeg children are killed. A thread too busy to hear "abort" is
 * terminated by the pool instead.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type MessagePort, threadId } from "node:worker_threads";
import { configureSharp, verifyImageDecodes } from "../../media/image-decode.js";
import { inspectFile } from "./index.js";
import type { FileKind } from "./sniff.js";
import type { Inspection } from "./types.js";

export interface InspectionTask {
  path: string;
  kind: FileKind;
  allowedMimeTypes: readonly string[];
  ffmpegPath: string;
  limits: { maxImageSide: number; maxImagePixels: number };
  /** The time budget; ffmpeg runs and the decode get what is left of it as their timeout. */
  budgetMs: number;
  port: MessagePort;
}

export interface InspectionOutcome {
  inspection: Inspection;
  /** The thread that did the work (for logs, and for tests proving it was not the main thread). */
  threadId: number;
}

configureSharp();

/**
 * The parsers read through fresh windows, so a 10 MB file makes ~10 MB of short-lived Buffers.
 * V8 frees a Buffer's memory only when it collects the Buffer object, which on the main thread
 * happens all the time (every request allocates). This thread allocates almost nothing else, so
 * without help the windows of a whole file pile up: the process peak rose by 26 MB for one
 * 10 MB upload. A young-generation collection every SWEEP_INTERVAL_MS while a file is inspected
 * (it runs between reads; this tiny heap scavenges in well under a millisecond) brought that to
 * 2 MB for ~3% more time, and a full collection after each file leaves an idle thread with no
 * garbage. `gc` comes from a fresh context after enabling --expose-gc at runtime, since Worker
 * execArgv does not accept V8 flags.
 */
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as (options?: { type: "minor" | "major" }) => void;
const SWEEP_INTERVAL_MS = 5;

export default async function inspectInThread(task: InspectionTask): Promise<InspectionOutcome> {
  const startedAt = performance.now();
  const abort = new AbortController();
  task.port.on("message", (message) => {
    if (message === "abort") abort.abort(new Error("inspection budget exceeded"));
  });
  task.port.postMessage("started");
  const sweeper = setInterval(() => collectGarbage({ type: "minor" }), SWEEP_INTERVAL_MS);
  const remainingMs = () => Math.max(1, Math.round(task.budgetMs - (performance.now() - startedAt)));
  try {
    const options = {
      kind: task.kind,
      allowedMimeTypes: task.allowedMimeTypes,
      ffmpegPath: task.ffmpegPath,
      signal: abort.signal,
      ffmpegTimeoutMs: remainingMs(),
      limits: task.limits,
    };
    const inspection = await inspectFile(task.path, options);
    if (!inspection.ok || !inspection.mimeType.startsWith("image/")) return { inspection, threadId };
    // The parsers proved the structure; only a decoder proves the pixels are all there.
    const decoded = await verifyImageDecodes(task.path, {
      maxPixels: task.limits.maxImagePixels,
      timeoutMs: remainingMs(),
    });
    if (!decoded.ok) {
      return { inspection: { ok: false, code: "validation_failed", message: decoded.message }, threadId };
    }
    return { inspection, threadId };
  } finally {
    task.port.close();
    clearInterval(sweeper);
    setImmediate(() => collectGarbage());
  }
}
