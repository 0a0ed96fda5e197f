/**
 * How the API commands talk to people and scripts: human text on stdout (a live line on a TTY,
 * plain lines otherwise), exactly one JSON document on stdout with --json, and errors on stderr
 * as `error: <code>: <message>` or `{"error":{code,message,requestId}}`.
 *
 * Exit codes: 0 success, 1 the API refused or the generation failed, 2 bad usage (caught before
 * any request), 130 interrupted (Ctrl-C).
 */
import { APIConnectionError, AuthenticationError, type ErrorDetail, FramegateError } from "@framegate/sdk";

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** An error the CLI raises itself (bad flags, no key, a failed task, ...). */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly reason: string | undefined;
  readonly requestId: string | undefined;
  readonly taskId: string | undefined;
  readonly hint: string | undefined;

  constructor(
    code: string,
    message: string,
    opts: { exitCode?: number; reason?: string; requestId?: string; taskId?: string; hint?: string } = {},
  ) {
    super(message);
    this.name = "CliError";
    this.code = code;
    this.exitCode = opts.exitCode ?? (code === "invalid_argument" ? EXIT_USAGE : EXIT_FAILURE);
    this.reason = opts.reason;
    this.requestId = opts.requestId;
    this.taskId = opts.taskId;
    this.hint = opts.hint;
  }
}

/** A bad flag or argument, found before any request is made (exit code 2). */
export const usageError = (message: string) => new CliError("invalid_argument", message, { exitCode: EXIT_USAGE });

export interface ErrorInfo {
  code: string;
  message: string;
  requestId: string | null;
  reason?: string;
  taskId?: string;
  details?: ErrorDetail[];
  hint?: string;
  exitCode: number;
}

export function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "CliInterrupt");
}

/** Normalizes anything thrown into what is printed. `baseUrl` makes connection errors helpful. */
export function describeError(error: unknown, baseUrl?: string): ErrorInfo {
  if (error instanceof CliError) {
    return {
      code: error.code,
      message: error.message,
      requestId: error.requestId ?? null,
      exitCode: error.exitCode,
      ...(error.reason ? { reason: error.reason } : {}),
      ...(error.taskId ? { taskId: error.taskId } : {}),
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  if (isAbort(error)) {
    return { code: "interrupted", message: "interrupted", requestId: null, exitCode: EXIT_INTERRUPTED };
  }
  if (error instanceof FramegateError) {
    let hint: string | undefined;
    if (error instanceof APIConnectionError) {
      hint = `is the server running at ${baseUrl ?? "the base URL"}? Start one with \`framegate serve\`, or pass --base-url.`;
    } else if (error instanceof AuthenticationError) {
      hint = "run `framegate login --api-key <key>`, set FRAMEGATE_API_KEY, or pass --api-key.";
    }
    return {
      code: error.code,
      message: error.message,
      requestId: error.requestId ?? null,
      exitCode: EXIT_FAILURE,
      ...(error.details?.length ? { details: error.details } : {}),
      ...(hint ? { hint } : {}),
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: "error", message, requestId: null, exitCode: EXIT_FAILURE };
}

export function formatErrorText(info: ErrorInfo): string {
  const lines = [
    `error: ${info.code}${info.reason ? ` (${info.reason})` : ""}: ${info.message}${
      info.requestId ? ` [request ${info.requestId}]` : ""
    }`,
  ];
  for (const d of info.details ?? []) lines.push(`  - ${d.path || "(body)"}: ${d.issue}`);
  if (info.hint) lines.push(`  hint: ${info.hint}`);
  return lines.join("\n");
}

export function formatErrorJson(info: ErrorInfo): string {
  const { exitCode: _exit, hint: _hint, ...rest } = info;
  return JSON.stringify({ error: rest });
}

/** True when stdout is an interactive terminal we may redraw (not with --json, not TERM=dumb). */
export function isInteractive(stream: NodeJS.WriteStream = process.stdout, env = process.env): boolean {
  return Boolean(stream.isTTY) && env.TERM !== "dumb";
}

export class Output {
  readonly json: boolean;
  /** Live, redrawn status lines and progress bars (stdout is a TTY and not --json). */
  readonly tty: boolean;
  readonly stream: NodeJS.WriteStream;

  constructor(opts: { json?: boolean | undefined }, stream: NodeJS.WriteStream = process.stdout) {
    this.json = Boolean(opts.json);
    this.stream = stream;
    this.tty = !this.json && isInteractive(stream);
  }

  /** A progress line for people (nothing with --json). */
  line(text: string): void {
    if (!this.json) this.stream.write(`${text}\n`);
  }

  /** The command's result: `json` with --json, `text` otherwise. */
  result(json: unknown, text: string): void {
    this.stream.write(this.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  }

  /** Prints the error on stderr and sets the exit code. */
  fail(error: unknown, baseUrl?: string): void {
    const info = describeError(error, baseUrl);
    process.stderr.write(`${this.json ? formatErrorJson(info) : formatErrorText(info)}\n`);
    process.exitCode = info.exitCode;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatElapsed(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return `${m}m${String(s).padStart(2, "0")}s`;
}
