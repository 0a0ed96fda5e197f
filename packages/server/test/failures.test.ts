/**
 * Failure paths (api-contract §5, §10): simulated provider failures, content rejection, slow
 * tasks and timeouts. A failed task returns its 55 credits exactly once, however often (or
 * however concurrently) its finalization runs, and a succeeded task is never refunded.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Queue } from "../src/queue/queue.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";

const PRICE = 55;
const ORDER = ["queued", "processing", "succeeded", "failed"];

interface Watched {
  /** Distinct statuses in the order seen. */
  history: string[];
  /** When each status was first seen (ms since epoch, local clock). */
  seenAt: Record<string, number>;
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  final: any;
}

/** Polls a task until it is terminal, recording every status it shows on the way. */
async function watch(t: TestServer, key: string, id: string, timeoutMs = 30_000): Promise<Watched> {
  const history: string[] = [];
  const seenAt: Record<string, number> = {};
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.request(`/api/v1/generations/${id}`, { key });
    if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${res.text}`);
    const status: string = res.body.status;
    if (history.at(-1) !== status) {
      history.push(status);
      seenAt[status] ??= Date.now();
    }
    if (status === "succeeded" || status === "failed") return { history, seenAt, final: res.body };
    if (Date.now() > deadline) throw new Error(`task ${id} still ${status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

/** The statuses seen must follow the lifecycle order, never going back. */
function expectForwardOnly(history: string[], terminal: "succeeded" | "failed") {
  const ranks = history.map((s) => (s === "failed" ? 2 : ORDER.indexOf(s)));
  expect(ranks.every((r) => r >= 0)).toBe(true);
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  expect(new Set(history).size).toBe(history.length);
  expect(history.at(-1)).toBe(terminal);
}

async function create(t: TestServer, key: string, prompt: string) {
  const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toMatchObject({ status: "queued", reserved_credits: PRICE, final_credits: 0 });
  return res.body as { id: string };
}

async function balance(t: TestServer, key: string): Promise<number> {
  const res = await t.request("/api/v1/credits", { key });
  expect(res.status).toBe(200);
  return res.body.current_credits;
}

async function ledger(t: TestServer, accountId: string) {
  const res = await t.admin(`/admin/v1/accounts/${accountId}`);
  expect(res.status).toBe(200);
  expect(res.body.credits).toBe(res.body.ledger.ledger_sum);
  return res.body as { credits: number; ledger: Record<string, number> };
}

async function ledgerRows(t: TestServer, taskId: string) {
  return t.server.store.db
    .selectFrom("ledger_entries")
    .selectAll()
    .where("task_id", "=", taskId)
    .orderBy("created_at")
    .execute();
}

function worker(t: TestServer) {
  const w = t.server.worker;
  if (!w) throw new Error("this server runs no worker");
  return w;
}

/** A failed task after its refund: status, error and credits as the contract says. */
function expectFailed(task: Watched["final"], reason: string) {
  expect(task).toMatchObject({
    status: "failed",
    reserved_credits: PRICE,
    final_credits: 0,
    result: null,
    error: { code: "generation_failed", reason, message: expect.any(String) },
  });
  expect(Object.keys(task.error).sort()).toEqual(["code", "message", "reason"]);
  expect(task.error.message.length).toBeGreaterThan(0);
  expect(task.started_at).toEqual(expect.any(String));
  expect(task.completed_at).toEqual(expect.any(String));
  expect(task.updated_at).toBe(task.completed_at);
}

describe("failures with the default task timeout", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0" });
  });
  afterAll(() => t?.close());

  it("a poll that finds the task finished finalizes in its own job: no finalize job is added", async () => {
    // The worker's queue, watched for what it is asked to add.
    const queue = (worker(t) as unknown as { deps: { queue: Queue } }).deps.queue;
    const enqueue = vi.spyOn(queue, "enqueue");
    try {
      const { key } = await t.createAccount(200);
      const ok = await create(t, key, "A quiet harbour at dawn");
      const broken = await create(t, key, "A broken render [sim:fail]");
      expect((await watch(t, key, ok.id)).final.status).toBe("succeeded");
      expect((await watch(t, key, broken.id)).final.status).toBe("failed");
      for (const id of [ok.id, broken.id]) {
        const kinds = enqueue.mock.calls.filter(([, job]) => job.payload.taskId === id).map(([, job]) => job.kind);
        expect(kinds, id).toContain("generation.poll");
        expect(kinds, id).not.toContain("generation.finalize");
      }
    } finally {
      enqueue.mockRestore();
    }
  });

  it("[sim:fail] fails with provider_error and refunds exactly once, however often finalize runs", async () => {
    const { key, accountId } = await t.createAccount(100);
    const task = await create(t, key, "A broken render [sim:fail]");
    expect(await balance(t, key)).toBe(100 - PRICE);

    const watched = await watch(t, key, task.id);
    expectForwardOnly(watched.history, "failed");
    // `queued` may already be over at the first look on a busy machine.
    expect(watched.history.slice(-2)).toEqual(["processing", "failed"]);
    expectFailed(watched.final, "provider_error");

    expect(await balance(t, key)).toBe(100);
    const after = await ledger(t, accountId);
    expect(after.credits).toBe(100);
    expect(after.ledger).toMatchObject({ granted: 100, reserved: PRICE, refunded: PRICE, released: 0 });
    const rows = await ledgerRows(t, task.id);
    expect(rows.filter((r) => r.type === "refund")).toHaveLength(1);
    expect(rows.filter((r) => r.type === "reserve")).toHaveLength(1);
    expect(rows.map((r) => r.amount).sort((a, b) => a - b)).toEqual([-PRICE, PRICE]);

    // A redelivered finalize job, twice in a row and then several at once.
    const payload = { taskId: task.id, outcome: "failed" as const, reason: "provider_error" as const, message: "x" };
    await worker(t).finalize(payload);
    await worker(t).finalize(payload);
    await Promise.all([
      worker(t).finalize(payload),
      worker(t).finalize(payload),
      worker(t).finalize({ ...payload, reason: "timeout" as const }),
    ]);

    expect(await balance(t, key)).toBe(100);
    expect(await ledger(t, accountId)).toEqual(after);
    expect(await ledgerRows(t, task.id)).toEqual(rows);
    const again = await t.request(`/api/v1/generations/${task.id}`, { key });
    expect(again.body).toEqual(watched.final);
  });

  it("[sim:reject] fails with content_rejected and refunds", async () => {
    const { key, accountId } = await t.createAccount(PRICE);
    const task = await create(t, key, "Something the policy refuses [sim:reject]");
    expect(await balance(t, key)).toBe(0);

    const watched = await watch(t, key, task.id);
    expectForwardOnly(watched.history, "failed");
    expectFailed(watched.final, "content_rejected");

    expect(await balance(t, key)).toBe(PRICE);
    const summary = await ledger(t, accountId);
    expect(summary.ledger).toMatchObject({ granted: PRICE, reserved: PRICE, refunded: PRICE });
    const refunds = (await ledgerRows(t, task.id)).filter((r) => r.type === "refund");
    expect(refunds).toHaveLength(1);
    expect(refunds[0]?.amount).toBe(PRICE);
    // The refunded credits are spendable again.
    const retry = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: "retry" } });
    expect(retry.status).toBe(202);
  });

  it("[sim:delay=2] stays processing for about 2 s, then succeeds", async () => {
    const { key, accountId } = await t.createAccount(100);
    const task = await create(t, key, "Take your time [sim:delay=2]");
    const watched = await watch(t, key, task.id);
    expectForwardOnly(watched.history, "succeeded");
    // `queued` may already be over at the first look on a busy machine.
    expect(watched.history.slice(-2)).toEqual(["processing", "succeeded"]);
    const final = watched.final;
    expect(final).toMatchObject({ status: "succeeded", final_credits: PRICE, error: null });
    const processingMs = Date.parse(final.completed_at) - Date.parse(final.started_at);
    expect(processingMs).toBeGreaterThanOrEqual(1800);
    expect(processingMs).toBeLessThan(10_000);
    // Observed from outside too: processing was visible for most of the delay.
    const seenProcessing = (watched.seenAt.succeeded ?? 0) - (watched.seenAt.processing ?? Date.now());
    expect(seenProcessing).toBeGreaterThanOrEqual(1000);
    expect(await balance(t, key)).toBe(100 - PRICE);

    // A late "failed" finalize for a succeeded task must not refund or change it.
    const summary = await ledger(t, accountId);
    const rows = await ledgerRows(t, task.id);
    const w = worker(t);
    await w.finalize({ taskId: task.id, outcome: "failed", reason: "provider_error", message: "x" });
    await Promise.all([
      w.finalize({ taskId: task.id, outcome: "failed", reason: "provider_error", message: "x" }),
      w.finalize({ taskId: task.id, outcome: "failed", reason: "timeout", message: "x" }),
    ]);
    expect(await balance(t, key)).toBe(100 - PRICE);
    expect(await ledger(t, accountId)).toEqual(summary);
    const rowsAfter = await ledgerRows(t, task.id);
    expect(rowsAfter).toEqual(rows);
    expect(rowsAfter.filter((r) => r.type === "refund")).toHaveLength(0);
    const again = await t.request(`/api/v1/generations/${task.id}`, { key });
    expect(again.body).toEqual(final);
  });

  it("refunds once when several finalizations race on a task that is still processing", async () => {
    const { key, accountId } = await t.createAccount(100);
    const task = await create(t, key, "Slow one [sim:delay=30]");
    // Wait until the worker has submitted it.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await t.request(`/api/v1/generations/${task.id}`, { key });
      if (res.body.status === "processing") break;
      expect(res.body.status).toBe("queued");
      if (Date.now() > deadline) throw new Error("task never started");
      await new Promise((r) => setTimeout(r, 40));
    }
    const w = worker(t);
    const payload = { taskId: task.id, outcome: "failed" as const, reason: "provider_error" as const, message: "x" };
    await Promise.all([w.finalize(payload), w.finalize(payload), w.finalize(payload), w.finalize(payload)]);

    const res = await t.request(`/api/v1/generations/${task.id}`, { key });
    expectFailed(res.body, "provider_error");
    expect(await balance(t, key)).toBe(100);
    const summary = await ledger(t, accountId);
    expect(summary.ledger).toMatchObject({ reserved: PRICE, refunded: PRICE, released: 0 });
    const rows = await ledgerRows(t, task.id);
    expect(rows.filter((r) => r.type === "refund")).toHaveLength(1);

    // The worker's own pending poll for the task finds it failed and leaves it alone.
    await new Promise((r) => setTimeout(r, 1500));
    const later = await t.request(`/api/v1/generations/${task.id}`, { key });
    expect(later.body).toEqual(res.body);
    expect(await ledgerRows(t, task.id)).toEqual(rows);
    expect(await ledger(t, accountId)).toEqual(summary);
  });
});

describe("failures with TASK_DEADLINE=1s", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0", TASK_DEADLINE: "1s" });
  });
  afterAll(() => t?.close());

  it("[sim:delay=30] fails with reason timeout and is refunded", async () => {
    const { key, accountId } = await t.createAccount(100);
    const task = await create(t, key, "Never finishes in time [sim:delay=30]");
    const started = Date.now();
    const watched = await watch(t, key, task.id, 20_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    expectForwardOnly(watched.history, "failed");
    // The create answered `queued`; a busy machine may move it on before the first look.
    expect(watched.history.slice(-2)).toEqual(["processing", "failed"]);
    expectFailed(watched.final, "timeout");
    const ranFor = Date.parse(watched.final.completed_at) - Date.parse(watched.final.started_at);
    expect(ranFor).toBeGreaterThanOrEqual(1000);

    expect(await balance(t, key)).toBe(100);
    const summary = await ledger(t, accountId);
    expect(summary.ledger).toMatchObject({ reserved: PRICE, refunded: PRICE });
    expect((await ledgerRows(t, task.id)).filter((r) => r.type === "refund")).toHaveLength(1);

    // A late success report for the timed-out task changes nothing.
    await worker(t).finalize({
      taskId: task.id,
      outcome: "succeeded",
      media: [{ kind: "file", path: "/nonexistent/video.mp4", mimeType: "video/mp4" }],
    });
    const again = await t.request(`/api/v1/generations/${task.id}`, { key });
    expect(again.body).toEqual(watched.final);
    expect(await ledger(t, accountId)).toEqual(summary);
  });
});

describe("operator view of a task", () => {
  it("shows provider, upstream id and the provider's failure detail, admin token only", async () => {
    const t = await startTestServer();
    try {
      const { key } = await t.createAccount(100);
      const created = await t.request("/api/v1/generations", {
        key,
        json: { model: "kling-2-6", prompt: "boom [sim:fail]" },
      });
      const done = await waitForTask(t, key, created.body.id);
      expect(done.error.message).not.toContain("sim:fail");
      const view = await t.admin(`/admin/v1/tasks/${created.body.id}`);
      expect(view.status).toBe(200);
      expect(view.body.task.id).toBe(created.body.id);
      expect(view.body.provider).toBe("simulated");
      expect(view.body.upstream_id).toBe(`sim_${created.body.id}`);
      expect(view.body.error_detail).toContain("[sim:fail]");
      expect((await t.request(`/admin/v1/tasks/${created.body.id}`, { key })).status).toBe(401);
      expect((await t.admin("/admin/v1/tasks/task_missing")).status).toBe(404);
    } finally {
      await t.close();
    }
  });
});
