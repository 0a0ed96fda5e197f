/**
 * `framegate ledger`, `framegate usage` (through the API) and `framegate accounts usage` (the
 * operators' report on the local store) end to end, as a child process without a TTY.
 */
import { describe, expect, it } from "vitest";
import { waitForTask } from "../../server/test/harness.js";
import { testStoreEnv } from "../../server/test/test-store.js";
import { cliFixture, DEAD, runCli } from "./helpers.js";

describe("framegate ledger, usage and accounts usage", () => {
  const f = cliFixture("usage", {
    serverEnv: { RATE_LIMIT_READ_PER_MIN: "0" },
    setup: async ({ t, key }) => {
      for (const prompt of ["a harbour at dawn", "broken [sim:fail]"]) {
        const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
        await waitForTask(t, key, res.body.id);
      }
    },
  });
  const { env } = f;

  it("ledger prints a table of entries with the balance after each; --type, --since, --limit and --json", {
    timeout: 60_000,
  }, async () => {
    const [text, json, refunds, page, recent, badType, badSince] = await Promise.all([
      runCli(["ledger"], env()),
      runCli(["ledger", "--json"], env()),
      runCli(["ledger", "--type", "refund,grant"], env()),
      runCli(["ledger", "--limit", "1", "--json"], env()),
      runCli(["ledger", "--since", "1h", "--json"], env()),
      runCli(["ledger", "--type", "settle"], env({ FRAMEGATE_BASE_URL: DEAD })),
      runCli(["ledger", "--since", "last week"], env({ FRAMEGATE_BASE_URL: DEAD })),
    ]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+TYPE\s+AMOUNT\s+BALANCE\s+TASK\s+REASON$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(["refund", "reserve", "reserve", "grant"]);
    const balance = (await f.t.request("/api/v1/credits", { key: f.key })).body.current_credits;
    expect(lines[1]).toMatch(
      new RegExp(`\\srefund\\s+\\+\\d+\\s+${balance}\\s+task_\\w+\\s+generation failed: provider_error$`),
    );
    expect(lines.at(-1)).toMatch(/\sgrant\s+\+1000\s+1000\s+-\s+initial grant$/);

    expect(json.code, json.stderr).toBe(0);
    expect(json.json.data.reduce((n: number, e: { amount: number }) => n + e.amount, 0)).toBe(balance);
    expect(
      refunds.stdout
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(["refund", "grant"]);
    expect(page.json).toMatchObject({ object: "list", has_more: true });
    expect(page.json.data).toHaveLength(1);
    expect(recent.json.data).toHaveLength(4);

    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/^error: invalid_argument: --type must be one or more of/);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/^error: invalid_argument: --since must be/);
  });

  it("usage prints day and hour buckets with a total row; bad flags are refused before any request", {
    timeout: 60_000,
  }, async () => {
    const [days, hours, json, badGranularity, tooLong] = await Promise.all([
      runCli(["usage"], env()),
      runCli(["usage", "--granularity", "hour", "--start", "2h"], env()),
      runCli(["usage", "--json"], env()),
      runCli(["usage", "--granularity", "week"], env({ FRAMEGATE_BASE_URL: DEAD })),
      runCli(["usage", "--start", "2026-01-01", "--end", "2026-03-01"], env()),
    ]);
    expect(days.code, days.stderr).toBe(0);
    const lines = days.stdout.trimEnd().split("\n");
    expect(lines[1]).toMatch(/^DAY \(UTC\)\s+CREATED\s+SUCCEEDED\s+FAILED\s+CANCELED\s+CHARGED\s+REFUNDED\s+GRANTED$/);
    expect(lines).toHaveLength(2 + 30 + 1);
    expect(lines[2]).toMatch(/^\d{4}-\d{2}-\d{2}\s+0\s+0\s+0\s+0\s+0\s+0\s+0$/);
    const { totals } = json.json;
    expect(totals).toMatchObject({ tasks_created: 2, tasks_succeeded: 1, tasks_failed: 1, credits_granted: 1000 });
    expect(lines.at(-1)?.split(/\s+/)).toEqual([
      "total",
      ...[2, 1, 1, 0, totals.credits_charged, totals.credits_refunded, 1000].map(String),
    ]);
    expect(hours.code, hours.stderr).toBe(0);
    expect(hours.stdout.split("\n")[2]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:00\s/);

    expect(badGranularity.code).toBe(2);
    expect(badGranularity.stderr).toMatch(/^error: invalid_argument: --granularity must be day or hour/);
    // The range cap is the server's: a 400 with its code, like every API error.
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/^error: validation_failed: Invalid query: end is too far from start/m);
  });

  it("accounts usage reports every account from the local store, per account, provider and refund reason", {
    timeout: 60_000,
  }, async () => {
    const store = { DATA_DIR: f.t.dataDir, ...(await testStoreEnv(f.t.dataDir)) };
    const [text, json, missing] = await Promise.all([
      runCli(["accounts", "usage"], store),
      runCli(["accounts", "usage", "--account", f.accountId, "--granularity", "hour", "--json"], store),
      runCli(["accounts", "usage", "--account", "acct_nope"], store),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${f.accountId}\\s+test\\s+2\\s+1\\s+1\\s+0\\s`, "m"));
    expect(text.stdout).toMatch(/^simulated\s+2\s+1\s+1\s+0\s/m);
    expect(text.stdout).toMatch(/^refunds: 1 \(\d+ credits\)$/m);
    expect(text.stdout).toMatch(/^generation failed: provider_error\s+1\s+\d+$/m);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toMatchObject({ object: "usage", granularity: "hour", account_id: f.accountId });
    expect(json.json.data).toHaveLength(24);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: not_found: Account acct_nope not found\.$/m);
  });
});
