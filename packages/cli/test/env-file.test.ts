/**
 * `.env` in the working directory: its values apply to every command, the real environment
 * wins, and a line that is not NAME=value stops the command with the file and line.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkEnvSyntax, EnvFileError, loadEnvFile } from "../src/env-file.js";
import { runCli } from "./helpers.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dirWithEnv(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-envfile-"));
  dirs.push(dir);
  writeFileSync(join(dir, ".env"), text);
  return dir;
}

describe("loadEnvFile", () => {
  it("sets what the environment does not define, and leaves what it does", () => {
    const dir = dirWithEnv(
      [
        "# local settings",
        "PORT=9000",
        "export LOG_LEVEL=debug",
        'PUBLIC_BASE_URL="http://localhost:9000"',
        "HOST=0.0.0.0 # every interface",
        "ADMIN_TOKEN=",
        "",
      ].join("\n"),
    );
    const env: Record<string, string | undefined> = { PORT: "8787", ADMIN_TOKEN: "" };
    const applied = loadEnvFile(env, join(dir, ".env"));
    expect(applied.sort()).toEqual(["HOST", "LOG_LEVEL", "PUBLIC_BASE_URL"]);
    expect(env).toEqual({
      PORT: "8787",
      ADMIN_TOKEN: "",
      LOG_LEVEL: "debug",
      PUBLIC_BASE_URL: "http://localhost:9000",
      HOST: "0.0.0.0",
    });
  });

  it("is optional: no file, nothing set", () => {
    const env = {};
    expect(loadEnvFile(env, join(tmpdir(), "framegate-no-such-dir", ".env"))).toEqual([]);
    expect(env).toEqual({});
  });

  it("reads the file FRAMEGATE_ENV_FILE names instead, or none", () => {
    const dir = dirWithEnv("PORT=1\n");
    const other = join(dir, "other.env");
    writeFileSync(other, "PORT=2\n");
    const named: Record<string, string | undefined> = { FRAMEGATE_ENV_FILE: other };
    loadEnvFile(named, join(dir, ".env"));
    expect(named.PORT).toBe("2");
    const none: Record<string, string | undefined> = { FRAMEGATE_ENV_FILE: "none" };
    expect(loadEnvFile(none, join(dir, ".env"))).toEqual([]);
    expect(none.PORT).toBeUndefined();
    // A file named on purpose must exist.
    expect(() => loadEnvFile({ FRAMEGATE_ENV_FILE: join(dir, "missing.env") })).toThrow(
      /cannot read .*missing\.env: ENOENT/,
    );
  });

  it("reads a quoted value over several lines", () => {
    const dir = dirWithEnv('NOTE="first\nsecond"\nPORT=1\n');
    const env: Record<string, string | undefined> = {};
    loadEnvFile(env, join(dir, ".env"));
    expect(env).toEqual({ NOTE: "first\nsecond", PORT: "1" });
  });

  it("refuses a line that is not NAME=value, naming the line, and sets nothing", () => {
    // Node's parser alone would fold "oops" into the next name ("oops\nPORT") and drop PORT.
    const dir = dirWithEnv("HOST=0.0.0.0\noops\nPORT=9000\n");
    const env: Record<string, string | undefined> = {};
    expect(() => loadEnvFile(env, join(dir, ".env"))).toThrow(EnvFileError);
    expect(() => loadEnvFile(env, join(dir, ".env"))).toThrow(/\.env, line 2: expected NAME=value/);
    expect(env).toEqual({});
  });

  it("refuses a quote that is never closed", () => {
    expect(() => checkEnvSyntax('A=1\nB="open\nC=2\n', ".env")).toThrow(/line 2: the value's " quote is never closed/);
    expect(() => checkEnvSyntax("A='x' # it's fine\nB=don't\n", ".env")).not.toThrow();
  });
});

/** The CLI from source, in `cwd`, with only the given environment beyond PATH and HOME. */
function runCliIn(cwd: string, args: string[], env: Record<string, string> = {}) {
  // Only PATH and HOME of this process: the test's variables must come from the .env file.
  return runCli(args, { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env }, { cwd, cleanEnv: true });
}

describe("framegate with a .env file", () => {
  it("applies it to server commands, under the real environment", async () => {
    const dir = dirWithEnv("DATA_DIR=./from-env-file\nPORT=not-a-port\n");
    // The file's PORT applies (and is refused: proof it was read) ...
    const bad = await runCliIn(dir, ["migrate", "--json"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/PORT: must be a whole number/);
    // ... unless the real environment sets PORT; DATA_DIR still comes from the file.
    const good = await runCliIn(dir, ["migrate", "--json"], { PORT: "8787" });
    expect(good.code, good.stderr).toBe(0);
    const accounts = await runCliIn(dir, ["accounts", "create", "--name", "from-dotenv", "--json"], { PORT: "8787" });
    expect(accounts.code, accounts.stderr).toBe(0);
    const listed = await runCliIn(dir, ["accounts", "list", "--json"], {
      PORT: "8787",
      DATA_DIR: join(dir, "from-env-file"),
    });
    expect(JSON.parse(listed.stdout).map((a: { name: string }) => a.name)).toEqual(["from-dotenv"]);
  }, 120_000);

  it("applies it to the API commands' FRAMEGATE_BASE_URL", async () => {
    const dir = dirWithEnv("FRAMEGATE_BASE_URL=not a url\n");
    const res = await runCliIn(dir, ["models"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/FRAMEGATE_BASE_URL must be an http\(s\) URL/);
  }, 60_000);

  it("stops every command on a malformed file, with the file and line", async () => {
    const dir = dirWithEnv("PORT=9000\nthis is not a setting\n");
    const res = await runCliIn(dir, ["accounts", "list"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `error: env_file_invalid: ${join(dir, ".env")}, line 2: expected NAME=value (or a # comment), found "this is not a setting"\n`,
    );
  }, 60_000);
});
