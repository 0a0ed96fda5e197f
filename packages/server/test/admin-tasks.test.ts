/**
 * GET /admin/v1/tasks: every account's tasks for the operator, newest first, filtered by account,
 * model, provider, status and creation range, paged like the public lists, with the refunds of
 * the whole filtered set; bad queries are 400 in the envelope. On SQLite, the plan of each
 * filter's statement walks an index in page order (no sort of the table).
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filterAdminTasks } from "../src/generations/admin-list.js";
import { refundsOfTasksQuery } from "../src/ledger/refund-totals.js";
import { type Cursor, newestFirstQuery } from "../src/store/pagination.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { TEST_STORE } from "./test-store.js";

const ENV = { RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_CREATE_PER_MIN: "0" };

// biome-ignore lint/suspicious/noExplicitAny: response JSON
type Json = any;

describe("GET /admin/v1/tasks", () => {
  let t: TestServer;
  const a = { accountId: "", key: "" };
  const b = { accountId: "", key: "" };
  /** Every task, newest first, as created. */
  const created: { id: string; account: string; failed: boolean; created_at: string; credits: number }[] = [];

  beforeAll(async () => {
    t = await startTestServer(ENV);
    Object.assign(a, await t.createAccount(10_000));
    Object.assign(b, await t.createAccount(10_000));
    const plan: [typeof a, string][] = [
      [a, "a one"],
      [a, "a two [sim:fail]"],
      [b, "b one [sim:fail]"],
      [a, "a three"],
      [b, "b two"],
    ];
    for (const [who, prompt] of plan) {
      const res = await t.request("/api/v1/generations", { key: who.key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      const done = await waitForTask(t, who.key, res.body.id);
      created.unshift({
        id: res.body.id,
        account: who.accountId,
        failed: done.status === "failed",
        created_at: done.created_at,
        credits: res.body.credits ?? 0,
      });
    }
    expect(created.filter((c) => c.failed)).toHaveLength(2);
  }, 180_000);

  afterAll(async () => {
    await t?.close();
  });

  const list = async (query: string) => {
    const res = await t.admin(`/admin/v1/tasks${query}`);
    expect(res.status, res.text).toBe(200);
    return res.body as Json;
  };
  const refundOf = async (accountId: string) =>
    (await t.admin(`/admin/v1/accounts/${accountId}`)).body.ledger.refunded as number;

  it("lists every account's tasks newest first, with operator facts and the refunds of the set", async () => {
    const body = await list("");
    expect(body.object).toBe("list");
    expect(body.has_more).toBe(false);
    expect(body.data.map((d: Json) => d.task.id)).toEqual(created.map((c) => c.id));
    expect(body.data.map((d: Json) => d.account_id)).toEqual(created.map((c) => c.account));
    for (const item of body.data) {
      expect(item.provider).toBe("simulated");
      expect(typeof item.upstream_id).toBe("string");
    }
    const failed = body.data.find((d: Json) => d.task.status === "failed");
    expect(failed.error_detail === null || typeof failed.error_detail === "string").toBe(true);
    const refunded = (await refundOf(a.accountId)) + (await refundOf(b.accountId));
    expect(refunded).toBeGreaterThan(0);
    expect(body.refunds).toEqual({ count: 2, credits: refunded });
  });

  it("filters by account and status, and the refunds follow the filter", async () => {
    const ofA = await list(`?account_id=${a.accountId}`);
    expect(ofA.data.map((d: Json) => d.task.id)).toEqual(
      created.filter((c) => c.account === a.accountId).map((c) => c.id),
    );
    expect(ofA.refunds).toEqual({ count: 1, credits: await refundOf(a.accountId) });

    const failedOfB = await list(`?account_id=${b.accountId}&status=failed`);
    expect(failedOfB.data).toHaveLength(1);
    expect(failedOfB.data[0].account_id).toBe(b.accountId);
    expect(failedOfB.data[0].task.status).toBe("failed");
    expect(failedOfB.refunds).toEqual({ count: 1, credits: await refundOf(b.accountId) });

    const succeeded = await list("?status=succeeded");
    expect(succeeded.data.map((d: Json) => d.task.id)).toEqual(created.filter((c) => !c.failed).map((c) => c.id));
    expect(succeeded.refunds).toEqual({ count: 0, credits: 0 });
  });

  it("filters by model, provider and creation range", async () => {
    expect((await list("?model=kling-2-6")).data).toHaveLength(5);
    expect((await list("?model=kling-9")).data).toHaveLength(0);
    expect((await list("?provider=simulated")).data).toHaveLength(5);
    const none = await list("?provider=fal");
    expect(none.data).toHaveLength(0);
    expect(none.refunds).toEqual({ count: 0, credits: 0 });

    // created_after is inclusive, created_before exclusive.
    const third = created[2] as (typeof created)[number];
    const after = await list(`?created_after=${encodeURIComponent(third.created_at)}`);
    expect(after.data.map((d: Json) => d.task.id)).toEqual(
      created.filter((c) => c.created_at >= third.created_at).map((c) => c.id),
    );
    const before = await list(`?created_before=${encodeURIComponent(third.created_at)}`);
    expect(before.data.map((d: Json) => d.task.id)).toEqual(
      created.filter((c) => c.created_at < third.created_at).map((c) => c.id),
    );
    expect((await list("?created_after=2999-01-01")).data).toHaveLength(0);
  });

  it("pages with limit and starting_after, filters kept", async () => {
    const seen: string[] = [];
    let cursor = "";
    for (let i = 0; i < 10; i++) {
      const page = await list(`?limit=2${cursor ? `&starting_after=${cursor}` : ""}`);
      seen.push(...page.data.map((d: Json) => d.task.id));
      if (!page.has_more) break;
      cursor = page.data.at(-1).task.id;
    }
    expect(seen).toEqual(created.map((c) => c.id));

    const firstOfA = await list(`?account_id=${a.accountId}&limit=1`);
    expect(firstOfA.has_more).toBe(true);
    const rest = await list(`?account_id=${a.accountId}&starting_after=${firstOfA.data[0].task.id}`);
    expect(rest.data.every((d: Json) => d.account_id === a.accountId)).toBe(true);
    expect(rest.data).toHaveLength(2);
    // The refunds cover the filtered set, whichever page is shown.
    expect(rest.refunds).toEqual(firstOfA.refunds);
  });

  it("refuses bad queries in the error envelope", async () => {
    const cases: [string, number, string, string?][] = [
      ["?accountid=x", 400, "validation_failed", "accountid"],
      ["?status=done", 400, "validation_failed", "status"],
      ["?limit=0", 400, "validation_failed", "limit"],
      ["?limit=101", 400, "validation_failed", "limit"],
      ["?created_after=yesterday", 400, "validation_failed", "created_after"],
      ["?created_after=2026-12-02&created_before=2026-12-01", 400, "validation_failed", "created_before"],
      ["?account_id=a%20b", 400, "validation_failed", "account_id"],
      ["?starting_after=task_nope", 400, "validation_failed", "starting_after"],
      ["?account_id=acct_nope", 404, "not_found"],
    ];
    for (const [query, status, code, path] of cases) {
      const res = await t.admin(`/admin/v1/tasks${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(status);
      expect(res.body.error.code).toBe(code);
      if (path) expect(res.body.error.details[0].path).toBe(path);
    }
  });

  it("needs the admin token: an API key or nothing is 401", async () => {
    expect((await t.request("/admin/v1/tasks")).status).toBe(401);
    expect((await t.request("/admin/v1/tasks", { key: a.key })).status).toBe(401);
  });

  it("answers one task in full with GET /admin/v1/tasks/{id}", async () => {
    const failed = created.find((c) => c.failed) as (typeof created)[number];
    const res = await t.admin(`/admin/v1/tasks/${failed.id}`);
    expect(res.status).toBe(200);
    expect(res.body.task.id).toBe(failed.id);
    expect(res.body.account_id).toBe(failed.account);
    expect(res.body.task.error.reason).toBe("provider_error");
    expect((await t.admin("/admin/v1/tasks/task_nope")).status).toBe(404);
  });

  it.runIf(TEST_STORE === "sqlite")("walks an index in page order for each filter (SQLite plan)", async () => {
    const db = t.server.store.db;
    const planOf = async (compiled: { sql: string; parameters: readonly unknown[] }) => {
      const rows = await sql
        .raw<{ detail: string }>(`explain query plan ${inline(compiled.sql, compiled.parameters)}`)
        .execute(db);
      return rows.rows.map((r) => r.detail);
    };
    const page = (filters: Parameters<typeof filterAdminTasks>[1], cursor?: Cursor) =>
      newestFirstQuery(filterAdminTasks(db.selectFrom("tasks").selectAll(), filters), cursor, 20).compile();
    const expectations: [Parameters<typeof filterAdminTasks>[1], RegExp][] = [
      [{}, /USING INDEX tasks_created\b/],
      [{ status: "failed" }, /USING INDEX tasks_status_created \(status=\?\)/],
      [{ provider: "simulated", model: "kling-2-6" }, /USING INDEX tasks_created\b/],
      [{ accountId: "acct_x" }, /USING INDEX tasks_account_created \(account_id=\?\)/],
      [
        { accountId: "acct_x", status: "queued" },
        /USING INDEX tasks_status_account_created \(status=\? AND account_id=\?\)/,
      ],
      [{ createdAfter: "2026-01-01T00:00:00.000Z" }, /USING INDEX tasks_created \(created_at>\?\)/],
    ];
    for (const [filters, index] of expectations) {
      const plan = await planOf(page(filters));
      expect(plan.join("\n"), JSON.stringify(filters)).toMatch(index);
      // No sort of the filtered rows: the index gives the page's order.
      expect(plan.join("\n"), JSON.stringify(filters)).not.toMatch(/TEMP B-TREE/);
    }
    // A later page starts its walk at the cursor (an index range), not at the newest task.
    const cursor = { created_at: "2026-01-01T00:00:00.000Z", id: "task_x" };
    const later = (await planOf(page({}, cursor))).join("\n");
    expect(later).toMatch(/USING INDEX tasks_created \(created_at<\?\)/);
    expect(later).not.toMatch(/TEMP B-TREE/);
    const refunds = await planOf(
      refundsOfTasksQuery(
        db,
        filterAdminTasks(db.selectFrom("tasks").select("tasks.id"), { status: "failed" }),
      ).compile(),
    );
    expect(refunds.join("\n")).toMatch(/tasks USING COVERING INDEX tasks_status_created \(status=\?\)/);
    expect(refunds.join("\n")).toMatch(
      /ledger_entries USING INDEX ledger_entries_task_type \(task_id=\? AND type=\?\)/,
    );
  });
});

/** The statement with its parameters written in as literals (for EXPLAIN, which takes no bindings here). */
function inline(text: string, parameters: readonly unknown[]): string {
  let i = 0;
  return text.replace(/\?/g, () => `'${String(parameters[i++]).replace(/'/g, "''")}'`);
}
