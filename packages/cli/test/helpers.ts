/** Runs the `framegate` CLI from source as a child process without a TTY (stdout and stderr are pipes). */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../../server/test/harness.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed --json output
  json: any;
  // biome-ignore lint/suspicious/noExplicitAny: parsed --json error (stderr)
  errorJson: any;
}

export const CLI = join(REPO_ROOT, "packages/cli/src/main.ts");

export function runCli(
  args: string[],
  env: Record<string, string>,
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", CLI, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "silent", ...env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      const parse = (text: string) => {
        try {
          return JSON.parse(text);
        } catch {
          return undefined;
        }
      };
      resolve({ code, stdout, stderr, json: parse(stdout), errorJson: parse(stderr) });
    });
  });
}

/** No ANSI escape sequences and no carriage returns: what a log file or pipe should get. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
export const TERMINAL_CONTROL = /[\x1b\r]/;
