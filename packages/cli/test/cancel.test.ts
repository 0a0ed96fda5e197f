/** `framegate cancel` end to end (no TTY): the cancelled task and its refund, then not_cancelable, and a bad id refused locally. */
import { describe, expect, it } from "vitest";
import { cliFixture, DEAD, runCli } from "./helpers.js";

describe("framegate cancel (no TTY)", () => {
  const f = cliFixture("cancel");
  const { env, create } = f;

  it("prints the cancelled task and its refund; a second cancel fails with not_cancelable", {
    timeout: 60_000,
  }, async () => {
    const [a, b] = await Promise.all([create("[sim:delay=60] text"), create("[sim:delay=60] json")]);
    const [text, json, badId] = await Promise.all([
      runCli(["cancel", a], env()),
      runCli(["cancel", b, "--json"], env()),
      runCli(["cancel", "not a task id"], env({ FRAMEGATE_BASE_URL: DEAD })),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe("");
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`${a} cancelled; 55 credits refunded`);
    expect(lines[1]).toBe(`${a}  failed`);
    expect(text.stdout).toMatch(/error: +generation_failed \(canceled\): The generation was canceled\./);

    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toMatchObject({ id: b, status: "failed", final_credits: 0, error: { reason: "canceled" } });

    expect(badId.code).toBe(2);
    expect(badId.stderr).toMatch(/^error: invalid_argument: <id> must be a task id/);

    const [again, againJson] = await Promise.all([
      runCli(["cancel", a], env()),
      runCli(["cancel", b, "--json"], env()),
    ]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/^error: not_cancelable: This generation already failed.* \[request req_\w+\]$/m);
    expect(againJson.code).toBe(1);
    expect(againJson.errorJson.error).toMatchObject({ code: "not_cancelable" });
    expect((await f.t.request("/api/v1/credits", { key: f.key })).body.current_credits).toBe(1000);
  });
});
