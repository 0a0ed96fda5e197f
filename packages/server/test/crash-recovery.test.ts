/**
 * kill -9 in the middle of work (DESIGN §1): the server runs as a real child process, is
 * SIGKILLed while tasks are queued, submitted and rendering, and restarted on the same data
 * directory. Every task must still end exactly once, with its credits settled or refunded
 * exactly once and without being submitted upstream a second time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitForTask } from "./harness.js";
import {
  ChildServer,
  type DbSnapshot,
  expectDownloadableMp4,
  expectLedgerInvariants,
  freePort,
  killAll,
  readDb,
  sleep,
} from "./process-helpers.js";
import { TEST_STORE } from "./test-store.js";

const PRICE = 55;

interface Planned {
  prompt: string;
  params?: Record<string, string>;
  expect: "succeeded" | "failed";
  account: "a" | "b";
}

// Started first and left to reach "processing" before the second batch.
const FIRST: Planned[] = [
  { prompt: "[sim:delay=4] slow lighthouse", expect: "succeeded", account: "a" },
  { prompt: "[sim:delay=2] medium harbour", expect: "succeeded", account: "b" },
  { prompt: "plain river", expect: "succeeded", account: "a" },
  { prompt: "[sim:delay=4] [sim:fail] slow failure", expect: "failed", account: "a" },
];
// Created in one burst right before the kill: most are still queued when the process dies.
const SECOND: Planned[] = [
  { prompt: "plain meadow", expect: "succeeded", account: "a" },
  { prompt: "[sim:fail] quick failure", expect: "failed", account: "b" },
  { prompt: "[sim:delay=2] medium forest", params: { aspect_ratio: "16:9" }, expect: "succeeded", account: "a" },
  { prompt: "[sim:fail] another failure", expect: "failed", account: "a" },
  { prompt: "plain desert with sound", params: { sound: "true" }, expect: "succeeded", account: "b" },
  { prompt: "[sim:delay=4] slow glacier", params: { aspect_ratio: "9:16" }, expect: "succeeded", account: "a" },
];

function describeStates(snapshot: DbSnapshot): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const task of snapshot.tasks) counts[task.status] = (counts[task.status] ?? 0) + 1;
  return counts;
}

// Reuse mode (SIMULATOR_RENDER=reuse) keeps no simulator files for tasks without directives: the
// same kills must leave nothing for it to lose either.
describe.each(["full", "reuse"] as const)("crash recovery (SIGKILL), SIMULATOR_RENDER=%s", (render) => {
  const children: ChildServer[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-crash-"));
  afterAll(async () => {
    await killAll(children);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("finishes every task exactly once after two kills in a row, with balanced credits", {
    timeout: 120_000,
  }, async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = {
      DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: "info",
      JOB_LEASE_SECONDS: "1",
      WORKER_CONCURRENCY: "2",
      SIM_RENDER_CONCURRENCY: "1",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
      SIMULATOR_RENDER: render,
    };
    const start = async () => {
      const child = new ChildServer(url, env);
      children.push(child);
      await child.waitReady();
      return child;
    };

    // --- first process: create work, then kill it mid-flight -------------------------------
    const first = await start();
    const a = await first.createAccount(1000);
    const b = await first.createAccount(300);
    const keyOf = (p: Planned) => (p.account === "a" ? a.key : b.key);
    const create = async (p: Planned) => {
      const res = await first.request("/api/v1/generations", {
        key: keyOf(p),
        json: { model: "kling-2-6", prompt: p.prompt, ...(p.params ? { params: p.params } : {}) },
      });
      expect(res.status, res.text).toBe(202);
      return { ...p, id: res.body.id as string };
    };

    const planned: (Planned & { id: string })[] = [];
    for (const p of FIRST) planned.push(await create(p));
    // Wait until the first batch is submitted upstream (processing), renders under way.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const states = await Promise.all(
        planned.map(async (p) => (await first.request(`/api/v1/generations/${p.id}`, { key: keyOf(p) })).body.status),
      );
      if (states.every((s) => s === "processing")) break;
      if (Date.now() > deadline) throw new Error(`first batch not processing: ${states.join(",")}\n${first.output()}`);
      await sleep(25);
    }
    planned.push(...(await Promise.all(SECOND.map(create))));
    await first.kill();
    expect(first.exit?.signal).toBe("SIGKILL");

    const atKill = await readDb(dataDir);
    const statesAtKill = describeStates(atKill);
    // The kill caught work in progress: nothing of the first batch had finished its render
    // delay, and the task rows, reservations and jobs of every accepted create are durable.
    expect(atKill.tasks).toHaveLength(planned.length);
    expect(statesAtKill.processing ?? 0).toBeGreaterThanOrEqual(1);
    expect(statesAtKill.queued ?? 0).toBeGreaterThanOrEqual(1);
    expect((statesAtKill.succeeded ?? 0) + (statesAtKill.failed ?? 0)).toBeLessThan(planned.length);
    // Every committed state already satisfies the ledger invariants: no half-done transaction.
    expect(expectLedgerInvariants(atKill)).toEqual([]);
    const upstreamAtKill = new Map(atKill.tasks.filter((x) => x.upstream_id).map((x) => [x.id, x]));

    // --- second process: kill again quickly, while it is recovering ---------------------------
    const second = await start();
    await sleep(600);
    await second.kill();
    const atSecondKill = await readDb(dataDir);
    expect(expectLedgerInvariants(atSecondKill)).toEqual([]);
    for (const task of atSecondKill.tasks) {
      const before = upstreamAtKill.get(task.id);
      if (before) {
        // Submitted once: the upstream id and the submit time never change.
        expect(task.upstream_id).toBe(before.upstream_id);
        expect(task.started_at).toBe(before.started_at);
      }
    }
    const upstreamAtSecondKill = new Map(atSecondKill.tasks.filter((x) => x.upstream_id).map((x) => [x.id, x]));

    // --- third process: let it finish everything ---------------------------------------------
    const third = await start();
    const finished = await Promise.all(planned.map((p) => waitForTask(third, keyOf(p), p.id, 60_000)));
    for (const [i, task] of finished.entries()) {
      const p = planned[i] as Planned & { id: string };
      expect(task.status, `${p.prompt}: ${JSON.stringify(task.error)}`).toBe(p.expect);
      if (task.status === "succeeded") {
        expect(task.final_credits).toBe(PRICE);
        expect(await expectDownloadableMp4(task)).toEqual([]);
        expect(task.result.media[0].has_audio).toBe(p.params?.sound === "true");
      } else {
        expect(task.final_credits).toBe(0);
        expect(task.error).toMatchObject({ code: "generation_failed", reason: "provider_error" });
      }
    }

    const expectedBalance = (acct: "a" | "b", initial: number) =>
      initial - PRICE * planned.filter((p) => p.account === acct && p.expect === "succeeded").length;
    for (const [acct, initial, ids] of [
      ["a", 1000, a],
      ["b", 300, b],
    ] as const) {
      const view = await third.admin(`/admin/v1/accounts/${ids.accountId}`);
      expect(view.status).toBe(200);
      expect(view.body.credits).toBe(expectedBalance(acct, initial));
      expect(view.body.credits).toBe(view.body.ledger.ledger_sum);
      const credits = await third.request("/api/v1/credits", { key: ids.key });
      expect(credits.body.current_credits).toBe(view.body.credits);
    }

    // A clean stop, then the whole database is checked.
    third.proc.kill("SIGTERM");
    expect(await third.waitExit(15_000)).toEqual({ code: 0, signal: null });
    const final = await readDb(dataDir, { integrityCheck: true });
    // SQLite only: PostgreSQL has no file-level integrity check (integrity stays unset there).
    if (TEST_STORE === "sqlite") expect(final.integrity).toBe("ok");
    expect(expectLedgerInvariants(final)).toEqual([]);
    expect(final.jobs).toEqual([]);
    const plain = new Set(planned.filter((p) => !p.prompt.includes("[sim:")).map((p) => p.id));
    for (const task of final.tasks) {
      // Reuse mode names the tasks it keeps no files for (no directives) simr_.
      const prefix = render === "reuse" && plain.has(task.id) ? "simr" : "sim";
      expect(task.upstream_id).toBe(`${prefix}_${task.id}`);
      for (const earlier of [upstreamAtKill, upstreamAtSecondKill]) {
        const before = earlier.get(task.id);
        if (before) {
          expect(task.upstream_id).toBe(before.upstream_id);
          expect(task.started_at).toBe(before.started_at);
        }
      }
    }
    const reserves = final.ledger.filter((e) => e.type === "reserve");
    const refunds = final.ledger.filter((e) => e.type === "refund");
    expect(reserves).toHaveLength(planned.length);
    expect(new Set(refunds.map((e) => e.task_id))).toEqual(
      new Set(planned.filter((p) => p.expect === "failed").map((p) => p.id)),
    );
    expect(refunds).toHaveLength(planned.filter((p) => p.expect === "failed").length);
    console.info(
      `crash-recovery (${render}): states at first kill ${JSON.stringify(statesAtKill)}, at second kill ${JSON.stringify(
        describeStates(atSecondKill),
      )}`,
    );
  });
});
