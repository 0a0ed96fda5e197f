import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Framegate, type Task, WaitTimeoutError } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;

beforeAll(async () => {
  t = await startTestServer();
  ({ client } = await clientFor(t, 2000));
});
afterAll(async () => {
  await t?.close();
});

describe("models and credits", () => {
  it("models.list returns the catalog, even without a key", async () => {
    const { Framegate } = await import("../src/index.js");
    const keyless = new Framegate({ baseUrl: t.url, apiKey: "" });
    const models = await keyless.models.list();
    expect(models.object).toBe("list");
    const kling = models.data.find((m) => m.id === "kling-2-6");
    expect(kling?.base_credits).toBe(55);
    expect(kling?.params.map((p) => p.key)).toEqual(["duration", "sound", "aspect_ratio"]);
  });

  it("accepts a base URL with /api/v1 and a trailing slash", async () => {
    const { Framegate } = await import("../src/index.js");
    const other = new Framegate({ baseUrl: `${t.url}/api/v1/`, apiKey: "x" });
    expect(other.baseUrl).toBe(t.url);
    expect((await other.models.list()).data.length).toBeGreaterThan(0);
  });

  it("credits.retrieve returns the balance", async () => {
    const { client: fresh } = await clientFor(t, 321);
    expect(await fresh.credits.retrieve()).toEqual({ current_credits: 321 });
  });
});

describe("generations", () => {
  it("create returns the queued task and retrieve reads it back", async () => {
    const task = await client.generations.create({
      model: "kling-2-6",
      prompt: "A paper boat drifting down a rainy street",
      params: { duration: 10, sound: true, aspect_ratio: "16:9" },
      client_request_id: "order-123",
    });
    expect(task).toMatchObject({
      object: "generation",
      status: "queued",
      model: "kling-2-6",
      reserved_credits: 55,
      final_credits: 0,
      client_request_id: "order-123",
      params: { duration: "10", sound: "true", aspect_ratio: "16:9" },
      result: null,
      error: null,
    });
    const again = await client.generations.retrieve(task.id);
    expect(again.id).toBe(task.id);
    expect(again.params).toEqual(task.params);
  });

  it("an explicit idempotencyKey replays the same task", async () => {
    const body = { model: "kling-2-6" as const, prompt: "idempotent [sim:delay=0]" };
    const a = await client.generations.create(body, { idempotencyKey: "sdk-test-key-1" });
    const b = await client.generations.create(body, { idempotencyKey: "sdk-test-key-1" });
    expect(b.id).toBe(a.id);
  });

  it("list pages with limit and iterates every task across pages", async () => {
    const { client: fresh } = await clientFor(t, 1000);
    const created: Task[] = [];
    for (let i = 0; i < 5; i++) {
      created.push(await fresh.generations.create({ model: "kling-2-6", prompt: `list ${i} [sim:delay=30]` }));
    }
    const first = await fresh.generations.list({ limit: 2 });
    expect(first.data.map((x) => x.id)).toEqual([created[4]?.id, created[3]?.id]);
    expect(first.has_more).toBe(true);
    expect(first.hasNextPage()).toBe(true);
    const second = await first.getNextPage();
    expect(second.data.map((x) => x.id)).toEqual([created[2]?.id, created[1]?.id]);

    const seen: string[] = [];
    for await (const task of fresh.generations.list({ limit: 2 })) seen.push(task.id);
    expect(seen).toEqual(created.map((x) => x.id).reverse());

    const pages: number[] = [];
    for await (const page of first.iterPages()) pages.push(page.data.length);
    expect(pages).toEqual([2, 2, 1]);

    const after: string[] = [];
    for await (const task of fresh.generations.list({ limit: 2, startingAfter: created[2]?.id })) after.push(task.id);
    expect(after).toEqual([created[1]?.id, created[0]?.id]);

    const queued = await fresh.generations.list({ status: "succeeded" });
    expect(queued.data).toEqual([]);
    expect(queued.hasNextPage()).toBe(false);
  });

  it("createAndWait returns the succeeded task and reports updates", async () => {
    const updates: string[] = [];
    const task = await client.generations.createAndWait(
      { model: "kling-2-6", prompt: "A lighthouse at dusk [sim:delay=1]" },
      { onUpdate: (u) => void updates.push(u.status) },
    );
    expect(task.status).toBe("succeeded");
    expect(task.final_credits).toBe(55);
    expect(task.result?.primary_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/media\//);
    expect(task.result?.media[0]?.mime_type).toBe("video/mp4");
    expect(updates[0]).toBe("queued");
    expect(updates.at(-1)).toBe("succeeded");
    // The checks are held by the server (Prefer: wait): the created task, then the finished one.
    expect(updates.length).toBeGreaterThanOrEqual(2);
  });

  it("waitFor returns a failed task without throwing", async () => {
    const created = await client.generations.create({ model: "kling-2-6", prompt: "doomed [sim:fail]" });
    const task = await client.generations.waitFor(created.id);
    expect(task.status).toBe("failed");
    expect(task.error).toMatchObject({ code: "generation_failed", reason: "provider_error" });
    expect(task.final_credits).toBe(0);
  });

  it("waitFor rejects with an AbortError when its signal aborts mid-wait", async () => {
    const created = await client.generations.create({ model: "kling-2-6", prompt: "slow [sim:delay=30]" });
    const controller = new AbortController();
    const seen: string[] = [];
    setTimeout(() => controller.abort(), 400);
    const started = Date.now();
    await expect(
      client.generations.waitFor(created.id, {
        signal: controller.signal,
        onUpdate: (u) => void seen.push(u.status),
      }),
    ).rejects.toMatchObject({ name: "AbortError" });
    expect(Date.now() - started).toBeLessThan(2000);
    // The abort came while the first check was held by the server: nothing was reported.
    expect(seen).toEqual([]);
    // An already aborted signal rejects at once.
    await expect(client.generations.waitFor(created.id, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: "AbortError",
    });
  });

  it("waitFor rejects with WaitTimeoutError carrying the last task", async () => {
    const created = await client.generations.create({ model: "kling-2-6", prompt: "slower [sim:delay=30]" });
    const error = await client.generations.waitFor(created.id, { timeout: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect((error as WaitTimeoutError).taskId).toBe(created.id);
    expect(((error as WaitTimeoutError).task as Task).status).toMatch(/queued|processing/);
  });

  it("waitFor against a server that does not hold answers polls at the documented cadence (2-3 s)", async () => {
    const { Framegate } = await import("../src/index.js");
    const { key } = await clientFor(t, 100);
    const calls: number[] = [];
    let started = Date.now();
    const slow = new Framegate({
      apiKey: key,
      baseUrl: t.url,
      // An older server: Prefer is not understood, so no answer is held.
      fetch: (input, init) => {
        calls.push(Date.now() - started);
        const headers = new Headers(init?.headers);
        headers.delete("prefer");
        return fetch(input, { ...init, headers });
      },
    });
    const created = await slow.generations.create({ model: "kling-2-6", prompt: "cadence [sim:delay=30]" });
    calls.length = 0;
    started = Date.now();
    await expect(slow.generations.waitFor(created.id, { timeout: 2800 })).rejects.toBeInstanceOf(WaitTimeoutError);
    // One check at once (it would have been held), then polling: the next after 2.5 s, the one
    // after that 5 s later, so at most a last check at the deadline.
    // (A loaded machine may add the client's own retries of a slow last check: no hammering
    // before the cadence is what this checks.)
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls[1]).toBeGreaterThanOrEqual(2400);
    expect(calls.filter((at) => at > (calls[0] as number) && at < 2400)).toEqual([]);
  });
});
