/**
 * The embedded default provider (api-contract §10). It behaves like a remote upstream: submit
 * returns an id at once, the work happens in the background, and everything needed to finish
 * the task lives on disk under `workDir/<upstreamId>/`, so a new process can pick up a task
 * whose render was cut short. That is what lets the worker's crash recovery be tested for real.
 *
 * Task directory layout:
 *   request.json  what to render and when it may be reported done (written once, atomically)
 *   video.mp4     the finished render (appears atomically)
 *   error.json    a render failure (final)
 *
 * With `shared` storage (always, in the server), the task is also published under
 * `simulator/<upstreamId>/` in our storage, so it behaves like one remote upstream for every
 * worker process: request.json (+ the reference image) at submit, rendering.json while a
 * render runs, video.mp4 or error.json when it ends. A worker that polls a task submitted
 * elsewhere pulls the request and, unless another process is rendering it, renders it itself;
 * a finished video is reported as a storage object any worker can mirror.
 *
 * In reuse mode (SIMULATOR_RENDER=reuse) a task renders nothing of its own: its result is the one
 * video rendered for its shape (reuse.ts), published once under `simulator/templates/`. A task
 * without directives keeps no files at all (its upstream id, `simr_<taskId>`, says so, and each
 * poll derives the shape from the task); one with directives keeps request.json for its timing.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Storage } from "../../storage/storage.js";
import {
  type CancelOutcome,
  type PollResult,
  type Provider,
  ProviderError,
  type ProviderMedia,
  type ProviderTask,
  type SubmitResult,
} from "../provider.js";
import { type RenderSpec, renderSimulatedVideo } from "./render.js";
import { RenderTemplates, type TemplateShape, type TemplateStatus } from "./reuse.js";

export type SimulatedAspectRatio = "1:1" | "16:9" | "9:16";

export interface SimulatedProviderOptions {
  /** Directory holding one sub-directory per task. */
  workDir: string;
  ffmpegPath: string;
  fontPath?: string;
  sizes: Record<SimulatedAspectRatio, { width: number; height: number }>;
  fps: number;
  /** How many ffmpeg processes may run at once in this process. */
  renderConcurrency: number;
  /** Clock in epoch ms; injectable so tests can step through delays. */
  now?: () => number;
  /** How long `[sim:fail]` / `[sim:reject]` stay pending before failing (default 500 ms). */
  failAfterMs?: number;
  /** Storage shared by every worker process: tasks are published there (see above). */
  shared?: Storage;
  /** A render marker older than this is from a process that died (default 30 s; renders take seconds). */
  renderStaleMs?: number;
  /**
   * `full` (default): every task renders its own video. `reuse`: one render per output shape,
   * which is every task of that shape's result (reuse.ts); for benchmarks and load tests.
   */
  render?: "full" | "reuse";
}

const RENDER_STALE_MS = 30_000;

/** Test directives parsed from the prompt (api-contract §10). */
export interface SimulatedDirective {
  fail: boolean;
  reject: boolean;
  /** `[sim:delay=N]` in seconds, clamped to 0..600; null when absent. */
  delaySeconds: number | null;
}

/** Contents of request.json. */
interface StoredRequest {
  version: 1;
  taskId: string;
  /** The output path is derived from workDir at render time, so the data dir may move. */
  spec: Omit<RenderSpec, "outputPath">;
  directive: SimulatedDirective;
  submittedAt: number;
  /** Not reported done (or failed, for fail/reject) before this time. */
  readyAt: number;
}

interface RunningRender {
  controller: AbortController;
  done: Promise<void>;
}

const MAX_DELAY_SECONDS = 600;
const DIRECTIVE_RE = /\[sim:([^\]]*)\]/giu;
/** Task ids become directory names, so only a conservative alphabet is accepted. */
const SAFE_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** Splits the prompt into its directives and the text to draw (directives removed). */
export function parseDirectives(prompt: string): { directive: SimulatedDirective; text: string } {
  const directive: SimulatedDirective = { fail: false, reject: false, delaySeconds: null };
  for (const match of prompt.matchAll(DIRECTIVE_RE)) {
    const body = (match[1] ?? "").trim().toLowerCase();
    if (body === "fail") directive.fail = true;
    else if (body === "reject") directive.reject = true;
    else {
      const delay = /^delay\s*=\s*(\d+(?:\.\d+)?|\.\d+)$/.exec(body);
      if (delay && directive.delaySeconds === null) {
        directive.delaySeconds = Math.min(MAX_DELAY_SECONDS, Math.max(0, Number(delay[1])));
      }
    }
  }
  const text = prompt.replace(DIRECTIVE_RE, " ").replace(/\s+/gu, " ").trim();
  return { directive, text };
}

/** A tiny FIFO semaphore bounding concurrent ffmpeg processes. */
class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  acquire(signal: AbortSignal): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        this.active++;
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error("aborted while queued"));
      };
      this.waiters.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  release(): void {
    this.active--;
    this.waiters.shift()?.();
  }
}

export class SimulatedProvider implements Provider {
  readonly name = "simulated";
  private readonly opts: SimulatedProviderOptions;
  private readonly now: () => number;
  private readonly failAfterMs: number;
  private readonly pool: Semaphore;
  /** Renders started by this process (queued or running), by upstream id. */
  private readonly renders = new Map<string, RunningRender>();
  /** SIMULATOR_RENDER=reuse: tasks get their shape's one render (reuse.ts). */
  private readonly reuse: boolean;
  /** One render per output shape; used in reuse mode, and for tasks submitted in it. */
  private readonly templates: RenderTemplates;
  /** Templates copied to shared storage by this process, by shape. */
  private readonly publishedTemplates = new Map<string, Promise<string>>();
  private closed = false;

  constructor(opts: SimulatedProviderOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.failAfterMs = opts.failAfterMs ?? 500;
    this.pool = new Semaphore(Math.max(1, Math.floor(opts.renderConcurrency)));
    this.reuse = opts.render === "reuse";
    this.templates = new RenderTemplates({
      dir: path.join(opts.workDir, ".templates"),
      // Template renders take render slots like any other render.
      render: async (spec, signal) => {
        await this.pool.acquire(signal);
        try {
          await renderSimulatedVideo(spec, { ffmpegPath: opts.ffmpegPath, fontPath: opts.fontPath, signal });
        } finally {
          this.pool.release();
        }
      },
    });
  }

  async submit(task: ProviderTask): Promise<SubmitResult> {
    if (!SAFE_ID_RE.test(task.taskId)) {
      throw new ProviderError(`invalid task id for the simulated provider: ${JSON.stringify(task.taskId)}`, {
        retryable: false,
        reason: "invalid_input",
      });
    }
    if (this.reuse) {
      const { directive, text } = parseDirectives(task.prompt);
      if (!directive.fail && !directive.reject && directive.delaySeconds === null) {
        // Nothing to remember: its result is its shape's template, which the task itself names
        // at every poll. No files, so nothing to recover after a crash and nothing to release.
        const template = this.templates.status(templateShape(this.buildSpec(task, text)));
        // A template still rendering takes about a second for the small sizes; polls retry.
        return { upstreamId: `${STATELESS_PREFIX}${task.taskId}`, readyInMs: template.state === "ready" ? 0 : 500 };
      }
    }
    // Deterministic id: re-submitting after a crash finds the same task instead of duplicating it.
    const upstreamId = `sim_${task.taskId}`;
    return this.wrapIo(async () => {
      const existing = await this.readRequest(upstreamId);
      if (existing) {
        await this.resumeIfIdle(upstreamId, existing);
        return { upstreamId };
      }
      const { directive, text } = parseDirectives(task.prompt);
      const spec = this.buildSpec(task, text);
      const submittedAt = this.now();
      const waitMs =
        directive.delaySeconds !== null
          ? Math.round(directive.delaySeconds * 1000)
          : directive.fail || directive.reject
            ? this.failAfterMs
            : 0;
      const request: StoredRequest = {
        version: 1,
        taskId: task.taskId,
        spec,
        directive,
        submittedAt,
        readyAt: submittedAt + waitMs,
      };
      await mkdir(this.taskDir(upstreamId), { recursive: true });
      await writeJsonAtomic(this.file(upstreamId, "request.json"), request);
      await this.publishRequest(upstreamId, request);
      // Reuse mode: the first task of a shape starts its template now rather than at the poll,
      // and the task is ready when its directives say (the template takes about a second).
      if (this.reuse) {
        this.reusedTemplate(request);
        return { upstreamId, readyInMs: waitMs };
      }
      this.startRender(upstreamId, request);
      return { upstreamId };
    });
  }

  async poll(upstreamId: string, task: ProviderTask): Promise<PollResult> {
    if (upstreamId.startsWith(STATELESS_PREFIX)) return this.wrapIo(() => this.pollStateless(upstreamId, task));
    return this.wrapIo(async () => {
      const request = SAFE_ID_RE.test(upstreamId) ? await this.readRequest(upstreamId) : null;
      if (!request) throw new ProviderError("unknown simulated task", { retryable: false });
      const now = this.now();
      const remainingMs = request.readyAt - now;
      const { directive } = request;

      if (directive.fail || directive.reject) {
        if (remainingMs > 0) return { state: "pending", retryAfterMs: retryHint(remainingMs) };
        return directive.reject
          ? { state: "failed", reason: "content_rejected", message: "Simulated content rejection ([sim:reject])" }
          : { state: "failed", reason: "provider_error", message: "Simulated provider failure ([sim:fail])" };
      }
      if (this.reuse) {
        const template = this.reusedTemplate(request);
        if (template?.state === "ready" && remainingMs > 0)
          return { state: "pending", retryAfterMs: retryHint(remainingMs) };
        return this.reusedResult(template);
      }

      // A finished video wins over a stale error.json (e.g. two processes raced on the task).
      const video = await this.finishedVideo(upstreamId);
      if (video) {
        if (remainingMs > 0) return { state: "pending", retryAfterMs: retryHint(remainingMs) };
        return { state: "succeeded", media: [video] };
      }
      const failure =
        (await readJson<{ message?: unknown }>(this.file(upstreamId, "error.json"))) ??
        (await this.readShared<{ message?: unknown }>(upstreamId, "error.json"));
      if (failure) {
        const detail = typeof failure.message === "string" ? failure.message : "unknown error";
        return { state: "failed", reason: "provider_error", message: `Simulated render failed: ${detail}` };
      }
      // Another worker is rendering it right now: wait for its result.
      if (!this.renders.has(upstreamId) && (await this.renderingElsewhere(upstreamId))) {
        return { state: "pending", retryAfterMs: 500 };
      }
      // Recovery path: nothing finished and nothing running (e.g. the renderer died mid-render).
      this.startRender(upstreamId, request);
      return { state: "pending", retryAfterMs: remainingMs > 0 ? retryHint(remainingMs) : 500 };
    });
  }

  /**
   * Cancels a task whose poll would still say pending: its render here stops, and the task ends
   * in our store (nothing polls it after that, so nothing re-renders it). One whose poll would
   * already report its end (a finished video past its delay, a directive's failure) is done.
   */
  async cancel(upstreamId: string, task: ProviderTask): Promise<CancelOutcome> {
    const state = await this.poll(upstreamId, task);
    if (state.state !== "pending") return "not_cancelable";
    const running = this.renders.get(upstreamId);
    if (running) {
      running.controller.abort();
      await running.done;
    }
    return "canceled";
  }

  async release(upstreamId: string): Promise<void> {
    if (!SAFE_ID_RE.test(upstreamId) || upstreamId.startsWith(STATELESS_PREFIX)) return;
    const running = this.renders.get(upstreamId);
    if (running) {
      running.controller.abort();
      await running.done;
    }
    await rm(this.taskDir(upstreamId), { recursive: true, force: true });
    const { shared } = this.opts;
    if (shared) {
      await Promise.all(SHARED_FILES.map((name) => shared.delete(sharedKey(upstreamId, name)).catch(() => {})));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.templates.close();
    const running = [...this.renders.values()];
    for (const r of running) r.controller.abort();
    await Promise.all(running.map((r) => r.done));
  }

  private buildSpec(task: ProviderTask, text: string): Omit<RenderSpec, "outputPath"> {
    const invalid = (message: string) => new ProviderError(message, { retryable: false, reason: "invalid_input" });
    const durationSeconds = Number(task.params.duration ?? "5");
    if (!Number.isFinite(durationSeconds) || durationSeconds <= 0 || durationSeconds > 60) {
      throw invalid(`unsupported duration ${JSON.stringify(task.params.duration)}`);
    }
    const aspect = task.params.aspect_ratio ?? "1:1";
    const size = Object.hasOwn(this.opts.sizes, aspect) ? this.opts.sizes[aspect as SimulatedAspectRatio] : undefined;
    if (!size) throw invalid(`unsupported aspect_ratio ${JSON.stringify(aspect)}`);
    const reference = task.references.find((r) => r.kind === "image" && r.localPath);
    return {
      prompt: text,
      durationSeconds,
      width: size.width,
      height: size.height,
      fps: this.opts.fps,
      sound: task.params.sound === "true",
      ...(reference?.localPath ? { referenceImagePath: reference.localPath } : {}),
    };
  }

  /** A task submitted in reuse mode without directives: everything follows from the task itself. */
  private async pollStateless(upstreamId: string, task: ProviderTask): Promise<PollResult> {
    if (upstreamId !== `${STATELESS_PREFIX}${task.taskId}`) {
      throw new ProviderError("unknown simulated task", { retryable: false });
    }
    const { text } = parseDirectives(task.prompt);
    return this.reusedResult(
      this.closed ? undefined : this.templates.status(templateShape(this.buildSpec(task, text))),
    );
  }

  /** Reuse mode: the task's result is its shape's template, once that exists. */
  private async reusedResult(template: TemplateStatus | undefined): Promise<PollResult> {
    if (template?.state === "failed") {
      return { state: "failed", reason: "provider_error", message: `Simulated render failed: ${template.message}` };
    }
    if (template?.state !== "ready") return { state: "pending", retryAfterMs: 500 };
    const { shared } = this.opts;
    if (!shared) return { state: "succeeded", media: [{ kind: "file", path: template.file, mimeType: "video/mp4" }] };
    // Published once per shape, so other workers can mirror it too; never deleted by a release.
    let published = this.publishedTemplates.get(template.shape);
    if (!published) {
      const key = `simulator/templates/${template.shape}.mp4`;
      published = (async () => {
        if (!(await shared.stat(key))) await shared.putFile(key, template.file);
        return key;
      })();
      this.publishedTemplates.set(template.shape, published);
      published.catch(() => this.publishedTemplates.delete(template.shape));
    }
    return { state: "succeeded", media: [{ kind: "storage", key: await published, mimeType: "video/mp4" }] };
  }

  /** The template for the request's shape (started if needed); none for fail/reject, which render nothing. */
  private reusedTemplate(request: StoredRequest): TemplateStatus | undefined {
    const { directive, spec } = request;
    if (this.closed || directive.fail || directive.reject) return undefined;
    return this.templates.status(templateShape(spec));
  }

  /** Used by a repeated submit: kick off the render early instead of waiting for the next poll. */
  private async resumeIfIdle(upstreamId: string, request: StoredRequest): Promise<void> {
    if (this.reuse) {
      this.reusedTemplate(request);
      return;
    }
    if (this.renders.has(upstreamId)) return;
    if (await exists(this.file(upstreamId, "video.mp4"))) return;
    if (await exists(this.file(upstreamId, "error.json"))) return;
    this.startRender(upstreamId, request);
  }

  /** Starts (without awaiting) the render unless one is already queued/running here. */
  private startRender(upstreamId: string, request: StoredRequest): void {
    const { directive } = request;
    if (this.closed || directive.fail || directive.reject || this.renders.has(upstreamId)) return;
    const controller = new AbortController();
    const entry: RunningRender = { controller, done: Promise.resolve() };
    entry.done = this.runRender(upstreamId, request, controller.signal).finally(() => {
      if (this.renders.get(upstreamId) === entry) this.renders.delete(upstreamId);
    });
    this.renders.set(upstreamId, entry);
  }

  /** Never rejects: failures end up in error.json, aborts (close/release) leave no trace. */
  private async runRender(upstreamId: string, request: StoredRequest, signal: AbortSignal): Promise<void> {
    try {
      await this.pool.acquire(signal);
    } catch {
      return;
    }
    const outputPath = this.file(upstreamId, "video.mp4");
    try {
      // Another process (or an earlier submit) may have finished it while we queued.
      if (await exists(outputPath)) return;
      await this.putShared(upstreamId, "rendering.json", { startedAt: Date.now() });
      await renderSimulatedVideo(
        { ...request.spec, outputPath },
        { ffmpegPath: this.opts.ffmpegPath, fontPath: this.opts.fontPath, signal },
      );
      // Best effort: a poll publishes the local video later if this fails.
      await this.opts.shared?.putFile(sharedKey(upstreamId, "video.mp4"), outputPath).catch(() => {});
    } catch (err) {
      if (signal.aborted) return;
      const message = err instanceof Error ? err.message : String(err);
      try {
        const failure = { message, failedAt: this.now() };
        await writeJsonAtomic(this.file(upstreamId, "error.json"), failure);
        await this.putShared(upstreamId, "error.json", failure);
      } catch {
        // The task directory was released meanwhile; nobody is waiting for this result.
      }
    } finally {
      this.pool.release();
    }
  }

  /** The task's request: this process's copy, else the one published by another worker. */
  private async readRequest(upstreamId: string): Promise<StoredRequest | null> {
    const local = await readJson<StoredRequest>(this.file(upstreamId, "request.json"));
    if (local || !this.opts.shared) return local;
    const published = await this.readShared<StoredRequest>(upstreamId, "request.json");
    if (!published) return null;
    await mkdir(this.taskDir(upstreamId), { recursive: true });
    const request = { ...published, spec: { ...published.spec } };
    if (published.spec.referenceImagePath) {
      const referencePath = this.file(upstreamId, "reference");
      await this.download(sharedKey(upstreamId, "reference"), referencePath);
      request.spec.referenceImagePath = referencePath;
    }
    await writeJsonAtomic(this.file(upstreamId, "request.json"), request);
    return request;
  }

  private async publishRequest(upstreamId: string, request: StoredRequest): Promise<void> {
    const { shared } = this.opts;
    if (!shared) return;
    if (request.spec.referenceImagePath) {
      await shared.putFile(sharedKey(upstreamId, "reference"), request.spec.referenceImagePath);
    }
    await this.putShared(upstreamId, "request.json", request);
  }

  /** The finished video, published for every worker when storage is shared. */
  private async finishedVideo(upstreamId: string): Promise<ProviderMedia | undefined> {
    const videoPath = this.file(upstreamId, "video.mp4");
    const { shared } = this.opts;
    if (!shared)
      return (await exists(videoPath)) ? { kind: "file", path: videoPath, mimeType: "video/mp4" } : undefined;
    const key = sharedKey(upstreamId, "video.mp4");
    if (!(await shared.stat(key))) {
      // Rendered here, but publishing failed or has not happened yet: publish now.
      if (this.renders.has(upstreamId) || !(await exists(videoPath))) return undefined;
      await shared.putFile(key, videoPath);
    }
    return { kind: "storage", key, mimeType: "video/mp4" };
  }

  private async renderingElsewhere(upstreamId: string): Promise<boolean> {
    const marker = await this.opts.shared?.stat(sharedKey(upstreamId, "rendering.json"));
    const staleMs = this.opts.renderStaleMs ?? RENDER_STALE_MS;
    return marker !== undefined && Date.now() - marker.modifiedAt.getTime() < staleMs;
  }

  private async putShared(upstreamId: string, name: string, value: unknown): Promise<void> {
    await this.opts.shared?.putStream(sharedKey(upstreamId, name), Readable.from([Buffer.from(JSON.stringify(value))]));
  }

  private async readShared<T>(upstreamId: string, name: string): Promise<T | null> {
    const { shared } = this.opts;
    const key = sharedKey(upstreamId, name);
    if (!shared || !(await shared.stat(key))) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of shared.read(key)) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as T;
  }

  private async download(key: string, target: string): Promise<void> {
    const tmp = `${target}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await pipeline((this.opts.shared as Storage).read(key), createWriteStream(tmp));
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** File-system trouble is transient from the worker's point of view: retry with backoff. */
  private async wrapIo<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new ProviderError(`simulated provider I/O error: ${message}`, { retryable: true });
    }
  }

  private taskDir(upstreamId: string): string {
    return path.join(this.opts.workDir, upstreamId);
  }

  private file(upstreamId: string, name: string): string {
    return path.join(this.taskDir(upstreamId), name);
  }
}

const SHARED_FILES = ["request.json", "reference", "rendering.json", "video.mp4", "error.json"];

/** Upstream ids of tasks that keep no files (reuse mode, no directives). */
const STATELESS_PREFIX = "simr_";

function templateShape(spec: Omit<RenderSpec, "outputPath">): TemplateShape {
  return {
    width: spec.width,
    height: spec.height,
    fps: spec.fps,
    durationSeconds: spec.durationSeconds,
    sound: spec.sound,
  };
}

function sharedKey(upstreamId: string, name: string): string {
  return `simulator/${upstreamId}/${name}`;
}

/** Poll hint: the remaining wait, bounded to 200..1000 ms. */
function retryHint(remainingMs: number): number {
  return Math.max(200, Math.min(1000, Math.ceil(remainingMs)));
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** Temp file + rename, so readers never see a half-written JSON file. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, "utf8");
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}
