/**
 * A wake that comes while the woken task's own submit job is running, after it has decided to
 * wait, is not lost: the task is submitted at once, not when its wait retry (10-20 s) comes.
 *
 * The race is provoked deterministically: the generation worker runs here on the server's store
 * with its submit handler wrapped, and the wrapper frees the slot (the running task ends, which
 * wakes the waiting one through fair share, as a finishing task does) exactly between the waiting
 * task's decision to wait and the queue putting its job back. The wait retry is pinned to its
 * longest (20 s), so a lost wake cannot pass the 8 s the test gives the submit.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FairShare } from "../src/generations/fair-share.js";
import { SUBMIT_JOB } from "../src/generations/service.js";
import { failTask } from "../src/generations/transitions.js";
import { GenerationWorker } from "../src/generations/worker.js";
import { createLogger } from "../src/logger.js";
import type { Provider, ProviderTask } from "../src/providers/provider.js";
import { ProviderRouter } from "../src/providers/router.js";
import { GraphileQueue } from "../src/queue/graphile-queue.js";
import type { JobHandler, Queue } from "../src/queue/queue.js";
import { TableQueue } from "../src/queue/table-queue.js";
import { systemClock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./harness.js";
import { until } from "./provider-e2e-helpers.js";
import { TEST_STORE } from "./test-store.js";

type Driver = "table" | "graphile";
const DRIVERS: Driver[] = TEST_STORE === "postgres" ? ["table", "graphile"] : ["table"];
const log = createLogger("silent");

describe.each(DRIVERS)("fair share wake during the woken task's own submit (%s queue)", (driver) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("a slot freed while the waiting task decides to wait: that task is submitted at once", async () => {
    // No worker in the server: the one below is the only one, so the test decides when things happen.
    const t: TestServer = await startTestServer({
      WORKER_CONCURRENCY: "0",
      QUEUE_DRIVER: driver,
      ACCOUNT_MAX_RUNNING_TASKS: "1",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
    cleanups.push(() => t.close());
    const { db } = t.server.store;
    const { key, accountId } = await t.createAccount(1000);

    const submitted: string[] = [];
    const provider: Provider = {
      name: "simulated",
      async submit(task: ProviderTask) {
        submitted.push(task.taskId);
        return { upstreamId: `up_${task.taskId}` };
      },
      async poll() {
        return { state: "pending" };
      },
    };
    const router = new ProviderRouter(db, {
      chain: ["simulated"],
      providers: new Map([["simulated", provider]]),
      maxConcurrency: {},
      breaker: { threshold: 5, cooldownMs: 60_000 },
      now: () => Date.now(),
    });
    const opts = { leaseMs: 5000, pollIntervalMs: 20, graceMs: 300 };
    const queue: Queue =
      driver === "graphile"
        ? new GraphileQueue(db, systemClock, log, { ...opts, connectionString: t.server.config.databaseUrl as string })
        : new TableQueue(db, systemClock, log, opts);
    cleanups.push(() => queue.stop(500));
    const fairShare = new FairShare(queue, 1);
    const worker = new GenerationWorker({
      db,
      clock: systemClock,
      queue,
      storage: t.server.storage,
      signer: { signMediaUrl: () => "http://127.0.0.1/unused" } as never,
      log,
      router,
      taskDeadlineMs: 3_600_000,
      resultRetentionMs: 3_600_000,
      mirror: { guard: {} as never, maxBytes: 1, timeoutMs: 1 },
      fairShare,
      // The longest wait retry (20 s): a lost wake shows as a submit far past the test's patience.
      random: () => 1,
    });

    const create = async (prompt: string) => {
      const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      return res.body.id as string;
    };

    // The submit handler, wrapped: when the waiting task's run has decided to wait, the running
    // task ends (failTask with the hook a finishing task runs: fair share wakes the next one)
    // before the handler's answer reaches the queue, i.e. while the job is still running.
    const inner = worker.handlers()[SUBMIT_JOB] as JobHandler;
    let waiting: string | undefined;
    let running: string | undefined;
    // A job may run before its create's answer reaches this test (the queue polls every 20 ms):
    // a run that decided to wait holds on (its job still running) until the second id is known.
    let secondKnown: () => void = () => {};
    const bothCreated = new Promise<void>((resolve) => {
      secondKnown = resolve;
    });
    const waits: string[] = [];
    const submit: JobHandler = {
      ...inner,
      async run(payload, ctx) {
        const result = await inner.run(payload, ctx);
        if (result?.retryAt) await bothCreated;
        if (result?.retryAt && payload.taskId === waiting && running !== undefined) {
          waits.push(String(payload.taskId));
          const ended = running;
          running = undefined;
          await failTask(db, systemClock, { taskId: ended, reason: "provider_error", detail: "test" }, (trx, row) =>
            fairShare.wakeNext(trx, { account: row.account_id }),
          );
        }
        return result;
      },
    };
    await queue.start([{ name: "generation", concurrency: 1, handlers: { [SUBMIT_JOB]: submit } }]);

    // The first task takes the account's only slot.
    running = await create("first");
    await until(() => submitted.length === 1, "the first task submitted", 10_000);
    expect(submitted).toEqual([running]);
    const first = running;

    // The second waits for it; the slot frees while its job is about to put itself back.
    waiting = await create("second");
    secondKnown();
    await until(() => submitted.length === 2, "the second task submitted", 8_000);
    expect(waits).toEqual([waiting]);
    expect(submitted).toEqual([first, waiting]);
    // The provider's answer is stored just after the call returns.
    const second = waiting;
    const status = async () =>
      (await db.selectFrom("tasks").select("status").where("id", "=", second).executeTakeFirstOrThrow()).status;
    await until(async () => (await status()) === "processing", "the second task processing", 5_000);
    // The ended task was the account's: the wake came from its own finish.
    const ended = await db.selectFrom("tasks").select("account_id").where("id", "=", first).executeTakeFirstOrThrow();
    expect(ended.account_id).toBe(accountId);
  });
});
