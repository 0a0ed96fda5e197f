/** Runs the `framegate` CLI from source as a child process without a TTY (stdout and stderr are pipes). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { REPO_ROOT, startTestServer, type TestServer } from "../../server/test/harness.js";
import { runProcess } from "../../server/test/process-helpers.js";

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
/** tsx by path: a command run in a scratch directory cannot resolve the bare name. */
const TSX = import.meta.resolve("tsx");

export async function runCli(
  args: string[],
  env: Record<string, string>,
  opts: { input?: string; timeoutMs?: number; cwd?: string; cleanEnv?: boolean } = {},
): Promise<CliResult> {
  const { cwd = REPO_ROOT, cleanEnv = false, ...run } = opts;
  // cleanEnv: only `env`, none of this process's variables.
  const base = cleanEnv ? {} : process.env;
  const { code, stdout, stderr } = await runProcess(
    process.execPath,
    ["--conditions=source", "--import", TSX, CLI, ...args],
    { cwd, env: { ...base, LOG_LEVEL: "silent", ...env }, ...run },
  );
  const parse = (text: string) => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  return { code, stdout, stderr, json: parse(stdout), errorJson: parse(stderr) };
}

/** No ANSI escape sequences and no carriage returns: what a log file or pipe should get. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
export const TERMINAL_CONTROL = /[\x1b\r]/;

/** Nothing listens here: a command that reaches the network fails with api_connection_error. */
export const DEAD = "http://127.0.0.1:9";

export interface CliFixture {
  readonly t: TestServer;
  readonly key: string;
  readonly accountId: string;
  /** A scratch directory, removed afterwards. */
  readonly dir: string;
  /** The CLI's environment: this server, this account's key, no config file. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Creates a task through the API; its id. */
  create(prompt: string): Promise<string>;
}

/**
 * A server in this process and an account on it for the CLI tests of one file: started before
 * them and stopped after them (vitest's beforeAll/afterAll of the calling describe block).
 */
export function cliFixture(
  name: string,
  opts: { serverEnv?: Record<string, string>; credits?: number; setup?: (f: CliFixture) => Promise<void> } = {},
): CliFixture {
  let t: TestServer | undefined;
  let key = "";
  let accountId = "";
  let dir = "";
  const fixture: CliFixture = {
    get t() {
      if (!t) throw new Error("the CLI test server has not started");
      return t;
    },
    get key() {
      return key;
    },
    get accountId() {
      return accountId;
    },
    get dir() {
      return dir;
    },
    env: (extra = {}) => ({
      FRAMEGATE_BASE_URL: fixture.t.url,
      FRAMEGATE_API_KEY: key,
      FRAMEGATE_CONFIG: join(dir, "no-config", "config.json"),
      ...extra,
    }),
    async create(prompt) {
      const res = await fixture.t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      return res.body.id as string;
    },
  };
  beforeAll(async () => {
    t = await startTestServer(opts.serverEnv ?? {});
    ({ key, accountId } = await t.createAccount(opts.credits ?? 1000));
    dir = mkdtempSync(join(tmpdir(), `framegate-cli-${name}-`));
    await opts.setup?.(fixture);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return fixture;
}
