/**
 * POST /api/v1/generations/{id}/cancel, through the public API: a queued task ends at once as
 * failed/canceled and is refunded once; a processing one is cancelled upstream where the provider
 * can (the simulator, fal while IN_QUEUE) and left alone where it cannot (fal IN_PROGRESS,
 * Kling); finished tasks, repeated cancels and other accounts' tasks change nothing. Then the
 * race: a cancel against a worker submitting the same task, 50 times.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CancelService } from "../src/generations/cancel.js";
import { FairShare } from "../src/generations/fair-share.js";
import { GenerationWorker } from "../src/generations/worker.js";
import { createLogger } from "../src/logger.js";
import type { CancelOutcome, Provider, ProviderTask } from "../src/providers/provider.js";
import { ProviderRouter } from "../src/providers/router.js";
import { TableQueue } from "../src/queue/table-queue.js";
import type { UrlSigner } from "../src/storage/signed-urls.js";
import type { Db } from "../src/store/db.js";
import { systemClock } from "../src/util/clock.js";
import { type FakeFal, startFakeFal } from "./fakes/fake-fal.js";
import { type FakeKling, startFakeKling } from "./fakes/fake-kling.js";
import { startTestServer, type TestServer } from "./harness.js";
import {
  createGeneration,
  dbTask,
  E2E_ENV,
  expectLedgerBalanced,
  falEnv,
  falJobsFor,
  klingEnv,
  klingTasksFor,
  ledgerRows,
  PRICE,
  sleep,
  uniquePrompt,
  until,
} from "./provider-e2e-helpers.js";

const log = createLogger("silent");
const CREDITS = 1000;

type Requester = Pick<TestServer, "request">;

const cancel = (t: Requester, key: string, id: string) =>
  t.request(`/api/v1/generations/${id}/cancel`, { key, method: "POST" });

async function refunds(t: TestServer, taskId: string): Promise<number> {
  return (await ledgerRows(t, taskId)).filter((r) => r.type === "refund").length;
}

async function events(t: TestServer, taskId: string) {
  return t.server.store.db
    .selectFrom("webhook_events")
    .select(["type", "payload"])
    .where("task_id", "=", taskId)
    .execute();
}

async function statusOf(t: TestServer, key: string, id: string) {
  const res = await t.request(`/api/v1/generations/${id}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** A cancelled task as every reader sees it: failed/canceled, refunded once, its event recorded. */
async function expectCanceled(t: TestServer, acct: { key: string; accountId: string }, id: string) {
  const task = await statusOf(t, acct.key, id);
  expect(task).toMatchObject({
    status: "failed",
    final_credits: 0,
    result: null,
    error: { code: "generation_failed", reason: "canceled", message: "The generation was canceled." },
  });
  expect(task.completed_at).not.toBeNull();
  const rows = await ledgerRows(t, id);
  expect(rows.filter((r) => r.type === "refund").map((r) => r.amount)).toEqual([PRICE]);
  expect(rows.filter((r) => r.type === "reserve")).toHaveLength(1);
  const recorded = await events(t, id);
  expect(recorded.map((e) => e.type)).toEqual(["generation.failed"]);
  expect(JSON.parse(recorded[0]?.payload as string).data).toMatchObject({ id, error: { reason: "canceled" } });
  await expectLedgerBalanced(t, acct.accountId);
}

describe("cancel a queued task (no worker runs here)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...E2E_ENV, WORKER_CONCURRENCY: "0" });
  });
  afterAll(() => t?.close());

  it("ends it at once as failed/canceled, refunded once; a second cancel is 409 and changes nothing", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "never submitted");
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id, object: "generation", status: "failed", error: { reason: "canceled" } });
    // The answer is the task as GET returns it.
    expect(res.body).toEqual(await statusOf(t, acct.key, id));
    await expectCanceled(t, acct, id);
    expect((await t.request("/api/v1/credits", { key: acct.key })).body.current_credits).toBe(CREDITS);

    const again = await cancel(t, acct.key, id);
    expect(again.status, again.text).toBe(409);
    expect(again.body.error).toMatchObject({ code: "not_cancelable" });
    expect(again.body.error.message).toMatch(/already failed/);
    await expectCanceled(t, acct, id);
    // The submit job that was queued for it finds it ended.
    const task = await dbTask(t, id);
    expect(task.submit_state).toBeNull();
    expect(task.provider).toBeNull();
  });

  it("concurrent cancels of one task: one refund", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "cancelled many times at once");
    const answers = await Promise.all(Array.from({ length: 8 }, () => cancel(t, acct.key, id)));
    const codes = answers.map((a) => a.status).sort();
    expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(1);
    expect(
      codes.every((c) => c === 200 || c === 409),
      JSON.stringify(codes),
    ).toBe(true);
    await expectCanceled(t, acct, id);
  });

  it("another account's task is not_found and stays queued; unknown ids too", async () => {
    const owner = await t.createAccount(CREDITS);
    const other = await t.createAccount(CREDITS);
    const id = await createGeneration(t, owner.key, "not yours");
    const res = await cancel(t, other.key, id);
    expect(res.status, res.text).toBe(404);
    expect(res.body.error.code).toBe("not_found");
    expect((await cancel(t, other.key, "task_doesnotexist")).status).toBe(404);
    expect((await statusOf(t, owner.key, id)).status).toBe("queued");
    expect(await refunds(t, id)).toBe(0);
    expect(await events(t, id)).toHaveLength(0);
  });

  it("needs generations:create; a read-only key gets 403 and nothing changes", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "read-only key");
    const reader = await t.admin(`/admin/v1/accounts/${acct.accountId}/keys`, {
      json: { name: "reader", scopes: ["generations:read"] },
    });
    expect(reader.status, reader.text).toBe(201);
    const res = await cancel(t, reader.body.key, id);
    expect(res.status, res.text).toBe(403);
    expect(res.body.error.code).toBe("api_scope_denied");
    expect((await statusOf(t, acct.key, id)).status).toBe("queued");
    expect((await t.request(`/api/v1/generations/${id}/cancel`, { method: "POST" })).status).toBe(401);
    expect((await t.request(`/api/v1/generations/${id}/cancel`, { key: acct.key })).status).toBe(405);
  });
});

describe("cancel on the simulator", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...E2E_ENV });
  });
  afterAll(() => t?.close());

  it("processing: cancelled upstream, failed/canceled and refunded; later polls change nothing", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "[sim:delay=60] a long render");
    await until(async () => (await statusOf(t, acct.key, id)).status === "processing", "processing");
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: "failed", error: { reason: "canceled" } });
    expect(res.body.started_at).not.toBeNull();
    // Polls were due every 50-150 ms: give them time to (not) act on the cancelled task.
    await sleep(500);
    await expectCanceled(t, acct, id);
    expect((await cancel(t, acct.key, id)).status).toBe(409);
  });

  it("succeeded: 409 not_cancelable, still succeeded and charged", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "quick");
    await until(async () => (await statusOf(t, acct.key, id)).status === "succeeded", "succeeded", 20_000);
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(409);
    expect(res.body.error).toMatchObject({ code: "not_cancelable" });
    expect(res.body.error.message).toMatch(/already succeeded/);
    const task = await statusOf(t, acct.key, id);
    expect(task).toMatchObject({ status: "succeeded", final_credits: PRICE });
    expect(await refunds(t, id)).toBe(0);
  });
});

describe("cancel hands the freed slot on", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ...E2E_ENV, ACCOUNT_MAX_RUNNING_TASKS: "1" });
  });
  afterAll(() => t?.close());

  it("cancelling the account's running task starts its waiting one at once, not at its wait retry", async () => {
    const acct = await t.createAccount(CREDITS);
    const running = await createGeneration(t, acct.key, "[sim:delay=60] holds the only slot");
    await until(async () => (await statusOf(t, acct.key, running)).status === "processing", "the first processing");
    const waiting = await createGeneration(t, acct.key, "[sim:delay=60] waits for the slot");
    // It waits for the account's slot (its retry comes 10-20 s later unless a finish wakes it).
    await until(
      async () => (await dbTask(t, waiting)).submit_state?.includes('"waitingFor":"account_limit"') ?? false,
      "the second to wait for the account's slot",
    );
    expect((await cancel(t, acct.key, running)).status).toBe(200);
    await until(
      async () => (await statusOf(t, acct.key, waiting)).status === "processing",
      "the waiting task submitted after the cancel",
      8_000,
    );
  });
});

describe("cancel on fal", () => {
  let fal: FakeFal;
  let t: TestServer;
  beforeAll(async () => {
    fal = await startFakeFal();
    t = await startTestServer({ ...E2E_ENV, ...falEnv(fal), PROVIDERS: "fal" });
  });
  afterAll(async () => {
    await t?.close();
    await fal?.close();
  });

  it("IN_QUEUE at fal: the request is cancelled there, the task failed/canceled and refunded", async () => {
    fal.script({ jobs: [{ queuedPolls: 100_000 }] });
    const acct = await t.createAccount(CREDITS);
    const prompt = uniquePrompt("waits in fal's queue");
    const id = await createGeneration(t, acct.key, prompt);
    await until(async () => (await statusOf(t, acct.key, id)).status === "processing", "processing");
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(200);
    const [job] = falJobsFor(fal, prompt);
    expect(job?.cancelled).toBe(true);
    const cancels = fal.requestsTo("cancel").filter((r) => r.path.includes(job?.requestId as string));
    expect(cancels.map((r) => r.method)).toEqual(["PUT"]);
    expect(res.text).not.toContain(job?.requestId as string);
    await sleep(300);
    await expectCanceled(t, acct, id);
  });

  it("IN_PROGRESS at fal: 409 not_cancelable, no cancel sent, the task runs on and is charged", async () => {
    fal.script({ jobs: [{ queuedPolls: 0, inProgressPolls: 100_000 }] });
    const acct = await t.createAccount(CREDITS);
    const prompt = uniquePrompt("already rendering at fal");
    const id = await createGeneration(t, acct.key, prompt);
    await until(async () => (await statusOf(t, acct.key, id)).status === "processing", "processing");
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(409);
    expect(res.body.error).toMatchObject({ code: "not_cancelable" });
    expect(res.body.error.message).not.toMatch(/fal/i);
    const [job] = falJobsFor(fal, prompt);
    expect(fal.requestsTo("cancel").filter((r) => r.path.includes(job?.requestId as string))).toHaveLength(0);
    expect((await statusOf(t, acct.key, id)).status).toBe("processing");
    expect(await refunds(t, id)).toBe(0);
    // Untouched: when fal finishes, the task succeeds as usual.
    (job as { plan: { inProgressPolls: number } }).plan.inProgressPolls = 0;
    await until(async () => (await statusOf(t, acct.key, id)).status === "succeeded", "succeeded", 20_000);
    expect(await refunds(t, id)).toBe(0);
    await expectLedgerBalanced(t, acct.accountId);
  });
});

describe("cancel on Kling (no cancel upstream)", () => {
  let kling: FakeKling;
  let t: TestServer;
  beforeAll(async () => {
    kling = await startFakeKling();
    t = await startTestServer({ ...E2E_ENV, ...klingEnv(kling), PROVIDERS: "kling", KLING_MODE: "std" });
  });
  afterAll(async () => {
    await t?.close();
    await kling?.close();
  });

  it("processing: 409 not_cancelable and the task is untouched", async () => {
    const acct = await t.createAccount(CREDITS);
    const id = await createGeneration(t, acct.key, "[kling:after=60000] a long one");
    await until(async () => (await statusOf(t, acct.key, id)).status === "processing", "processing");
    const before = await dbTask(t, id);
    const res = await cancel(t, acct.key, id);
    expect(res.status, res.text).toBe(409);
    expect(res.body.error).toMatchObject({ code: "not_cancelable" });
    expect(res.body.error.message).not.toMatch(/kling/i);
    const after = await dbTask(t, id);
    expect(after).toMatchObject({ status: "processing", upstream_id: before.upstream_id, completed_at: null });
    expect(await refunds(t, id)).toBe(0);
    expect(klingTasksFor(kling, id)).toHaveLength(1);
  });
});

/** A provider that records its submits (each takes a few ms, like a request) and may cancel. */
function racingProvider(opts: { cancel?: CancelOutcome; submitGate?: Promise<void> } = {}) {
  const submits: string[] = [];
  const provider: Provider = {
    name: "racer",
    async submit(task: ProviderTask) {
      submits.push(task.taskId);
      await (opts.submitGate ?? sleep(Math.random() * 4));
      return { upstreamId: `up_${task.taskId}` };
    },
    async poll() {
      return { state: "pending" };
    },
    ...(opts.cancel ? { cancel: async () => opts.cancel as CancelOutcome } : {}),
  };
  return { provider, submits };
}

/** A worker and a cancel service on the server's store with `provider` as the only upstream. */
function sideBySide(t: TestServer, provider: Provider, submitSettleMs?: number) {
  const db: Db = t.server.store.db;
  const router = new ProviderRouter(db, {
    chain: [provider.name],
    providers: new Map([[provider.name, provider]]),
    maxConcurrency: {},
    breaker: { threshold: 1000, cooldownMs: 60_000 },
    now: () => Date.now(),
  });
  // Never started: it only stores the poll jobs the submits add.
  const queue = new TableQueue(db, systemClock, log, { leaseMs: 5000, pollIntervalMs: 20 });
  const fairShare = new FairShare(queue, 10_000);
  const signer = { signMediaUrl: () => "http://127.0.0.1/unused" } as unknown as UrlSigner;
  const worker = new GenerationWorker({
    db,
    clock: systemClock,
    queue,
    storage: t.server.storage,
    signer,
    log,
    router,
    taskDeadlineMs: 3_600_000,
    resultRetentionMs: 3_600_000,
    mirror: { guard: {} as never, maxBytes: 1, timeoutMs: 1 },
    fairShare,
  });
  const cancels = new CancelService({
    db,
    clock: systemClock,
    signer,
    queue,
    router,
    fairShare,
    log,
    ...(submitSettleMs !== undefined ? { submitSettleMs } : {}),
  });
  return { worker, cancels };
}

describe("cancel against a submit of the same task", () => {
  let t: TestServer;
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    // No worker in the server: the tests run the submits themselves.
    t = await startTestServer({ ...E2E_ENV, WORKER_CONCURRENCY: "0" });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(() => t?.close());

  it("50 races: never both submitted upstream and refunded, at most one refund, ledger balanced", async () => {
    const acct = await t.createAccount(100 * PRICE);
    const { provider, submits } = racingProvider();
    const { worker } = sideBySide(t, provider);
    const outcomes = { canceledBeforeSubmit: 0, submittedThen409: 0 };
    for (let i = 0; i < 50; i++) {
      const id = await createGeneration(t, acct.key, `race ${i}`);
      // Start both within a few ms of each other, in either order (the cancel goes over HTTP,
      // so the submit starts a little later to give both a chance).
      const [, answer] = await Promise.all([
        sleep(Math.random() * 8).then(() => worker.submit(id)),
        sleep(Math.random() * 2).then(() => cancel(t, acct.key, id)),
      ]);
      const submitted = submits.filter((s) => s === id).length;
      const refunded = await refunds(t, id);
      const task = await dbTask(t, id);
      expect(submitted, `task ${i} submitted more than once`).toBeLessThanOrEqual(1);
      expect(refunded, `task ${i} refunded more than once`).toBeLessThanOrEqual(1);
      expect(submitted === 1 && refunded === 1, `task ${i} both submitted and refunded`).toBe(false);
      if (answer.status === 200) {
        expect(task).toMatchObject({ status: "failed", error_reason: "canceled" });
        expect([submitted, refunded]).toEqual([0, 1]);
        outcomes.canceledBeforeSubmit++;
      } else {
        // The submit won: the racer cannot cancel upstream (the server does not know it).
        expect(answer.status, answer.text).toBe(409);
        expect(answer.body.error.code).toBe("not_cancelable");
        expect(task).toMatchObject({ status: "processing", upstream_id: `up_${id}` });
        expect([submitted, refunded]).toEqual([1, 0]);
        outcomes.submittedThen409++;
      }
      // The submit job of a cancelled task, run again, does nothing.
      await worker.submit(id);
      expect(submits.filter((s) => s === id)).toHaveLength(submitted);
    }
    console.log(`cancel races (50): ${JSON.stringify(outcomes)}`);
    const credits = await expectLedgerBalanced(t, acct.accountId);
    expect(credits).toBe(100 * PRICE - outcomes.submittedThen409 * PRICE);
  });

  it("a cancel that commits after the submit read the task: the submit claims nothing and calls no provider", async () => {
    const acct = await t.createAccount(CREDITS);
    const { provider, submits } = racingProvider();
    const { worker } = sideBySide(t, provider);
    const id = await createGeneration(t, acct.key, "cancelled under the submit's feet");
    // The narrowest window of the race, made certain: the cancel lands right after the submit
    // read the task as queued and before its claim transaction.
    const internals = worker as unknown as { loadTask(taskId: string): Promise<unknown> };
    const loadTask = internals.loadTask.bind(worker);
    let answer: Awaited<ReturnType<typeof cancel>> | undefined;
    internals.loadTask = async (taskId) => {
      const row = await loadTask(taskId);
      answer = await cancel(t, acct.key, id);
      return row;
    };
    await worker.submit(id);
    expect(answer?.status, answer?.text).toBe(200);
    expect(submits).toEqual([]);
    expect(await dbTask(t, id)).toMatchObject({ status: "failed", error_reason: "canceled", submit_state: null });
    expect(await refunds(t, id)).toBe(1);
    await expectLedgerBalanced(t, acct.accountId);
  });

  it("a submit in flight: the cancel waits for it, then cancels upstream; past the wait it is a 409 to retry", async () => {
    const acct = await t.createAccount(CREDITS);
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { provider, submits } = racingProvider({ cancel: "canceled", submitGate: gate });
    const short = sideBySide(t, provider, 200);
    const patient = sideBySide(t, provider);

    const id = await createGeneration(t, acct.key, "held in its submit");
    const submitting = short.worker.submit(id);
    await until(() => submits.includes(id), "the submit to reach the provider");
    // The submit holds the task (submit_state.uncertain): a short wait runs out.
    const early = await short.cancels.cancel(acct.accountId, id).catch((error: unknown) => error);
    expect(early).toMatchObject({ code: "not_cancelable", headers: { "Retry-After": "2" } });
    expect((early as Error).message).toMatch(/being submitted/);
    expect(await dbTask(t, id)).toMatchObject({ status: "queued" });
    expect(await refunds(t, id)).toBe(0);

    // A cancel that waits long enough sees the submit land and cancels upstream.
    const waiting = patient.cancels.cancel(acct.accountId, id);
    await sleep(100);
    release();
    await submitting;
    const task = await waiting;
    expect(task).toMatchObject({ status: "failed", error: { reason: "canceled" } });
    expect(task.started_at).not.toBeNull();
    expect(submits.filter((s) => s === id)).toHaveLength(1);
    expect(await refunds(t, id)).toBe(1);
    await expectLedgerBalanced(t, acct.accountId);
  });

  it("an upstream that cannot be reached: 503, the task untouched", async () => {
    const acct = await t.createAccount(CREDITS);
    const { provider } = racingProvider();
    provider.cancel = async () => {
      throw new Error("connection refused");
    };
    const { worker, cancels } = sideBySide(t, provider);
    const id = await createGeneration(t, acct.key, "unreachable upstream");
    await worker.submit(id);
    expect((await dbTask(t, id)).status).toBe("processing");
    const error = await cancels.cancel(acct.accountId, id).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "service_unavailable", status: 503 });
    expect(await dbTask(t, id)).toMatchObject({ status: "processing", completed_at: null });
    expect(await refunds(t, id)).toBe(0);
  });
});
