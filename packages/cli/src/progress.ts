/**
 * Live feedback while a task runs and while its video downloads. On a TTY: one redrawn line
 * (spinner, status, elapsed time) and a byte progress bar. Otherwise: one plain line per status
 * change and no bar, so logs and pipes get no carriage returns or escape codes. Nothing with --json.
 */

import type { Task } from "@framegate/sdk";
import cliProgress from "cli-progress";
import { formatBytes, formatElapsed, type Output } from "./output.js";

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const CLEAR_LINE = "\r\x1b[2K";

/** Shows a task's status until it finishes. */
export class TaskStatusView {
  private last: Task | undefined;
  private lastPrinted: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;

  constructor(
    private readonly out: Output,
    private readonly started: number = Date.now(),
  ) {}

  private elapsed(): string {
    return formatElapsed(Date.now() - this.started);
  }

  private render(): void {
    if (!this.last) return;
    const spinner = SPINNER[this.frame++ % SPINNER.length];
    this.out.stream.write(`${CLEAR_LINE}${spinner} ${this.last.id} ${this.last.status} ${this.elapsed()}`);
  }

  update(task: Task): void {
    this.last = task;
    if (this.out.json) return;
    const terminal = task.status === "succeeded" || task.status === "failed";
    if (this.out.tty) {
      if (terminal) {
        this.stop();
        const mark = task.status === "succeeded" ? "✔" : "✖";
        this.out.stream.write(`${mark} ${task.id} ${task.status} after ${this.elapsed()}\n`);
        return;
      }
      if (!this.timer) {
        this.timer = setInterval(() => this.render(), 100);
        this.timer.unref();
      }
      this.render();
      return;
    }
    if (task.status !== this.lastPrinted) {
      this.lastPrinted = task.status;
      this.out.line(`${task.id} ${task.status} (${this.elapsed()})`);
    }
  }

  /**
   * A notice for people on stderr (nothing with --json). On a TTY the live line is cleared first
   * and drawn again after it, so the two streams do not write over each other.
   */
  note(text: string): void {
    if (this.out.json) return;
    if (this.timer) this.out.stream.write(CLEAR_LINE);
    process.stderr.write(`${text}\n`);
    if (this.timer) this.render();
  }

  /** Stops redrawing and clears the live line (call on every exit path). */
  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.out.stream.write(CLEAR_LINE);
    }
  }
}

export interface ByteProgress {
  start(total: number | undefined): void;
  update(received: number): void;
  stop(): void;
}

/** A byte progress bar on a TTY; nothing otherwise (the caller prints the plain lines). */
export function byteProgress(out: Output, label: string): ByteProgress {
  if (!out.tty) return { start() {}, update() {}, stop() {} };
  const started = Date.now();
  let total: number | undefined;
  const bar = new cliProgress.SingleBar({
    stream: out.stream,
    hideCursor: false,
    gracefulExit: false,
    clearOnComplete: false,
    barsize: 30,
    fps: 12,
    format: (options, params) => {
      const received = params.value;
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      const speed = `${formatBytes(Math.round(received / seconds))}/s`;
      if (!total) return `${label} ${formatBytes(received)} ${speed}`;
      const size = options.barsize ?? 30;
      const filled = Math.min(size, Math.round(params.progress * size));
      const barText = `${"█".repeat(filled)}${"░".repeat(size - filled)}`;
      const percent = Math.floor(params.progress * 100);
      return `${label} ${barText} ${String(percent).padStart(3)}% ${formatBytes(received)}/${formatBytes(total)} ${speed}`;
    },
  });
  let running = false;
  return {
    start(size) {
      total = size && size > 0 ? size : undefined;
      bar.start(total ?? 1, 0);
      running = true;
    },
    update(received) {
      if (running) bar.update(received);
    },
    stop() {
      if (!running) return;
      running = false;
      bar.stop();
    },
  };
}
