/** `framegate watch` end to end (no TTY): live lines per state, NDJSON with --json, exit codes like `wait`. */
import { describe, expect, it } from "vitest";
import { cliFixture, DEAD, runCli, TERMINAL_CONTROL } from "./helpers.js";

describe("framegate watch (no TTY)", () => {
  const f = cliFixture("watch", { serverEnv: { RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" } });
  const { env, create } = f;

  it("prints each state as it comes and exits 0 on success; --json is one task per line", {
    timeout: 60_000,
  }, async () => {
    const [a, b] = await Promise.all([create("[sim:delay=1] watched"), create("[sim:delay=1] watched json")]);
    const [text, json] = await Promise.all([runCli(["watch", a], env()), runCli(["watch", b, "--json"], env())]);

    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe("");
    expect(text.stdout).not.toMatch(TERMINAL_CONTROL);
    const states = text.stdout
      .split("\n")
      .map((line) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d  ${a}  (\\w+)$`).exec(line)?.[1])
      .filter(Boolean);
    expect(states.at(-1)).toBe("succeeded");
    expect(new Set(states).size).toBe(states.length);
    expect(text.stdout).toContain(`${a}  succeeded\n  model:     kling-2-6`);

    expect(json.code, json.stderr).toBe(0);
    const tasks = json.stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(tasks.at(-1)).toMatchObject({ id: b, status: "succeeded", final_credits: 55 });
    expect(tasks.every((task) => task.id === b)).toBe(true);
  });

  it("a failed task exits 1 with its code and reason, after saying its credits were refunded", {
    timeout: 60_000,
  }, async () => {
    const id = await create("[sim:fail] watched to the end");
    const result = await runCli(["watch", id], env());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`${id}  failed\\n${id} failed: its 55 credits were refunded`));
    expect(result.stderr).toMatch(/^error: generation_failed \(provider_error\): /);
  });

  it("refuses a malformed id before any request; another account's task is not_found", async () => {
    const [bad, foreign] = await Promise.all([
      runCli(["watch", "no such id"], env({ FRAMEGATE_BASE_URL: DEAD })),
      (async () => {
        const other = await f.t.createAccount(1000);
        const res = await f.t.request("/api/v1/generations", {
          key: other.key,
          json: { model: "kling-2-6", prompt: "[sim:delay=0] theirs" },
        });
        return runCli(["watch", res.body.id, "--json"], env());
      })(),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: invalid_argument: <id> must be a task id/);
    expect(foreign.code).toBe(1);
    expect(foreign.stdout).toBe("");
    expect(foreign.errorJson.error).toMatchObject({ code: "not_found" });
  });
});
