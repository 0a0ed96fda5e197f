/**
 * The create transaction, at the service level (no HTTP in between, so requests really race):
 * the idempotency key is claimed inside the transaction that creates the task, a create costs
 * a bounded number of queries (one function call on PostgreSQL), racing requests with one key
 * create one task and charge once, and a create that fails midway leaves nothing behind, not
 * even a claim on its key.
 */
import { type NormalizedGenerationRequest, validateGenerationRequest } from "@framegate/contract";
import type { KyselyPlugin } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../src/errors.js";
import { GENERATIONS_PATH } from "../src/generations/routes.js";
import { type CreateOutcome, GenerationService } from "../src/generations/service.js";
import { fingerprintBody, type IdempotencyClaim, IdempotencyStore } from "../src/http/idempotency.js";
import { createLogger } from "../src/logger.js";
import { GraphileQueue } from "../src/queue/graphile-queue.js";
import type { Queue } from "../src/queue/queue.js";
import { TableQueue } from "../src/queue/table-queue.js";
import { UrlSigner } from "../src/storage/signed-urls.js";
import type { Db } from "../src/store/db.js";
import { systemClock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./harness.js";
import { TEST_STORE } from "./test-store.js";

const PRICE = 55;
const BODY = { model: "kling-2-6", prompt: "a create, counted" };

/** Counts the queries that reach the database through a Kysely instance (BEGIN/COMMIT excluded). */
class QueryCounter implements KyselyPlugin {
  count = 0;
  transformQuery: KyselyPlugin["transformQuery"] = (args) => args.node;
  transformResult: KyselyPlugin["transformResult"] = async (args) => {
    this.count++;
    return args.result;
  };
}

function request(): NormalizedGenerationRequest {
  const validated = validateGenerationRequest(BODY);
  if (!validated.ok) throw new Error("test body is invalid");
  return validated.value;
}

const renderError = (error: ApiError) => JSON.stringify({ error: { code: error.code, message: error.message } });

// On PostgreSQL a create is one function call with graphile-worker, and the portable
// transaction (as on SQLite) with the table queue: both are tested there.
const queueDrivers = TEST_STORE === "postgres" ? ["graphile", "table"] : ["table"];

describe.each(queueDrivers)("the create transaction (QUEUE_DRIVER=%s)", (queueDriver) => {
  let t: TestServer;
  /** The create is the PostgreSQL function call. */
  let onPostgres: boolean;
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "0", RATE_LIMIT_CREATE_PER_MIN: "0", QUEUE_DRIVER: queueDriver });
    onPostgres = t.server.store.dialect === "postgres" && queueDriver === "graphile";
  });
  afterAll(() => t?.close());

  /** The server's own queue driver, on `db` (only enqueue and addJobArgs are used: nothing runs). */
  function queueOn(db: Db): Queue {
    const log = createLogger("silent");
    const { config } = t.server;
    if (config.queueDriver === "graphile") {
      return new GraphileQueue(db, systemClock, log, {
        connectionString: config.databaseUrl ?? "",
        leaseMs: 30_000,
        pollIntervalMs: 1000,
        graceMs: 1000,
      });
    }
    return new TableQueue(db, systemClock, log, { leaseMs: 30_000, pollIntervalMs: 1000 });
  }

  function serviceOn(db: Db, queue: Queue = queueOn(db)) {
    return new GenerationService({
      db,
      clock: systemClock,
      queue,
      signer: new UrlSigner("create-transaction-test-secret", () => t.url),
      idempotency: new IdempotencyStore(db, systemClock),
    });
  }

  function claimFor(accountId: string, key: string): IdempotencyClaim {
    return { scope: { accountId, method: "POST", path: GENERATIONS_PATH, key }, fingerprint: fingerprintBody(BODY) };
  }

  async function facts(accountId: string) {
    const { db } = t.server.store;
    const [account, tasks, reserves, keys] = await Promise.all([
      db.selectFrom("accounts").select("balance").where("id", "=", accountId).executeTakeFirstOrThrow(),
      db.selectFrom("tasks").select("id").where("account_id", "=", accountId).execute(),
      db
        .selectFrom("ledger_entries")
        .select("task_id")
        .where("account_id", "=", accountId)
        .where("type", "=", "reserve")
        .execute(),
      db.selectFrom("idempotency_keys").selectAll().where("account_id", "=", accountId).execute(),
    ]);
    return { balance: account.balance, tasks: tasks.map((r) => r.id), reserves, keys };
  }

  it("a create with an Idempotency-Key is one transaction of few queries (one function call on PostgreSQL)", async () => {
    const { accountId } = await t.createAccount(1000);
    const counter = new QueryCounter();
    // The queue keeps the uncounted database: what it sends on its own after a commit (graphile's
    // wake-up NOTIFY, batched and sent asynchronously) is not part of the create's transaction,
    // and would otherwise land in whichever count is running when it goes out.
    const { db } = t.server.store;
    const service = serviceOn(db.withPlugin(counter), queueOn(db));

    const created = await service.create(accountId, request(), [], claimFor(accountId, "counted"), renderError);
    expect(created.status).toBe(202);
    expect(created.replayed).toBe(false);
    // Portable: debit, key lookup, ledger entry, task, job, key row (BEGIN and COMMIT not counted).
    // Before the claim moved into the transaction this was 7 queries in 2 transactions.
    expect(counter.count).toBeLessThanOrEqual(onPostgres ? 1 : 6);

    counter.count = 0;
    const replay = await service.create(accountId, request(), [], claimFor(accountId, "counted"), renderError);
    expect(replay).toEqual({ status: 202, body: created.body, replayed: true });
    expect(counter.count).toBeLessThanOrEqual(onPostgres ? 1 : 2);

    const after = await facts(accountId);
    expect(after.balance).toBe(1000 - PRICE);
    expect(after.tasks).toEqual([JSON.parse(created.body).id]);
    expect(after.keys).toHaveLength(1);
    expect(after.keys[0]).toMatchObject({ state: "completed", response_status: 202, response_body: created.body });
  });

  it("20 creates racing with one key: one task, one charge, every other one replays it", async () => {
    const { accountId } = await t.createAccount(1000);
    const service = serviceOn(t.server.store.db);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        service.create(accountId, request(), [], claimFor(accountId, "raced"), renderError),
      ),
    );
    const originals = outcomes.filter((o) => !o.replayed);
    expect(originals).toHaveLength(1);
    const original = originals[0] as CreateOutcome;
    expect(original.status).toBe(202);
    for (const o of outcomes) expect(o).toMatchObject({ status: 202, body: original.body });

    const after = await facts(accountId);
    expect(after.balance).toBe(1000 - PRICE);
    expect(after.tasks).toEqual([JSON.parse(original.body).id]);
    expect(after.reserves).toEqual([{ task_id: JSON.parse(original.body).id }]);
    expect(after.keys).toHaveLength(1);
  });

  it("10 creates racing with one key on an account that can afford none: one stored 402, replayed to all", async () => {
    const { accountId } = await t.createAccount(PRICE - 1);
    const service = serviceOn(t.server.store.db);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () =>
        service.create(accountId, request(), [], claimFor(accountId, "poor"), renderError),
      ),
    );
    expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
    for (const o of outcomes) {
      expect(o.status).toBe(402);
      expect(JSON.parse(o.body).error.code).toBe("insufficient_credits");
      expect(o.body).toBe(outcomes[0]?.body);
    }
    const after = await facts(accountId);
    expect(after).toMatchObject({ balance: PRICE - 1, tasks: [], reserves: [] });
    expect(after.keys).toEqual([expect.objectContaining({ state: "completed", response_status: 402 })]);
  });

  it("a create that fails after its debit leaves nothing behind: no charge, no task, and its key is free", async () => {
    const { accountId } = await t.createAccount(1000);
    const db = t.server.store.db;
    const working = queueOn(db);
    // The job insert fails, after the debit, the ledger entry and the task: all must roll back.
    const broken: Queue = onPostgres
      ? // On PostgreSQL the function's add_job refuses an unknown key mode, inside the one statement.
        Object.assign(Object.create(working), {
          addJobArgs: (job: Parameters<NonNullable<Queue["addJobArgs"]>>[0]) => ({
            ...working.addJobArgs?.(job),
            keyMode: "no_such_mode",
          }),
        })
      : Object.assign(Object.create(working), {
          enqueue: async () => {
            throw new Error("queue unavailable");
          },
        });
    await expect(
      serviceOn(db, broken).create(accountId, request(), [], claimFor(accountId, "fails"), renderError),
    ).rejects.toThrow();
    expect(await facts(accountId)).toMatchObject({ balance: 1000, tasks: [], reserves: [], keys: [] });

    // The retry is not a replay, nor a 409: nothing was claimed.
    const retried = await serviceOn(db).create(accountId, request(), [], claimFor(accountId, "fails"), renderError);
    expect(retried).toMatchObject({ status: 202, replayed: false });
    expect((await facts(accountId)).balance).toBe(1000 - PRICE);
  });

  it("a different body under a stored key is a 409 that changes nothing", async () => {
    const { accountId } = await t.createAccount(1000);
    const service = serviceOn(t.server.store.db);
    await service.create(accountId, request(), [], claimFor(accountId, "conflict"), renderError);
    const other = { ...claimFor(accountId, "conflict"), fingerprint: fingerprintBody({ ...BODY, prompt: "other" }) };
    const refused = await service.create(accountId, request(), [], other, renderError).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe("idempotency_conflict");
    expect((await facts(accountId)).balance).toBe(1000 - PRICE);
  });
});
