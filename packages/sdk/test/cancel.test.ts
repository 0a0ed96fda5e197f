/** generations.cancel against the real server (simulator): the cancelled task, and the 409s as NotCancelableError. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConflictError, type Framegate, NotCancelableError, NotFoundError } from "../src/index.js";
import { clientFor, FaultProxy, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;

beforeAll(async () => {
  t = await startTestServer();
  ({ client } = await clientFor(t, 1000));
});
afterAll(async () => {
  await t?.close();
});

describe("generations.cancel", () => {
  it("returns the task failed with reason canceled, refunded; a second cancel throws NotCancelableError", async () => {
    const task = await client.generations.create({ model: "kling-2-6", prompt: "[sim:delay=60] a long one" });
    const canceled = await client.generations.cancel(task.id);
    expect(canceled).toMatchObject({
      id: task.id,
      status: "failed",
      final_credits: 0,
      error: { code: "generation_failed", reason: "canceled" },
    });
    if (canceled.error) expect(canceled.error.reason).toBe("canceled");
    expect(await client.credits.retrieve()).toEqual({ current_credits: 1000 });

    const again = await client.generations.cancel(task.id).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(NotCancelableError);
    expect(again).toBeInstanceOf(ConflictError);
    expect(again).toMatchObject({ status: 409, code: "not_cancelable" });
  });

  it("an unknown task is a NotFoundError", async () => {
    await expect(client.generations.cancel("task_doesnotexist")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a 409 with Retry-After (a submit in flight) is tried again; one without is not", async () => {
    let cancels = 0;
    const proxy = await FaultProxy.start(t.url, (req) => {
      if (!req.path.endsWith("/cancel")) return undefined;
      cancels++;
      return cancels === 1 ? { status: 409, code: "not_cancelable", headers: { "retry-after": "0" } } : undefined;
    });
    try {
      const { client: proxied } = await clientFor(t, 1000, { baseUrl: proxy.url });
      const task = await proxied.generations.create({ model: "kling-2-6", prompt: "[sim:delay=60] retried" });
      const canceled = await proxied.generations.cancel(task.id);
      expect(canceled.status).toBe("failed");
      expect(cancels).toBe(2);
      // Finished now: the server's 409 has no Retry-After, so it is thrown at once.
      await expect(proxied.generations.cancel(task.id)).rejects.toBeInstanceOf(NotCancelableError);
      expect(cancels).toBe(3);
    } finally {
      await proxy.close();
    }
  });
});
