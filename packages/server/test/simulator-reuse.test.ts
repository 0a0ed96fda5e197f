/**
 * SIMULATOR_RENDER=reuse through the whole server: tasks end with real, downloadable MP4s of the
 * shape they asked for, each task's result is its own stored file, directives still fail and
 * refund, and tasks are polled when the simulator says they are ready, not after
 * POLL_FIRST_DELAY_MS (set here far beyond the test's patience): a result ready at once is polled
 * and finalized in the submit's own job.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Queue } from "../src/queue/queue.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { expectDownloadableMp4 } from "./process-helpers.js";

const PRICE = 55;

describe("SIMULATOR_RENDER=reuse end to end", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ SIMULATOR_RENDER: "reuse", POLL_FIRST_DELAY_MS: "600000" });
  });
  afterAll(() => t.close());

  it("finishes tasks with valid MP4s of their shape, one stored result each, and settles credits", async () => {
    const { key } = await t.createAccount(1000);
    const create = async (prompt: string, params: Record<string, string>) => {
      const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt, params } });
      expect(res.status, res.text).toBe(202);
      return res.body.id as string;
    };
    const plans: { prompt: string; params: Record<string, string>; expect: string }[] = [
      { prompt: "first wide one", params: { aspect_ratio: "16:9" }, expect: "succeeded" },
      { prompt: "second wide one", params: { aspect_ratio: "16:9" }, expect: "succeeded" },
      { prompt: "tall with sound", params: { aspect_ratio: "9:16", sound: "true" }, expect: "succeeded" },
      { prompt: "[sim:fail] broken", params: {}, expect: "failed" },
      { prompt: "[sim:delay=1] a little later", params: { aspect_ratio: "16:9" }, expect: "succeeded" },
    ];
    const ids = [];
    for (const p of plans) ids.push(await create(p.prompt, p.params));
    const tasks = await Promise.all(ids.map((id) => waitForTask(t, key, id, 60_000)));

    for (const [i, task] of tasks.entries()) {
      const plan = plans[i] as (typeof plans)[number];
      expect(task.status, `${plan.prompt}: ${JSON.stringify(task.error)}`).toBe(plan.expect);
      if (task.status === "failed") {
        expect(task.error).toMatchObject({ reason: "provider_error" });
        continue;
      }
      expect(await expectDownloadableMp4(task)).toEqual([]);
      const tall = plan.params.aspect_ratio === "9:16";
      expect(task.result.media[0]).toMatchObject({
        width: tall ? 144 : 256,
        height: tall ? 256 : 144,
        has_audio: plan.params.sound === "true",
      });
      // AAC priming can add a few hundredths of a second.
      expect(Math.abs(task.result.media[0].duration_seconds - 5)).toBeLessThanOrEqual(0.1);
    }
    // The same shape gives the same bytes, but each task has its own result URL.
    const [first, second] = tasks;
    expect(first.result.media[0].sha256).toBe(second.result.media[0].sha256);
    expect(first.result.primary_url).not.toBe(second.result.primary_url);

    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.body.current_credits).toBe(1000 - PRICE * plans.filter((p) => p.expect === "succeeded").length);
  });

  function worker() {
    const w = t.server.worker;
    if (!w) throw new Error("this server runs no worker");
    return w;
  }

  it("a result ready at once is polled and finalized in the submit's job: no poll job is added", async () => {
    const { key } = await t.createAccount(1000);
    const queue = (worker() as unknown as { deps: { queue: Queue } }).deps.queue;
    const enqueue = vi.spyOn(queue, "enqueue");
    try {
      // The first task of the shape may wait for its render; the next ones find it ready.
      const ids: string[] = [];
      for (const prompt of ["warm the shape", "ready at once", "ready at once too"]) {
        const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
        expect(res.status, res.text).toBe(202);
        ids.push(res.body.id);
        expect((await waitForTask(t, key, res.body.id, 60_000)).status).toBe("succeeded");
      }
      for (const id of ids.slice(1)) {
        // (On PostgreSQL the create's SQL function adds the submit job itself, not through enqueue.)
        const kinds = enqueue.mock.calls.filter(([, job]) => job.payload.taskId === id).map(([, job]) => job.kind);
        expect(kinds, id).not.toContain("generation.poll");
        expect(kinds, id).not.toContain("generation.finalize");
      }
    } finally {
      enqueue.mockRestore();
    }
  });

  it("a submit that stops after the task became processing is run again and schedules the poll", async () => {
    const { key } = await t.createAccount(1000);
    const queue = (worker() as unknown as { deps: { queue: Queue } }).deps.queue;
    const enqueue = vi.spyOn(queue, "enqueue");
    // The inline poll never happens (as when the process dies right after the commit): the
    // submit job fails, its retry finds the task processing and adds the poll job.
    const poll = vi.spyOn(worker(), "poll").mockRejectedValueOnce(new Error("died after the commit"));
    try {
      const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: "cut short" } });
      expect(res.status, res.text).toBe(202);
      const task = await waitForTask(t, key, res.body.id, 60_000);
      expect(task.status).toBe("succeeded");
      const kinds = enqueue.mock.calls.filter(([, job]) => job.payload.taskId === task.id).map(([, job]) => job.kind);
      expect(kinds.filter((kind) => kind !== "generation.submit")).toEqual(["generation.poll"]);
      const credits = await t.request("/api/v1/credits", { key });
      expect(credits.body.current_credits).toBe(1000 - PRICE);
    } finally {
      poll.mockRestore();
      enqueue.mockRestore();
    }
  });
});
