/**
 * Routing across providers, end to end through the public API with the fake Kling and fake fal:
 * failover only before acceptance and never for content_rejected, no failover while a submit may
 * have been accepted, circuit breakers (open, half-open trial), saturation that keeps tasks
 * queued, and TASK_DEADLINE. Each scenario runs on its own fakes and server.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type FakeFal, startFakeFal } from "./fakes/fake-fal.js";
import { type FakeKling, type FakeKlingOptions, startFakeKling } from "./fakes/fake-kling.js";
import { startTestServer, type TestServer } from "./harness.js";
import {
  createGeneration,
  dbTask,
  downloadResult,
  E2E_ENV,
  expectFailedAndRefunded,
  expectSucceededAndCharged,
  falEnv,
  falJobsFor,
  falSubmitsFor,
  klingCreates,
  klingEnv,
  klingTasksFor,
  klingTrafficFor,
  sleep,
  until,
  type Watched,
  watchTask,
} from "./provider-e2e-helpers.js";

interface Env {
  kling: FakeKling;
  fal: FakeFal;
  t: TestServer;
}

const open: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(open.splice(0).map((close) => close()));
});

async function scenario(
  run: (env: Env) => Promise<void>,
  opts: { env?: Record<string, string>; kling?: FakeKlingOptions } = {},
): Promise<void> {
  const kling = await startFakeKling(opts.kling);
  const fal = await startFakeFal();
  const t = await startTestServer({
    ...E2E_ENV,
    ...klingEnv(kling),
    ...falEnv(fal),
    PROVIDERS: "kling,fal",
    ...opts.env,
  });
  const close = async () => {
    await t.close();
    await Promise.all([kling.close(), fal.close()]);
  };
  open.push(close);
  try {
    await run({ kling, fal, t });
  } finally {
    open.splice(open.indexOf(close), 1);
    await close();
  }
}

/** Creates a task with `prompt` (unique per scenario) and waits for it to end. */
async function runTask(
  t: TestServer,
  acct: { key: string },
  prompt: string,
  timeoutMs = 20_000,
): Promise<{ id: string; watched: Watched }> {
  const id = await createGeneration(t, acct.key, prompt, { duration: "5", sound: "false", aspect_ratio: "1:1" });
  return { id, watched: await watchTask(t, acct.key, id, timeoutMs) };
}

async function countByStatus(t: TestServer): Promise<Record<string, number>> {
  const rows = await t.server.store.db
    .selectFrom("tasks")
    .select(["status", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy("status")
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

describe.concurrent("failover before acceptance (PROVIDERS=kling,fal)", () => {
  it.each([
    ["1102 no balance (HTTP 429)", { type: "error", code: 1102, httpStatus: 429 } as const, 1],
    ["1302 rate limit", { type: "error", code: 1302, httpStatus: 429, retryAfter: "30" } as const, 1],
    ["1103 no access (HTTP 403)", { type: "error", code: 1103, httpStatus: 403 } as const, 1],
    ["1004 expired auth, twice", { type: "error", code: 1004, httpStatus: 401 } as const, 2],
  ])("kling refuses with %s: fal runs the task, one submit each", (_what, fault, klingCalls) =>
    scenario(async ({ kling, fal, t }) => {
      kling.script({ on: "create", times: klingCalls, fault });
      const acct = await t.createAccount(100);
      const prompt = `failover ${fault.code}`;
      const { id, watched } = await runTask(t, acct, prompt);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(kling, id)).toHaveLength(klingCalls);
      expect(klingTasksFor(kling, id)).toHaveLength(0);
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(falJobsFor(fal, prompt)).toHaveLength(1);
      const row = await dbTask(t, id);
      expect(row.provider).toBe("fal");
      expect(row.upstream_id).toBe(falJobsFor(fal, prompt)[0]?.requestId);
      expect(row.submit_state).toBeNull();
      expect(Buffer.compare(await downloadResult(watched.final), fal.videoBytes)).toBe(0);
    }),
  );

  it("every provider refuses (kling 1201, fal 422 invalid input): failed invalid_input, refunded once", () =>
    scenario(async ({ kling, fal, t }) => {
      kling.script({ on: "create", fault: { type: "error", code: 1201, httpStatus: 400 } });
      fal.script({
        submit: [
          {
            status: 422,
            body: { detail: [{ loc: ["body", "prompt"], msg: "bad", type: "string_too_long" }] },
          },
        ],
      });
      const acct = await t.createAccount(100);
      const { id, watched } = await runTask(t, acct, "refused everywhere");
      await expectFailedAndRefunded(t, acct, watched, "invalid_input");
      expect(klingCreates(kling, id)).toHaveLength(1);
      expect(falSubmitsFor(fal, "refused everywhere")).toHaveLength(1);
      expect(fal.jobs.size).toBe(0);
    }));
});

describe.concurrent("no failover after acceptance or for content_rejected", () => {
  it("kling 1301 at submit: content_rejected, never sent to fal", () =>
    scenario(async ({ kling, fal, t }) => {
      kling.script({ on: "create", fault: { type: "error", code: 1301, httpStatus: 400 } });
      const acct = await t.createAccount(100);
      const { id, watched } = await runTask(t, acct, "moderated at submit");
      await expectFailedAndRefunded(t, acct, watched, "content_rejected");
      expect(klingCreates(kling, id)).toHaveLength(1);
      expect(fal.requests).toHaveLength(0);
    }));

  it.each([
    ["risk control at task time", "[kling:fail=Failure to pass the risk control system]", "content_rejected"],
    ["a provider failure at task time", "[kling:fail=Image pixel is invalid]", "provider_error"],
    ["a result video that 404s", "[kling:video=404]", "provider_error"],
  ])("kling accepted, then %s: failed, never sent to fal", (_what, directive, reason) =>
    scenario(async ({ kling, fal, t }) => {
      const acct = await t.createAccount(100);
      const { id, watched } = await runTask(t, acct, `${directive} accepted first`);
      await expectFailedAndRefunded(t, acct, watched, reason);
      expect(klingCreates(kling, id)).toHaveLength(1);
      expect(klingTasksFor(kling, id)).toHaveLength(1);
      expect(fal.requests).toHaveLength(0);
      expect((await dbTask(t, id)).provider).toBe("kling");
    }),
  );

  it("a maybe-accepted submit (5xx after commit) is looked up on kling, not handed to fal; found submits keep the circuit closed", () =>
    scenario(
      async ({ kling, fal, t }) => {
        const acct = await t.createAccount(500);
        // Threshold 2: three accepted-then-500 tasks in a row must not open kling's circuit.
        for (let i = 0; i < 3; i++) {
          kling.script({
            on: "create",
            fault: {
              type: "acceptThen",
              answer: { type: "error", code: 5000, httpStatus: 500, retryAfter: "1" },
            },
          });
          const { id, watched } = await runTask(t, acct, `accepted then 500 #${i}`);
          await expectSucceededAndCharged(t, acct, watched);
          expect(klingCreates(kling, id)).toHaveLength(1);
          expect(klingTasksFor(kling, id)).toHaveLength(1);
          expect((await dbTask(t, id)).provider).toBe("kling");
        }
        // A 5000 that did not create anything: looked up (absent), then kling again (still closed).
        kling.script({ on: "create", fault: { type: "error", code: 5000, httpStatus: 500, retryAfter: "1" } });
        const { id, watched } = await runTask(t, acct, "500 before commit");
        await expectSucceededAndCharged(t, acct, watched);
        expect(klingCreates(kling, id)).toHaveLength(2);
        expect(klingTasksFor(kling, id)).toHaveLength(1);
        expect(fal.requests).toHaveLength(0);
      },
      { env: { CIRCUIT_BREAKER_THRESHOLD: "2", CIRCUIT_BREAKER_COOLDOWN_SECONDS: "60" } },
    ));
});

/**
 * The circuit tests' cooldown. A task's retry after a 5000 (Retry-After 1 s) must land inside it,
 * so it fails over rather than taking the half-open trial: on a loaded two-core machine, with
 * graphile-worker polling for delayed jobs, that retry has run up to ~2 s late.
 */
const COOLDOWN_MS = 6000;

describe.concurrent("circuit breaker and saturation", () => {
  it("repeated 5000s open kling's circuit: later tasks go straight to fal; after the cooldown a trial reaches kling", () =>
    scenario(
      async ({ kling, fal, t }) => {
        const acct = await t.createAccount(1000);
        kling.script({
          on: "create",
          times: 2,
          fault: { type: "error", code: 5000, httpStatus: 500, retryAfter: "1" },
        });
        const a = await createGeneration(t, acct.key, "circuit A");
        // A: two 5000s (each looked up by external id first) open the circuit; then fal takes it.
        await until(async () => (await dbTask(t, a)).provider === "fal", "task A on fal", 10_000);
        const secondFailure = klingCreates(kling, a)[1];
        expect(secondFailure?.code).toBe(5000);
        const openedAt = secondFailure?.at ?? 0;

        // B, while the circuit is open: kling is not called at all.
        const before = kling.requests.length;
        const b = await runTask(t, acct, "circuit B");
        await expectSucceededAndCharged(t, acct, b.watched);
        expect(klingTrafficFor(kling, b.id)).toHaveLength(0);
        expect(kling.requests.slice(before).filter((r) => r.endpoint === "create")).toHaveLength(0);
        const bSubmits = falSubmitsFor(fal, "circuit B");
        expect(bSubmits).toHaveLength(1);
        // B was routed (submitted to fal) while the circuit was open; finishing may take longer.
        expect((bSubmits[0]?.at ?? Number.POSITIVE_INFINITY) - openedAt, "B routed inside the cooldown").toBeLessThan(
          COOLDOWN_MS,
        );

        const aDone = await watchTask(t, acct.key, a);
        await expectSucceededAndCharged(t, acct, aDone);
        expect(klingCreates(kling, a)).toHaveLength(2);
        expect(klingTasksFor(kling, a)).toHaveLength(0);
        expect(falSubmitsFor(fal, "circuit A")).toHaveLength(1);
        const lookups = kling.requests.filter((r) => r.endpoint === "query" && r.path.endsWith(`/${a}`));
        expect(lookups.length).toBeGreaterThanOrEqual(2);

        // After CIRCUIT_BREAKER_COOLDOWN_SECONDS: one trial call reaches kling, succeeds, closes it.
        await sleep(Math.max(0, openedAt + COOLDOWN_MS + 300 - Date.now()));
        const c = await runTask(t, acct, "circuit C");
        await expectSucceededAndCharged(t, acct, c.watched);
        expect(klingCreates(kling, c.id)).toHaveLength(1);
        expect((await dbTask(t, c.id)).provider).toBe("kling");
        expect(falSubmitsFor(fal, "circuit C")).toHaveLength(0);
        const d = await runTask(t, acct, "circuit D");
        expect((await dbTask(t, d.id)).provider).toBe("kling");
      },
      { env: { CIRCUIT_BREAKER_THRESHOLD: "2", CIRCUIT_BREAKER_COOLDOWN_SECONDS: String(COOLDOWN_MS / 1000) } },
    ));

  it("a half-open trial that ends in content_rejected does not wedge the circuit", () =>
    scenario(
      async ({ kling, fal, t }) => {
        const acct = await t.createAccount(1000);
        kling.script({ on: "create", fault: { type: "error", code: 5000, httpStatus: 500, retryAfter: "1" } });
        const a = await runTask(t, acct, "wedge A");
        await expectSucceededAndCharged(t, acct, a.watched);
        expect((await dbTask(t, a.id)).provider).toBe("fal");
        const openedAt = klingCreates(kling, a.id)[0]?.at ?? 0;

        await sleep(Math.max(0, openedAt + COOLDOWN_MS + 200 - Date.now()));
        kling.script({ on: "create", fault: { type: "error", code: 1301, httpStatus: 400 } });
        const b = await runTask(t, acct, "wedge B");
        await expectFailedAndRefunded(t, acct, b.watched, "content_rejected");
        expect(klingCreates(kling, b.id)).toHaveLength(1);
        expect(falSubmitsFor(fal, "wedge B")).toHaveLength(0);

        // Kling answered the trial coherently: the next task may try it again.
        const c = await runTask(t, acct, "wedge C");
        await expectSucceededAndCharged(t, acct, c.watched);
        expect(klingCreates(kling, c.id)).toHaveLength(1);
        expect((await dbTask(t, c.id)).provider).toBe("kling");
      },
      { env: { CIRCUIT_BREAKER_THRESHOLD: "1", CIRCUIT_BREAKER_COOLDOWN_SECONDS: String(COOLDOWN_MS / 1000) } },
    ));

  it("KLING_MAX_CONCURRENCY=1 (kling only): 3 tasks wait queued, never more than one processing, all finish", () =>
    scenario(
      async ({ kling, t }) => {
        const acct = await t.createAccount(1000);
        const ids = await Promise.all(
          [1, 2, 3].map((n) => createGeneration(t, acct.key, `[kling:after=150] one at a time ${n}`)),
        );
        let maxProcessing = 0;
        let sawQueuedBehindBusy = false;
        let upstreamMax = 0;
        const done = new Set<string>();
        const deadline = Date.now() + 30_000;
        while (done.size < ids.length) {
          const counts = await countByStatus(t);
          maxProcessing = Math.max(maxProcessing, counts.processing ?? 0);
          upstreamMax = Math.max(upstreamMax, kling.running());
          if ((counts.processing ?? 0) === 1 && (counts.queued ?? 0) >= 1) sawQueuedBehindBusy = true;
          expect(counts.failed ?? 0).toBe(0);
          for (const id of ids) {
            const row = await dbTask(t, id);
            if (row.status === "succeeded") done.add(id);
          }
          if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(counts)}`);
          await sleep(10);
        }
        expect(maxProcessing).toBe(1);
        expect(upstreamMax).toBeLessThanOrEqual(1);
        expect(sawQueuedBehindBusy).toBe(true);
        for (const id of ids) {
          const watched = await watchTask(t, acct.key, id);
          await expectSucceededAndCharged(t, acct, watched);
          expect(klingTasksFor(kling, id)).toHaveLength(1);
        }
        // Our own cap kept every create within Kling's limit: it never had to answer 1303.
        expect(kling.calls("create").filter((r) => r.code === 1303)).toHaveLength(0);
        expect(kling.calls("create")).toHaveLength(3);
      },
      {
        env: { PROVIDERS: "kling", KLING_MAX_CONCURRENCY: "1", WORKER_CONCURRENCY: "4" },
        kling: { concurrencyLimit: 1 },
      },
    ));

  it("Kling's own limit (1303 from concurrencyLimit): the task waits queued instead of failing, then runs", () =>
    scenario(
      async ({ kling, t }) => {
        const acct = await t.createAccount(1000);
        const first = await createGeneration(t, acct.key, "[kling:after=4000] holds the slot");
        await until(async () => (await dbTask(t, first)).status === "processing", "first processing");
        const second = await createGeneration(t, acct.key, "waits for the slot");
        // The call is recorded when it arrives and its code when it is answered.
        await until(() => klingCreates(kling, second)[0]?.code !== undefined, "second create refused");
        expect(klingCreates(kling, second)[0]?.code).toBe(1303);
        // Still queued (not failed) while the slot is busy and a little after.
        for (let i = 0; i < 10; i++) {
          expect((await dbTask(t, second)).status).toBe("queued");
          await sleep(50);
        }
        const w1 = await watchTask(t, acct.key, first);
        const w2 = await watchTask(t, acct.key, second);
        await expectSucceededAndCharged(t, acct, w1);
        await expectSucceededAndCharged(t, acct, w2);
        expect(klingCreates(kling, second).map((r) => r.code)).toEqual([1303, 0]);
        expect(klingTasksFor(kling, second)).toHaveLength(1);
        expect(kling.running()).toBe(0);
      },
      { env: { PROVIDERS: "kling" }, kling: { concurrencyLimit: 1 } },
    ));

  it("TASK_DEADLINE=3s: a task that never finishes upstream fails with timeout, refunded, upstream id kept", () =>
    scenario(
      async ({ kling, t }) => {
        const acct = await t.createAccount(1000);
        kling.script({ on: "create", fault: { type: "outcome", outcome: { manual: true } } });
        const stuck = await createGeneration(t, acct.key, "never finishes");
        await until(async () => (await dbTask(t, stuck)).status === "processing", "processing");
        // A second task that no provider ever accepts (Kling saturated): it times out while queued.
        kling.script({
          on: "create",
          times: Number.POSITIVE_INFINITY,
          fault: { type: "error", code: 1303, httpStatus: 429, retryAfter: "1" },
        });
        const other = await t.createAccount(1000);
        const queued = await createGeneration(t, other.key, "never accepted");

        const w1 = await watchTask(t, acct.key, stuck, 10_000);
        await expectFailedAndRefunded(t, acct, w1, "timeout");
        const kTask = klingTasksFor(kling, stuck)[0];
        // Still running upstream (it never finishes on its own).
        expect(["submitted", "processing"]).toContain(kTask?.status);
        const row = await dbTask(t, stuck);
        expect(row.upstream_id).toBe(`text2video:${kTask?.taskId}`);
        expect(row.error_detail).toContain(String(kTask?.taskId));
        expect(Date.parse(w1.final.completed_at) - Date.parse(w1.final.created_at)).toBeGreaterThanOrEqual(3000);
        expect(klingCreates(kling, stuck)).toHaveLength(1);

        const w2 = await watchTask(t, other.key, queued, 10_000);
        await expectFailedAndRefunded(t, other, w2, "timeout");
        expect(w2.final.started_at).toBeNull();
        expect((await dbTask(t, queued)).upstream_id).toBeNull();
        expect(klingTasksFor(kling, queued)).toHaveLength(0);
      },
      { env: { PROVIDERS: "kling", TASK_DEADLINE: "3s" } },
    ));
});
