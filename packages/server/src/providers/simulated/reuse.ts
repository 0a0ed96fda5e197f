/**
 * SIMULATOR_RENDER=reuse: one real render per output shape, and every task of that shape gets
 * it as its result. ffmpeg dominates the simulator's cost (seconds of CPU per task), which hides
 * everything else in a load test. A reused video is still a valid MP4 of the size, duration and
 * audio the task asked for (the mirror links it into the task's own result), but its burned-in
 * text is a fixed line instead of the task's prompt and a reference image is not drawn.
 *
 * Templates live in `<dir>/<shape>.mp4` and appear atomically (the renderer writes a temp file
 * and renames it), so a present template is complete, and one left by an earlier process is used
 * as is. Within a process, all tasks of a new shape wait for one render; two processes rendering
 * the same shape at once both succeed and the last rename wins (the same content).
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import type { RenderSpec } from "./render.js";

/** What a template shows instead of a prompt. */
export const REUSED_RENDER_TEXT = "Reused render (SIMULATOR_RENDER=reuse): not this task's prompt";

/** The parts of a render spec that shape the output file. */
export type TemplateShape = Pick<RenderSpec, "width" | "height" | "fps" | "durationSeconds" | "sound">;

export type TemplateStatus =
  | { state: "ready"; file: string; shape: string }
  | { state: "pending" }
  | { state: "failed"; message: string };

export interface RenderTemplatesOptions {
  /** Where templates are kept (one file per shape). */
  dir: string;
  /** Renders a template (the provider bounds how many renders run at once); aborted on close. */
  render: (spec: RenderSpec, signal: AbortSignal) => Promise<void>;
}

type Entry = { state: "pending" } | { state: "ready"; file: string } | { state: "failed"; message: string };

export class RenderTemplates {
  private readonly entries = new Map<string, Entry>();
  private readonly controller = new AbortController();

  constructor(private readonly opts: RenderTemplatesOptions) {}

  /**
   * The template of this shape: ready, being prepared (this call starts that when needed), or
   * failed. A failure is reported to one caller, like a task's own failed render would be; the
   * next caller starts a new attempt, so a passing problem does not fail every later task.
   */
  status(shape: TemplateShape): TemplateStatus {
    const key = shapeKey(shape);
    const entry = this.entries.get(key);
    if (entry?.state === "ready") return { state: "ready", file: entry.file, shape: key };
    if (entry?.state === "failed") {
      this.entries.delete(key);
      return entry;
    }
    if (!entry) this.prepare(key, shape);
    return { state: "pending" };
  }

  /** Stops template renders in flight (shutdown). */
  close(): void {
    this.controller.abort();
  }

  private prepare(key: string, shape: TemplateShape): void {
    const file = path.join(this.opts.dir, `${key}.mp4`);
    const entry: Entry = { state: "pending" };
    this.entries.set(key, entry);
    const settle = (next: Entry) => {
      if (this.entries.get(key) === entry) this.entries.set(key, next);
    };
    this.ensure(shape, file).then(
      () => settle({ state: "ready", file }),
      (error: unknown) => {
        // Shutdown is no failure of the template: the next process starts over.
        if (this.controller.signal.aborted) this.entries.delete(key);
        else settle({ state: "failed", message: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  private async ensure(shape: TemplateShape, file: string): Promise<void> {
    if (await isFile(file)) return;
    await this.opts.render({ ...shape, prompt: REUSED_RENDER_TEXT, outputPath: file }, this.controller.signal);
  }
}

/** Everything that changes the rendered file's shape; names the template. */
export function shapeKey(shape: TemplateShape): string {
  return `${shape.width}x${shape.height}-${shape.fps}fps-${shape.durationSeconds}s-${shape.sound ? "sound" : "silent"}`;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
