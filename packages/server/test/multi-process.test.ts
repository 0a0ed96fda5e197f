/**
 * The scale-out deployment for real (issue 7): two `framegate api` and two `framegate worker`
 * processes sharing nothing but one PostgreSQL database (graphile-worker queue) and one
 * S3-compatible bucket. 500 creates go to both APIs, every Idempotency-Key sent twice (once to
 * each API, at the same time), and one worker is SIGKILLed while it is running jobs. The
 * survivor must take the dead worker's jobs over: every task ends, each key charged once, the
 * ledger balances and every terminal event reaches the webhook receiver.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENV, type TestResponse } from "./harness.js";
import {
  ChildServer,
  expectLedgerInvariants,
  freePort,
  killAll,
  queryStore,
  readDb,
  sleep,
} from "./process-helpers.js";
import { startTestS3, type TestS3 } from "./s3-helpers.js";
import { dropTestDatabase, TEST_STORE, testStoreEnvSync } from "./test-store.js";
import { WebhookReceiver } from "./webhook-receiver.js";

const PRICE = 55;
const KEYS = 250;
const WORKER_CONCURRENCY = 4;
const READ_BUDGET = 6;

describe.runIf(TEST_STORE === "postgres")("2 API + 2 worker processes on one PostgreSQL", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-multi-"));
  const dbDir = join(dir, "db");
  const children: ChildServer[] = [];
  let apis: ChildServer[] = [];
  let workers: ChildServer[] = [];
  let s3: TestS3;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    mkdirSync(dbDir);
    s3 = await startTestS3("framegate-multi");
    receiver = await WebhookReceiver.start();
    const [apiPorts, healthPorts] = [await ports(2), await ports(2)];
    const publicUrl = `http://127.0.0.1:${apiPorts[0]}`;
    // What every process shares: the database, the bucket, the signing secret, the public URL.
    const shared = {
      ...TEST_ENV,
      ...testStoreEnvSync(dbDir),
      ...s3.env(),
      SIGNING_SECRET: randomBytes(32).toString("base64url"),
      PUBLIC_BASE_URL: publicUrl,
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      // Reads are limited: the budget is shared by both API processes (RATE_LIMIT_STORE=auto →
      // PostgreSQL); creates are not, the load below would spend them.
      RATE_LIMIT_READ_PER_MIN: String(READ_BUDGET),
      WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
      LOG_LEVEL: "warn",
    };
    const start = (command: "api" | "worker", i: number, port: number, extra: Record<string, string>) => {
      const child = new ChildServer(
        `http://127.0.0.1:${port}`,
        { ...shared, DATA_DIR: join(dir, `${command}-${i}`), ...extra },
        command,
      );
      children.push(child);
      return child;
    };
    // All four start at once: the migrations (ours and graphile-worker's) are applied once.
    apis = apiPorts.map((port, i) => start("api", i, port, { PORT: String(port) }));
    workers = healthPorts.map((port, i) => start("worker", i, port, { HEALTH_PORT: String(port) }));
    await Promise.all(children.map((c) => c.waitReady(60_000)));
  }, 90_000);

  afterAll(async () => {
    await killAll(children);
    await receiver?.close();
    await s3?.close();
    await dropTestDatabase(dbDir).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it("workers answer only their health endpoints; the API refuses nothing it should serve", async () => {
    const worker = workers[0] as ChildServer;
    expect((await worker.request("/healthz")).status).toBe(200);
    const ready = await worker.request("/readyz");
    expect(ready.body.checks).toMatchObject({ database: "ok", storage: "ok" });
    expect((await worker.request("/api/v1/models")).status).toBe(404);
    expect((await (apis[1] as ChildServer).request("/api/v1/models")).status).toBe(200);
  });

  it("one key's read budget is shared by both API processes", async () => {
    const [api0, api1] = apis as [ChildServer, ChildServer];
    const { key } = await api0.createAccount(100);
    const statuses: number[] = [];
    for (let i = 0; i < READ_BUDGET; i++)
      statuses.push((await (i % 2 ? api1 : api0).request("/api/v1/credits", { key })).status);
    expect(statuses).toEqual(Array(READ_BUDGET).fill(200));
    for (const api of [api0, api1]) {
      const refused = await api.request("/api/v1/credits", { key });
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe("rate_limited");
    }
  });

  it("500 creates with every key sent to both APIs, one worker SIGKILLed: all end, one charge per key, webhooks delivered", async () => {
    const [api0, api1] = apis as [ChildServer, ChildServer];
    const { accountId, key } = await api0.createAccount(KEYS * PRICE);
    const endpoint = await api1.request("/api/v1/webhooks", { key, json: { url: `${receiver.url}/hook` } });
    expect(endpoint.status).toBe(201);

    // Every fourth task fails in the simulator (and is refunded); all of them fit the budget
    // exactly, so a second charge for any key would make some other create fail with 402.
    const prompt = (i: number) => (i % 4 === 0 ? `[sim:fail] multi ${i}` : `multi ${i}`);
    const creates = Array.from({ length: KEYS }, (_, i) => [0, 1].map((n) => ({ i, api: n === 0 ? api0 : api1 })));
    const results = new Map<number, string[]>();
    let killed = false;
    let atKill = "";
    let lockedAtKill = new Set<string>();
    const started = Date.now();
    const killWhenBusy = (async () => {
      // Kill once work is well under way, at a moment both workers' generation pools hold a job
      // (one pool per process), so the victim leaves locked jobs behind; after 20 s of looking
      // it is killed anyway.
      let lookingSince: number | undefined;
      while (!killed) {
        const [row] = await queryStore<{ n: number }>(
          dbDir,
          "select count(*)::int as n from tasks where status in ('succeeded', 'failed')",
        );
        if ((row?.n ?? 0) < KEYS / 5) {
          await sleep(100);
          continue;
        }
        lookingSince ??= Date.now();
        const [busy] = await queryStore<{ pools: number }>(
          dbDir,
          "select count(distinct locked_by)::int as pools from graphile_worker.jobs where locked_by is not null and task_identifier <> 'webhook.deliver'",
        );
        if ((busy?.pools ?? 0) < 2 && Date.now() - lookingSince < 20_000) {
          await sleep(10);
          continue;
        }
        killed = true;
        await (workers[0] as ChildServer).kill();
        const locked = await queryStore<{ locked_by: string }>(
          dbDir,
          "select locked_by from graphile_worker.jobs where locked_by is not null",
        );
        lockedAtKill = new Set(locked.map((r) => r.locked_by));
        atKill = `${row?.n} tasks ended, ${locked.length} jobs locked, after ${Date.now() - started} ms`;
      }
    })();
    await runPool(creates.flat(), 24, async ({ i, api }) => {
      const res = await createWithRetry(api, key, `multi-key-${i}`, prompt(i));
      expect(res.status, res.text).toBe(202);
      results.set(i, [...(results.get(i) ?? []), res.body.id]);
    });
    // Every key: both answers name the same task.
    for (const [i, ids] of results) expect(new Set(ids).size, `key ${i}: ${ids}`).toBe(1);
    expect(results.size).toBe(KEYS);

    // Every task reaches a terminal state, the killed worker's jobs included.
    const deadline = Date.now() + 240_000;
    for (;;) {
      const open = await queryStore<{ status: string; n: number }>(
        dbDir,
        "select status, count(*)::int as n from tasks where status not in ('succeeded', 'failed') group by status",
      );
      if (open.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(`tasks still open: ${JSON.stringify(open)}\n${(workers[1] as ChildServer).output()}`);
      }
      await sleep(250);
    }
    await killWhenBusy;
    expect(killed).toBe(true);
    expect((workers[0] as ChildServer).exit?.signal).toBe("SIGKILL");

    const snapshot = await readDb(dbDir);
    expect(snapshot.tasks).toHaveLength(KEYS);
    expect(expectLedgerInvariants(snapshot)).toEqual([]);
    const succeeded = snapshot.tasks.filter((t) => t.status === "succeeded");
    const failed = snapshot.tasks.filter((t) => t.status === "failed");
    const unexpected = failed.filter((t) => !t.prompt.startsWith("[sim:fail]"));
    expect(unexpected.map((t) => `${t.prompt}: ${t.error_reason}`)).toEqual([]);
    expect(failed).toHaveLength(Math.ceil(KEYS / 4));
    expect(snapshot.balances.get(accountId)).toBe(KEYS * PRICE - succeeded.length * PRICE);

    // Every terminal event delivered; a delivery interrupted by the kill may be sent again
    // (receivers dedupe by webhook-id), but at most once per job the killed worker ran.
    const events = await queryStore<{ id: string }>(dbDir, "select id from webhook_events");
    expect(events).toHaveLength(KEYS);
    const deadlineHooks = Date.now() + 60_000;
    const seen = () => new Set(receiver.requests.map((r) => r.headers["webhook-id"]));
    while (events.some((e) => !seen().has(e.id)) && Date.now() < deadlineHooks) await sleep(200);
    expect(events.filter((e) => !seen().has(e.id))).toEqual([]);
    const duplicates = receiver.requests.length - seen().size;
    expect(duplicates).toBeLessThanOrEqual(WORKER_CONCURRENCY);
    console.log(
      `multi-process: ${KEYS} keys x 2 creates; kill at: ${atKill}; ${succeeded.length} succeeded, ` +
        `${failed.length} failed; all terminal after ${Date.now() - started} ms; ` +
        `${receiver.requests.length} webhook requests for ${events.length} events (${duplicates} repeated)`,
    );

    // Nothing left behind in the queue: no job, no lock of the dead worker's pool.
    const jobs = await queryStore(
      dbDir,
      "select task_identifier, key, attempts, max_attempts, locked_by, last_error from graphile_worker.jobs",
    );
    expect(jobs).toEqual([]);
    // The survivor released the jobs the dead worker held when it was killed, if it held any (a
    // kill between two jobs leaves none): pools still beating are the survivor's.
    const live = new Set((await queryStore<{ id: string }>(dbDir, "select id from queue_pools")).map((r) => r.id));
    const orphaned = [...lockedAtKill].filter((pool) => !live.has(pool));
    console.log(
      `multi-process: pools holding jobs at the kill: ${lockedAtKill.size}, of the killed worker: ${orphaned.length}`,
    );
    if (orphaned.length > 0) {
      expect((workers[1] as ChildServer).stderr + (workers[1] as ChildServer).stdout).toContain(
        "released the jobs of worker pools",
      );
    }
  }, 360_000);
});

async function ports(n: number): Promise<number[]> {
  const list: number[] = [];
  while (list.length < n) {
    const port = await freePort();
    if (!list.includes(port)) list.push(port);
  }
  return list;
}

/** POST a create; a 409 means the same key is being processed right now: retry, as clients do. */
async function createWithRetry(api: ChildServer, key: string, idempotencyKey: string, prompt: string) {
  for (let attempt = 0; ; attempt++) {
    const res: TestResponse = await api.request("/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt },
      headers: { "Idempotency-Key": idempotencyKey },
    });
    if (res.status !== 409 || attempt >= 50) return res;
    await sleep(50);
  }
}

async function runPool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}
