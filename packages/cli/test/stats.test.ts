/**
 * `framegate stats` end to end: the operators' snapshot from the local store, as a child process
 * without a TTY, after a task that succeeded and one that failed and was refunded.
 */
import { describe, expect, it } from "vitest";
import { waitForTask } from "../../server/test/harness.js";
import { testStoreEnv } from "../../server/test/test-store.js";
import { formatAge } from "../src/stats-command.js";
import { cliFixture, runCli, TERMINAL_CONTROL } from "./helpers.js";

describe("framegate stats", () => {
  let refunded = 0;
  const f = cliFixture("stats", {
    serverEnv: { RATE_LIMIT_READ_PER_MIN: "0" },
    setup: async ({ t, key }) => {
      for (const prompt of ["a harbour at dawn", "broken [sim:fail]"]) {
        const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
        const task = await waitForTask(t, key, res.body.id);
        if (task.status === "failed") refunded = task.reserved_credits;
      }
    },
  });

  it("prints the queue, the windows' tasks and refunds, providers and endpoints; --json is the document", {
    timeout: 60_000,
  }, async () => {
    const store = { DATA_DIR: f.t.dataDir, ...(await testStoreEnv(f.t.dataDir)) };
    const [text, json] = await Promise.all([runCli(["stats"], store), runCli(["stats", "--json"], store)]);

    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toMatch(TERMINAL_CONTROL);
    expect(text.stdout).toMatch(/^framegate stats at \d{4}-\d\d-\d\dT[\d:.]+Z \(queue: (table|graphile)\)$/m);
    expect(text.stdout).toMatch(/^JOB CLASS\s+WAITING\s+OLDEST\s+RUNNING\s+OLDEST\s+SCHEDULED\s+NEXT DUE IN$/m);
    expect(text.stdout).toMatch(/^generation\s+0\s+-\s+0\s+-\s+0\s+-$/m);
    expect(text.stdout).toMatch(/^webhook\s+0\s+-\s+0\s+-\s+0\s+-$/m);
    for (const window of ["last hour", "last day"]) {
      expect(text.stdout).toMatch(new RegExp(`^${window}\\s+2\\s+0\\s+0\\s+1\\s+1\\s+1\\s+${refunded}$`, "m"));
      expect(text.stdout).toMatch(new RegExp(`^failure reasons, ${window}: provider_error 1$`, "m"));
    }
    // No task processing now; the simulator has no cap.
    expect(text.stdout).toMatch(/^simulated\s+yes\s+1\/2 \(50%\)\s+1\/2 \(50%\)\s+0\/-$/m);
    expect(text.stdout).toMatch(/^disabled webhook endpoints: 0$/m);

    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toMatchObject({
      object: "stats",
      tasks: { last_day: { created: 2, by_status: { succeeded: 1, failed: 1 } } },
      refunds: { last_hour: { count: 1, credits: refunded }, last_day: { count: 1, credits: refunded } },
      webhooks: { disabled_endpoints: { count: 0, recent: [] } },
    });
    // No server process here: no circuit states, and the document says so.
    expect(json.json.providers.circuit_scope).toBeNull();
    expect(json.json.providers.data).toEqual([
      expect.objectContaining({ provider: "simulated", configured: true, circuit: null }),
    ]);
  });

  it("refuses arguments it does not take", async () => {
    const res = await runCli(["stats", "--window", "week"], { DATA_DIR: f.dir });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/unknown option '--window'/);
  });

  it("formats ages for people", () => {
    expect([null, 0.4, 42, 185, 7800, 277_200].map(formatAge)).toEqual(["-", "0s", "42s", "3m05s", "2h10m", "3d5h"]);
  });
});
