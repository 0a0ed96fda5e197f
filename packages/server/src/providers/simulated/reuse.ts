/**
 * SIMULATOR_RENDER=reuse: one real render per output shape, shared by every later task of that
 * shape. ffmpeg dominates the simulator's cost (seconds of CPU per task), which hides everything
 * else in a load test; with reuse, a task's video is a hard link to (or, across file systems, a
 * copy of) a finished template, so it is still a valid MP4 of the size, duration and audio the
 * task asked for, but its burned-in text is a fixed line instead of the task's prompt and any
 * reference image is not drawn.
 *
 * Templates live in `<dir>/<shape>.mp4`. They appear atomically (render to a temp name, then
 * rename), so a present template is complete, and a template left by an earlier process is used
 * as is. Within a process, concurrent tasks of a new shape wait for one render; two processes
 * that render the same shape at once both succeed and the last rename wins (same content).
 */
import { copyFile, link, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { randomBase62 } from "../../util/ids.js";
import type { RenderSpec } from "./render.js";

/** What a template shows instead of a prompt. */
export const REUSED_RENDER_TEXT = "Reused render (SIMULATOR_RENDER=reuse): not this task's prompt";

export type TemplateSpec = Omit<RenderSpec, "outputPath" | "prompt" | "referenceImagePath">;

export interface RenderTemplatesOptions {
  /** Where templates are kept (one file per shape). */
  dir: string;
  /** Renders a template (the provider bounds how many renders run at once). */
  render: (spec: RenderSpec) => Promise<void>;
}

export class RenderTemplates {
  /** Renders of this process in flight or done, by shape: concurrent tasks of one shape share it. */
  private readonly ready = new Map<string, Promise<string>>();

  constructor(private readonly opts: RenderTemplatesOptions) {}

  /**
   * Puts the template of `spec`'s shape at `outputPath` (rendering the template first if there is
   * none). Like a render, the output appears whole or not at all.
   */
  async materialize(spec: TemplateSpec, outputPath: string, signal: AbortSignal): Promise<void> {
    const template = await this.template(spec, signal);
    if (signal.aborted) throw abortError();
    const tmp = `${outputPath}.${randomBase62(8)}.tmp`;
    try {
      try {
        // A hard link costs no bytes and no copying. Nothing writes a result in place (every
        // writer renames a new file over it), so sharing the inode cannot alter the template.
        await link(template, tmp);
      } catch (error) {
        if (!isLinkRefused(error)) throw error;
        await copyFile(template, tmp);
      }
      await rename(tmp, outputPath);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  private template(spec: TemplateSpec, signal: AbortSignal): Promise<string> {
    const shape = shapeKey(spec);
    let pending = this.ready.get(shape);
    if (!pending) {
      pending = this.ensure(spec, path.join(this.opts.dir, `${shape}.mp4`));
      this.ready.set(shape, pending);
      // A failed render is not cached: the next task of this shape tries again.
      pending.catch(() => {
        if (this.ready.get(shape) === pending) this.ready.delete(shape);
      });
    }
    // One task giving up (release, shutdown) must not abort the render others wait for.
    return abortable(pending, signal);
  }

  private async ensure(spec: TemplateSpec, file: string): Promise<string> {
    if (await isFile(file)) return file;
    await this.opts.render({ ...spec, prompt: REUSED_RENDER_TEXT, outputPath: file });
    return file;
  }
}

/** Everything that changes the rendered file's shape; names the template. */
export function shapeKey(spec: TemplateSpec): string {
  return `${spec.width}x${spec.height}-${spec.fps}fps-${spec.durationSeconds}s-${spec.sound ? "sound" : "silent"}`;
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function abortError(): Error {
  const err = new Error("render aborted");
  err.name = "AbortError";
  return err;
}

/** Links are refused across devices and by some file systems (FAT, some network mounts). */
function isLinkRefused(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === "EXDEV" || code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EMLINK";
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
