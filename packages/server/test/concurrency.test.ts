/**
 * Races on credits and idempotency keys (api-contract §5, §8): many requests at once must
 * never overdraw an account, create a task twice or leave the balance out of step with the
 * ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuedJobs, startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";

const PRICE = 55;
const body = (prompt: string) => ({ model: "kling-2-6", prompt });

async function accountView(t: TestServer, accountId: string) {
  const res = await t.admin(`/admin/v1/accounts/${accountId}`);
  expect(res.status).toBe(200);
  return res.body as {
    credits: number;
    ledger: { balance: number; ledger_sum: number; reserved: number; refunded: number; entries: number };
  };
}

async function listAll(t: TestServer, key: string) {
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  const tasks: any[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await t.request(`/api/v1/generations?limit=100${after ? `&starting_after=${after}` : ""}`, { key });
    expect(res.status).toBe(200);
    tasks.push(...res.body.data);
    if (!res.body.has_more) return tasks;
    after = res.body.data.at(-1).id;
  }
}

function ledgerRows(t: TestServer, accountId: string) {
  return t.server.store.db
    .selectFrom("ledger_entries")
    .select(["type", "amount", "task_id"])
    .where("account_id", "=", accountId)
    .execute();
}

describe("concurrent creates without a worker", () => {
  let t: TestServer;
  beforeAll(async () => {
    // No worker: every task stays queued, so only the create path races.
    t = await startTestServer({ WORKER_CONCURRENCY: "0", RATE_LIMIT_CREATE_PER_MIN: "0" });
  });
  afterAll(() => t?.close());

  it("50 parallel creates against a balance for 7: exactly 7 succeed, 43 get 402, nothing overdraws", async () => {
    const { accountId, key } = await t.createAccount(7 * PRICE);
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => t.request("/api/v1/generations", { key, json: body(`race ${i}`) })),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 402);
    expect(accepted).toHaveLength(7);
    expect(refused).toHaveLength(43);
    for (const r of refused) {
      expect(r.body.error.code).toBe("insufficient_credits");
      expect(r.body.error.requestId).toBe(r.headers.get("x-request-id"));
    }
    for (const r of accepted) {
      expect(r.body).toMatchObject({ status: "queued", reserved_credits: PRICE, final_credits: 0 });
      expect(r.headers.get("location")).toBe(`/api/v1/generations/${r.body.id}`);
    }
    const acceptedIds = new Set(accepted.map((r) => r.body.id as string));
    expect(acceptedIds.size).toBe(7);

    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.body).toEqual({ current_credits: 0 });

    const tasks = await listAll(t, key);
    expect(tasks).toHaveLength(7);
    expect(new Set(tasks.map((x) => x.id))).toEqual(acceptedIds);

    const rows = await ledgerRows(t, accountId);
    const reserves = rows.filter((r) => r.type === "reserve");
    expect(reserves).toHaveLength(7);
    expect(new Set(reserves.map((r) => r.task_id))).toEqual(acceptedIds);
    expect(reserves.every((r) => r.amount === -PRICE)).toBe(true);
    expect(rows.filter((r) => r.type === "grant")).toHaveLength(1);
    expect(rows).toHaveLength(8);

    const view = await accountView(t, accountId);
    expect(view.credits).toBe(0);
    expect(view.credits).toBe(view.ledger.ledger_sum);
    expect(view.ledger.reserved).toBe(7 * PRICE);

    // One submit job per accepted task, none for the refused ones.
    const jobs = await queuedJobs(t.server.store.db);
    const submitKeys = jobs.map((j) => j.job_key).filter((k) => k?.startsWith("submit:"));
    expect(new Set(submitKeys)).toEqual(new Set([...acceptedIds].map((id) => `submit:${id}`)));
  });

  it("parallel creates on two accounts do not touch each other's balance", async () => {
    const a = await t.createAccount(3 * PRICE);
    const b = await t.createAccount(2 * PRICE + 10);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const who = i % 2 === 0 ? a : b;
        return t.request("/api/v1/generations", { key: who.key, json: body(`two accounts ${i}`) });
      }),
    );
    const accepted = responses.filter((r) => r.status === 202).length;
    expect(accepted).toBe(5);
    expect(responses.filter((r) => r.status === 402)).toHaveLength(15);
    expect((await t.request("/api/v1/credits", { key: a.key })).body.current_credits).toBe(0);
    expect((await t.request("/api/v1/credits", { key: b.key })).body.current_credits).toBe(10);
    for (const acct of [a, b]) {
      const view = await accountView(t, acct.accountId);
      expect(view.credits).toBe(view.ledger.ledger_sum);
    }
    expect(await listAll(t, a.key)).toHaveLength(3);
    expect(await listAll(t, b.key)).toHaveLength(2);
  });

  it("20 parallel requests with one Idempotency-Key create one task and charge once", async () => {
    const { accountId, key } = await t.createAccount(1000);
    const json = body("one key, many tries");
    const send = () => t.request("/api/v1/generations", { key, json, headers: { "Idempotency-Key": "race-key-1" } });
    const responses = await Promise.all(Array.from({ length: 20 }, send));

    const created = responses.filter((r) => r.status === 202);
    const conflicts = responses.filter((r) => r.status === 409);
    expect(created.length + conflicts.length).toBe(20);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of conflicts) expect(r.body.error.code).toBe("idempotency_conflict");

    const originals = created.filter((r) => r.headers.get("idempotent-replayed") === null);
    expect(originals).toHaveLength(1);
    const original = originals[0] as TestResponse;
    for (const r of created) {
      expect(r.text).toBe(original.text);
      if (r !== original) expect(r.headers.get("idempotent-replayed")).toBe("true");
      expect(r.headers.get("location")).toBe(`/api/v1/generations/${original.body.id}`);
    }

    expect((await t.request("/api/v1/credits", { key })).body.current_credits).toBe(1000 - PRICE);
    const tasks = await listAll(t, key);
    expect(tasks.map((x) => x.id)).toEqual([original.body.id]);

    // Once the first request has completed, every retry is a byte-for-byte replay.
    const again = await send();
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(original.text);

    const rows = await ledgerRows(t, accountId);
    expect(rows.filter((r) => r.type === "reserve")).toHaveLength(1);
    const view = await accountView(t, accountId);
    expect(view.credits).toBe(view.ledger.ledger_sum);
  });

  it("parallel requests with one key whose account can afford none all replay the same 402", async () => {
    const { key } = await t.createAccount(PRICE - 1);
    const send = () =>
      t.request("/api/v1/generations", {
        key,
        json: body("too poor"),
        headers: { "Idempotency-Key": "poor-key" },
      });
    const responses = await Promise.all(Array.from({ length: 10 }, send));
    const refused = responses.filter((r) => r.status === 402);
    const conflicts = responses.filter((r) => r.status === 409);
    expect(refused.length + conflicts.length).toBe(10);
    const firsts = refused.filter((r) => r.headers.get("idempotent-replayed") === null);
    expect(firsts).toHaveLength(1);
    for (const r of refused) expect(r.text).toBe(firsts[0]?.text);
    expect(await listAll(t, key)).toHaveLength(0);
    expect((await t.request("/api/v1/credits", { key })).body.current_credits).toBe(PRICE - 1);
  });
});

describe("creates racing refunds and settlements", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "4", RATE_LIMIT_CREATE_PER_MIN: "0" });
  });
  afterAll(() => t?.close());

  it("failed tasks refund while new creates race for the freed credits; the ledger always balances", async () => {
    const initial = 3 * PRICE;
    const { accountId, key } = await t.createAccount(initial);
    const responses: TestResponse[] = [];
    const db = t.server.store.db;
    const snapshots: string[] = [];

    // Waves of parallel creates; most fail (and refund), a few succeed (and keep their 55).
    const deadline = Date.now() + 4000;
    let wave = 0;
    while (Date.now() < deadline) {
      const batch = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          t.request("/api/v1/generations", {
            key,
            json:
              i === 0 && wave % 4 === 0 && wave < 8
                ? { ...body(`keeps ${wave}`), client_request_id: `keeps-${wave}` }
                : body(`[sim:fail] wave ${wave} #${i}`),
          }),
        ),
      );
      responses.push(...batch);
      wave++;
      // A consistent view (one snapshot: SQLite's transaction, PostgreSQL's repeatable read):
      // balance + open reservations + settled = initial.
      const check = await db
        .transaction()
        .setIsolationLevel("repeatable read")
        .execute(async (trx) => {
          const acct = await trx
            .selectFrom("accounts")
            .select("balance")
            .where("id", "=", accountId)
            .executeTakeFirstOrThrow();
          const tasks = await trx
            .selectFrom("tasks")
            .select(["status", "reserved_credits"])
            .where("account_id", "=", accountId)
            .execute();
          const open = tasks.filter((x) => x.status === "queued" || x.status === "processing").length;
          const kept = tasks.filter((x) => x.status === "succeeded").length;
          return { balance: acct.balance, open, kept };
        });
      if (check.balance + PRICE * (check.open + check.kept) !== initial || check.balance < 0) {
        snapshots.push(JSON.stringify(check));
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(snapshots).toEqual([]);

    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 402);
    expect(accepted.length + refused.length).toBe(responses.length);
    for (const r of refused) expect(r.body.error.code).toBe("insufficient_credits");
    // Refunds freed credits for later waves: far more than 3 tasks got through.
    expect(accepted.length).toBeGreaterThan(3);

    const finished = await Promise.all(accepted.map((r) => waitForTask(t, key, r.body.id, 60_000)));
    const succeeded = finished.filter((x) => x.status === "succeeded");
    const failed = finished.filter((x) => x.status === "failed");
    expect(succeeded.length + failed.length).toBe(accepted.length);
    for (const x of failed) {
      expect(x.client_request_id).toBeNull();
      expect(x.error.reason).toBe("provider_error");
      expect(x.final_credits).toBe(0);
    }
    for (const x of succeeded) {
      expect(x.client_request_id).toMatch(/^keeps-/);
      expect(x.final_credits).toBe(PRICE);
    }

    const credits = (await t.request("/api/v1/credits", { key })).body.current_credits;
    expect(credits).toBe(initial - PRICE * succeeded.length);

    const rows = await ledgerRows(t, accountId);
    const ids = new Set(accepted.map((r) => r.body.id as string));
    const reserves = rows.filter((r) => r.type === "reserve");
    const refunds = rows.filter((r) => r.type === "refund");
    expect(reserves).toHaveLength(accepted.length);
    expect(new Set(reserves.map((r) => r.task_id))).toEqual(ids);
    expect(refunds).toHaveLength(failed.length);
    expect(new Set(refunds.map((r) => r.task_id))).toEqual(new Set(failed.map((x) => x.id)));
    expect(refunds.every((r) => r.amount === PRICE)).toBe(true);

    const view = await accountView(t, accountId);
    expect(view.credits).toBe(credits);
    expect(view.credits).toBe(view.ledger.ledger_sum);
  });

  it("one Idempotency-Key raced while the worker runs: one task, one charge, replays survive completion", async () => {
    const { accountId, key } = await t.createAccount(500);
    const json = { model: "kling-2-6", prompt: "idempotent with a worker", params: { duration: "5" } };
    const send = () => t.request("/api/v1/generations", { key, json, headers: { "Idempotency-Key": "worker-race" } });
    const responses = await Promise.all(Array.from({ length: 20 }, send));
    const created = responses.filter((r) => r.status === 202);
    expect(created.length + responses.filter((r) => r.status === 409).length).toBe(20);
    const original = created.find((r) => r.headers.get("idempotent-replayed") === null) as TestResponse;
    expect(created.filter((r) => r.headers.get("idempotent-replayed") === null)).toHaveLength(1);
    for (const r of created) expect(r.text).toBe(original.text);

    const done = await waitForTask(t, key, original.body.id);
    expect(done.status).toBe("succeeded");
    // The replay is the stored response (the queued task), not the task's current state.
    const replay = await send();
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(original.text);

    expect((await t.request("/api/v1/credits", { key })).body.current_credits).toBe(500 - PRICE);
    expect(await listAll(t, key)).toHaveLength(1);
    const view = await accountView(t, accountId);
    expect(view.credits).toBe(view.ledger.ledger_sum);
  });
});
