/**
 * GET /api/v1/generations?client_request_id=… (a Framegate extension of the list): only the
 * account's tasks created with that id, newest first, paginated like the plain list, combinable
 * with status; another account's tasks with the same id are never seen; bad values are a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./harness.js";

describe("GET /api/v1/generations with client_request_id", () => {
  let t: TestServer;
  let key: string;
  let otherKey: string;

  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_CREATE_PER_MIN: "0" });
    ({ key } = await t.createAccount(10_000));
    ({ key: otherKey } = await t.createAccount(10_000));
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = async (k: string, prompt: string, clientRequestId: string | null) => {
    const res = await t.request("/api/v1/generations", {
      key: k,
      json: { model: "kling-2-6", prompt, ...(clientRequestId !== null ? { client_request_id: clientRequestId } : {}) },
    });
    expect(res.status, res.text).toBe(202);
    return res.body.id as string;
  };
  const ids = (body: { data: { id: string }[] }) => body.data.map((x) => x.id);

  it("lists only the matching tasks, newest first, across pages and with status", async () => {
    // First, so that it runs (and fails) before the long ones fill the account's running slots.
    const failed = await create(key, "order, failing [sim:fail]", "order-42");
    const deadline = Date.now() + 20_000;
    while ((await t.request(`/api/v1/generations/${failed}`, { key })).body.status !== "failed") {
      if (Date.now() > deadline) throw new Error("the [sim:fail] task did not fail");
      await new Promise((r) => setTimeout(r, 50));
    }
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push(await create(key, `order ${i} [sim:delay=60]`, "order-42"));
      await create(key, `other ${i} [sim:delay=60]`, i % 2 ? "order-43" : null);
    }
    // Another account's task with the same client_request_id.
    await create(otherKey, "theirs [sim:delay=60]", "order-42");
    const newestFirst = [...[...mine].reverse(), failed];

    const all = await t.request("/api/v1/generations?client_request_id=order-42&limit=100", { key });
    expect(all.status).toBe(200);
    expect(all.body.object).toBe("list");
    expect(ids(all.body)).toEqual(newestFirst);
    expect(all.body.has_more).toBe(false);
    for (const task of all.body.data) expect(task.client_request_id).toBe("order-42");

    // Pages: starting_after moves along the filtered list.
    const first = await t.request("/api/v1/generations?client_request_id=order-42&limit=4", { key });
    expect(ids(first.body)).toEqual(newestFirst.slice(0, 4));
    expect(first.body.has_more).toBe(true);
    const second = await t.request(
      `/api/v1/generations?client_request_id=order-42&limit=4&starting_after=${newestFirst[3]}`,
      { key },
    );
    expect(ids(second.body)).toEqual(newestFirst.slice(4));
    expect(second.body.has_more).toBe(false);

    const onlyFailed = await t.request("/api/v1/generations?client_request_id=order-42&status=failed", { key });
    expect(ids(onlyFailed.body)).toEqual([failed]);

    const theirs = await t.request("/api/v1/generations?client_request_id=order-42", { key: otherKey });
    expect(theirs.body.data).toHaveLength(1);
    expect(theirs.body.data[0].id).not.toBe(newestFirst[0]);
    expect(newestFirst).not.toContain(theirs.body.data[0].id);

    const none = await t.request("/api/v1/generations?client_request_id=nobody", { key });
    expect(none.body).toEqual({ object: "list", data: [], has_more: false });

    // The same id with URL-special characters round-trips.
    const odd = await create(key, "odd id [sim:delay=60]", "a b&c=d/é");
    const oddList = await t.request(`/api/v1/generations?client_request_id=${encodeURIComponent("a b&c=d/é")}`, {
      key,
    });
    expect(ids(oddList.body)).toEqual([odd]);
  });

  it("an empty or too long client_request_id is a 400 validation_failed naming it", async () => {
    for (const value of ["", "x".repeat(129)]) {
      const res = await t.request(`/api/v1/generations?client_request_id=${value}`, { key });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: "validation_failed",
        details: [{ path: "client_request_id", issue: "must be 1 to 128 characters" }],
      });
    }
    const longest = await t.request(`/api/v1/generations?client_request_id=${"x".repeat(128)}`, { key });
    expect(longest.status).toBe(200);
  });
});
