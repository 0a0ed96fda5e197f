/** `framegate cancel` end to end (no TTY): the cancelled task and its refund, then not_cancelable, and a bad id refused locally. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../server/test/harness.js";
import { runCli } from "./helpers.js";

/** Nothing listens here: a command that reaches the network fails with api_connection_error. */
const DEAD = "http://127.0.0.1:9";

describe("framegate cancel (no TTY)", () => {
  let t: TestServer;
  let key: string;
  let dir: string;

  const env = (extra: Record<string, string> = {}) => ({
    FRAMEGATE_BASE_URL: t.url,
    FRAMEGATE_API_KEY: key,
    FRAMEGATE_CONFIG: join(dir, "no-config", "config.json"),
    ...extra,
  });

  beforeAll(async () => {
    t = await startTestServer();
    ({ key } = await t.createAccount(1000));
    dir = mkdtempSync(join(tmpdir(), "framegate-cli-cancel-"));
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const create = async (prompt: string) => {
    const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
    expect(res.status, res.text).toBe(202);
    return res.body.id as string;
  };

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
    expect((await t.request("/api/v1/credits", { key })).body.current_credits).toBe(1000);
  });
});
