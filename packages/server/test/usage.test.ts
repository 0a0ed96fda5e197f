/**
 * Usage history over real HTTP: GET /api/v1/credits/ledger (balance after each entry,
 * pagination, filters), GET /api/v1/usage (UTC buckets that agree with the ledger) and the
 * operators' GET /admin/v1/usage (across accounts, with breakdowns), on tasks that really ran:
 * succeeded, failed and refunded, plus operator grants and debits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Entry {
  id: string;
  object: string;
  type: "grant" | "reserve" | "release" | "refund";
  amount: number;
  balance_after: number;
  task_id: string | null;
  reason: string | null;
  created_at: string;
}

function expectInvalid(res: TestResponse, path: string) {
  expect(res.status, res.text).toBe(400);
  expect(res.body.error.code).toBe("validation_failed");
  expect(res.body.error.details[0].path).toBe(path);
}

/** What a bucket's credits must be, summed from ledger entries. */
function creditsOf(entries: Entry[]) {
  const sum = (type: Entry["type"]) => entries.filter((e) => e.type === type).reduce((n, e) => n + e.amount, 0);
  return {
    credits_charged: 0 - sum("reserve") - sum("release") + 0,
    credits_refunded: sum("refund"),
    credits_granted: sum("grant"),
  };
}

describe("usage history", () => {
  let t: TestServer;
  const clock = new ManualClock();
  let a: { accountId: string; key: string };
  let b: { accountId: string; key: string };
  const tasks: { id: string; status: string }[] = [];

  const create = async (key: string, prompt: string) => {
    const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
    expect(res.status, res.text).toBe(202);
    return waitForTask(t, key, res.body.id);
  };
  /** Every ledger entry of the key's account, walking the pages. */
  const allEntries = async (key: string, query = ""): Promise<Entry[]> => {
    const out: Entry[] = [];
    let after = "";
    for (;;) {
      const res = await t.request(`/api/v1/credits/ledger?limit=2${query}${after}`, { key });
      expect(res.status, res.text).toBe(200);
      out.push(...res.body.data);
      if (!res.body.has_more) return out;
      after = `&starting_after=${res.body.data.at(-1).id}`;
    }
  };
  const balance = async (key: string) => (await t.request("/api/v1/credits", { key })).body.current_credits as number;

  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" }, undefined, { clock });
    // Two days back, so the history spans several day and hour buckets up to "now".
    clock.advance(-2 * DAY);
    a = await t.createAccount(1000);
    b = await t.createAccount(500);
    tasks.push(await create(a.key, "a lighthouse at dusk"));
    clock.advance(DAY + 3 * HOUR);
    tasks.push(await create(a.key, "a broken render [sim:fail]"));
    expect((await t.admin(`/admin/v1/accounts/${a.accountId}/credits`, { json: { amount: 50 } })).status).toBe(200);
    await create(b.key, "account b's own task");
    clock.advance(2 * HOUR);
    expect(
      (await t.admin(`/admin/v1/accounts/${a.accountId}/credits`, { json: { amount: -20, reason: "correction" } }))
        .status,
    ).toBe(200);
    tasks.push(await create(a.key, "a second lighthouse"));
    clock.advance(DAY - 5 * HOUR);
  }, 120_000);
  afterAll(() => t.close());

  describe("GET /api/v1/credits/ledger", () => {
    it("lists every entry newest first; the entries sum to the balance, the newest balance_after is the balance", async () => {
      expect(tasks.map((x) => x.status)).toEqual(["succeeded", "failed", "succeeded"]);
      const entries = await allEntries(a.key);
      const current = await balance(a.key);
      // initial grant, reserve, reserve + refund, grant, debit, reserve
      expect(entries.map((e) => e.type)).toEqual([
        "reserve",
        "grant",
        "grant",
        "refund",
        "reserve",
        "reserve",
        "grant",
      ]);
      expect(entries.every((e) => e.object === "ledger_entry" && e.id.startsWith("led_"))).toBe(true);
      expect(entries.reduce((n, e) => n + e.amount, 0)).toBe(current);
      expect(entries[0]?.balance_after).toBe(current);
      // A running sum in entry order: each balance_after is the previous one plus the entry.
      for (let i = 0; i < entries.length - 1; i++) {
        const [newer, older] = [entries[i] as Entry, entries[i + 1] as Entry];
        expect(newer.balance_after).toBe(older.balance_after + newer.amount);
        expect(newer.created_at >= older.created_at).toBe(true);
      }
      expect(entries.at(-1)).toMatchObject({ type: "grant", amount: 1000, balance_after: 1000, task_id: null });
      const failed = tasks[1]?.id;
      const refund = entries.find((e) => e.type === "refund");
      expect(refund).toMatchObject({ task_id: failed, reason: "generation failed: provider_error" });
      expect(refund?.amount).toBe(-(entries.find((e) => e.type === "reserve" && e.task_id === failed)?.amount ?? 0));
      expect(entries.find((e) => e.amount === -20)).toMatchObject({ type: "grant", reason: "correction" });
    });

    it("pages with limit and starting_after like every list, the same entries and balances as one page", async () => {
      const whole = await t.request("/api/v1/credits/ledger?limit=100", { key: a.key });
      expect(whole.body).toMatchObject({ object: "list", has_more: false });
      const paged = await allEntries(a.key);
      expect(paged).toEqual(whole.body.data);
      const first = await t.request("/api/v1/credits/ledger?limit=3", { key: a.key });
      expect(first.body.data).toHaveLength(3);
      expect(first.body.has_more).toBe(true);
      const defaultPage = await t.request("/api/v1/credits/ledger", { key: a.key });
      expect(defaultPage.body.data).toHaveLength(7);
    });

    it("filters by type (one, comma-separated, repeated) and time range, balance_after unchanged", async () => {
      const whole: Entry[] = (await t.request("/api/v1/credits/ledger?limit=100", { key: a.key })).body.data;
      const byId = new Map(whole.map((e) => [e.id, e]));
      const refunds = await allEntries(a.key, "&type=refund");
      expect(refunds.map((e) => e.type)).toEqual(["refund"]);
      expect(refunds[0]).toEqual(byId.get(refunds[0]?.id ?? ""));
      const two = await allEntries(a.key, "&type=reserve,grant");
      expect(two).toEqual(whole.filter((e) => e.type === "reserve" || e.type === "grant"));
      expect(await allEntries(a.key, "&type=reserve&type=grant")).toEqual(two);

      // created_after is inclusive, created_before exclusive: adjacent windows split the history.
      const middle = whole[3] as Entry;
      const after = encodeURIComponent(middle.created_at);
      const newer = await allEntries(a.key, `&created_after=${after}`);
      const older = await allEntries(a.key, `&created_before=${after}`);
      expect([...newer, ...older]).toEqual(whole);
      expect(newer.at(-1)?.created_at).toBe(middle.created_at);
      const windowed = await allEntries(a.key, `&created_after=${after}&created_before=${after}`);
      expect(windowed).toEqual([]);
      const day = whole[0]?.created_at.slice(0, 10) as string;
      const sameDay = await allEntries(a.key, `&created_after=${day}&type=reserve`);
      expect(sameDay).toEqual(whole.filter((e) => e.created_at >= `${day}T` && e.type === "reserve"));
      for (const e of [...newer, ...older, ...sameDay]) expect(e).toEqual(byId.get(e.id));
    });

    it("answers bad query values with 400 validation_failed", async () => {
      const q = (query: string) => t.request(`/api/v1/credits/ledger?${query}`, { key: a.key });
      expectInvalid(await q("type=settle"), "type");
      expectInvalid(await q("type=reserve,"), "type");
      expectInvalid(await q("created_after=yesterday"), "created_after");
      expectInvalid(await q("created_after=2026-02-30"), "created_after");
      expectInvalid(await q("created_before=2026-12-01T10:00:00"), "created_before");
      expectInvalid(await q("limit=0"), "limit");
      expectInvalid(await q("limit=101"), "limit");
      expectInvalid(await q("since=2026-01-01"), "since");
      expectInvalid(await q("starting_after=led_nope"), "starting_after");
    });

    it("shows only the caller's entries; another account's id is not a cursor", async () => {
      const mine = await allEntries(a.key);
      const theirs = await allEntries(b.key);
      expect(theirs.map((e) => e.type)).toEqual(["reserve", "grant"]);
      expect(theirs.reduce((n, e) => n + e.amount, 0)).toBe(await balance(b.key));
      const mineIds = new Set(mine.map((e) => e.id));
      expect(theirs.some((e) => mineIds.has(e.id))).toBe(false);
      expectInvalid(
        await t.request(`/api/v1/credits/ledger?starting_after=${mine[0]?.id}`, { key: b.key }),
        "starting_after",
      );
    });

    it("needs the credits:read scope", async () => {
      const limited = await t.createAccount(0, { scopes: ["generations:read"] });
      for (const path of ["/api/v1/credits/ledger", "/api/v1/usage"]) {
        const res = await t.request(path, { key: limited.key });
        expect(res.status, res.text).toBe(403);
        expect(res.body.error.code).toBe("api_scope_denied");
      }
      const res = await t.request("/api/v1/credits/ledger", { method: "POST", key: a.key });
      expect(res.status).toBe(405);
    });
  });

  describe("GET /api/v1/usage", () => {
    it("defaults to the last 30 days in UTC days, empty days as zeros, agreeing with the ledger", async () => {
      const res = await t.request("/api/v1/usage", { key: a.key });
      expect(res.status, res.text).toBe(200);
      const usage = res.body;
      expect(usage).toMatchObject({ object: "usage", granularity: "day" });
      expect(usage.data).toHaveLength(30);
      const today = new Date(Math.floor(clock.now().getTime() / DAY) * DAY).toISOString();
      expect(usage.data.at(-1).start).toBe(today);
      expect(usage.end).toBe(new Date(Date.parse(today) + DAY).toISOString());
      for (let i = 1; i < usage.data.length; i++) {
        expect(Date.parse(usage.data[i].start) - Date.parse(usage.data[i - 1].start)).toBe(DAY);
      }
      expect(usage.data[0]).toEqual({
        start: usage.start,
        tasks_created: 0,
        tasks_succeeded: 0,
        tasks_failed: 0,
        tasks_canceled: 0,
        credits_charged: 0,
        credits_refunded: 0,
        credits_granted: 0,
      });

      const entries = await allEntries(a.key);
      for (const bucket of usage.data) {
        const inBucket = entries.filter((e) => e.created_at.slice(0, 10) === bucket.start.slice(0, 10));
        expect(bucket, bucket.start).toMatchObject(creditsOf(inBucket));
      }
      expect(usage.totals).toMatchObject({
        tasks_created: 3,
        tasks_succeeded: 2,
        tasks_failed: 1,
        tasks_canceled: 0,
        ...creditsOf(entries),
      });
      // The whole history is in range: what came in less what went out is the balance.
      const { credits_granted, credits_charged, credits_refunded } = usage.totals;
      expect(credits_granted - credits_charged + credits_refunded).toBe(await balance(a.key));
    });

    it("buckets by the hour over an explicit range, each bucket agreeing with the ledger", async () => {
      const entries = await allEntries(a.key);
      const oldest = entries.at(-1)?.created_at as string;
      const start = oldest.slice(0, 13);
      const res = await t.request(
        `/api/v1/usage?granularity=hour&start=${start}:17:00Z&end=${encodeURIComponent(
          new Date(Date.parse(`${start}:00:00Z`) + 60 * HOUR).toISOString(),
        )}`,
        { key: a.key },
      );
      expect(res.status, res.text).toBe(200);
      // start is moved back to its hour; 60 hours of buckets.
      expect(res.body.start).toBe(`${start}:00:00.000Z`);
      expect(res.body.data).toHaveLength(60);
      let created = 0;
      for (const bucket of res.body.data) {
        const inBucket = entries.filter((e) => e.created_at.slice(0, 13) === bucket.start.slice(0, 13));
        expect(bucket, bucket.start).toMatchObject(creditsOf(inBucket));
        created += bucket.tasks_created;
      }
      expect(created).toBe(3);
      const inRange = entries.filter((e) => e.created_at >= res.body.start && e.created_at < res.body.end);
      expect(res.body.totals).toMatchObject(creditsOf(inRange));
      // Tasks land in several hour buckets, not one.
      expect(res.body.data.filter((x: { tasks_created: number }) => x.tasks_created > 0).length).toBe(3);
    });

    it("counts a task canceled through the API as canceled, not failed, and its refund", async () => {
      const before = (await t.request("/api/v1/usage", { key: a.key })).body.totals;
      const created = await t.request("/api/v1/generations", {
        key: a.key,
        json: { model: "kling-2-6", prompt: "[sim:delay=60] canceled while it renders" },
      });
      const id = created.body.id as string;
      // The simulator's render can be cancelled once the task is processing.
      for (
        let i = 0;
        (await t.request(`/api/v1/generations/${id}`, { key: a.key })).body.status !== "processing";
        i++
      ) {
        if (i > 400) throw new Error("the task never started processing");
        await new Promise((r) => setTimeout(r, 25));
      }
      const canceled = await t.request(`/api/v1/generations/${id}/cancel`, { key: a.key, method: "POST" });
      expect(canceled.status, canceled.text).toBe(200);
      expect(canceled.body.error.reason).toBe("canceled");

      const res = await t.request("/api/v1/usage", { key: a.key });
      expect(res.body.totals).toMatchObject({
        tasks_created: 4,
        tasks_succeeded: 2,
        tasks_failed: 1,
        tasks_canceled: 1,
        credits_charged: before.credits_charged + canceled.body.reserved_credits,
        credits_refunded: before.credits_refunded + canceled.body.reserved_credits,
      });
      const entries = await allEntries(a.key);
      expect(entries.slice(0, 2).map((e) => [e.type, e.task_id])).toEqual([
        ["refund", id],
        ["reserve", id],
      ]);
      expect(res.body.totals).toMatchObject(creditsOf(entries));
    });

    it("answers bad ranges with 400 validation_failed", async () => {
      const q = (query: string) => t.request(`/api/v1/usage?${query}`, { key: a.key });
      expectInvalid(await q("granularity=week"), "granularity");
      expectInvalid(await q("start=last-week"), "start");
      expectInvalid(await q("end=2026-12-01T00:00:00"), "end");
      expectInvalid(await q("start=2026-12-10&end=2026-12-01"), "end");
      expectInvalid(await q("start=2026-12-01&end=2026-12-01"), "end");
      expectInvalid(await q("start=2026-01-01&end=2026-02-02"), "end");
      expectInvalid(await q("granularity=hour&start=2026-01-01&end=2026-01-08T01:00:00Z"), "end");
      expectInvalid(await q("limit=5"), "limit");
      expect((await q("start=2026-01-01&end=2026-02-01")).body.data).toHaveLength(31);
      expect((await q("granularity=hour&start=2026-01-01&end=2026-01-08")).body.data).toHaveLength(168);
      expect((await q("granularity=hour")).body.data).toHaveLength(24);
    });

    it("never counts another account's tasks or credits", async () => {
      const res = await t.request("/api/v1/usage", { key: b.key });
      expect(res.body.totals).toMatchObject({
        tasks_created: 1,
        tasks_succeeded: 1,
        ...creditsOf(await allEntries(b.key)),
      });
    });
  });

  describe("GET /admin/v1/usage", () => {
    it("sums every account, with per-account, per-provider and refund breakdowns that reconcile", async () => {
      const res = await t.admin("/admin/v1/usage");
      expect(res.status, res.text).toBe(200);
      const usage = res.body;
      const mine = (await t.request("/api/v1/usage", { key: a.key })).body;
      const theirs = (await t.request("/api/v1/usage", { key: b.key })).body;
      expect(usage.start).toBe(mine.start);
      for (const [i, bucket] of usage.data.entries()) {
        for (const field of Object.keys(bucket).filter((k) => k !== "start")) {
          expect(bucket[field], `${bucket.start} ${field}`).toBe(mine.data[i][field] + theirs.data[i][field]);
        }
      }
      const byAccount = new Map(usage.by_account.map((x: { account_id: string }) => [x.account_id, x]));
      expect(byAccount.get(a.accountId)).toMatchObject({ name: "test", ...mine.totals });
      expect(byAccount.get(b.accountId)).toMatchObject(theirs.totals);

      // Every task went to the simulator; its credits are every charge and refund of the range.
      const simulated = usage.by_provider.find((p: { provider: string | null }) => p.provider === "simulated");
      expect(simulated).toMatchObject({
        tasks_created: usage.totals.tasks_created,
        credits_charged: usage.totals.credits_charged,
        credits_refunded: usage.totals.credits_refunded,
      });
      const entries = [...(await allEntries(a.key)), ...(await allEntries(b.key))];
      const refunds = entries.filter((e) => e.type === "refund");
      const sum = (list: Entry[]) => list.reduce((n, e) => n + e.amount, 0);
      const failed = refunds.filter((e) => e.reason === "generation failed: provider_error");
      const canceled = refunds.filter((e) => e.reason === "generation failed: canceled");
      expect(failed).toHaveLength(1);
      expect(canceled).toHaveLength(1);
      expect(usage.refunds).toMatchObject({ count: 2, credits: sum(refunds) });
      expect(usage.refunds.credits).toBe(usage.totals.credits_refunded);
      expect(
        [...usage.refunds.by_reason].sort((x: { reason: string }, y: { reason: string }) =>
          x.reason.localeCompare(y.reason),
        ),
      ).toEqual([
        { reason: "generation failed: canceled", count: 1, credits: sum(canceled) },
        { reason: "generation failed: provider_error", count: 1, credits: sum(failed) },
      ]);
    });

    it("filters by account_id, and validates like the public route", async () => {
      const one = await t.admin(`/admin/v1/usage?account_id=${b.accountId}&granularity=hour`);
      expect(one.status, one.text).toBe(200);
      const theirs = (await t.request("/api/v1/usage?granularity=hour", { key: b.key })).body;
      expect(one.body.data).toEqual(theirs.data);
      expect(one.body.account_id).toBe(b.accountId);
      expect(one.body.by_account.map((x: { account_id: string }) => x.account_id)).toEqual([b.accountId]);

      const missing = await t.admin("/admin/v1/usage?account_id=acct_nope");
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe("not_found");
      expectInvalid(await t.admin("/admin/v1/usage?granularity=minute"), "granularity");
      expectInvalid(await t.admin("/admin/v1/usage?accounts=x"), "accounts");
      const anonymous = await t.request("/admin/v1/usage");
      expect(anonymous.status).toBe(401);
      expect((await t.request("/admin/v1/usage", { key: a.key })).status).toBe(401);
    });
  });
});
