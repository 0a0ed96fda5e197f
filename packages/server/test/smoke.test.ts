import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";

describe("smoke", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it("creates a generation, charges 55 and produces a video", async () => {
    const { key } = await t.createAccount(100);
    const created = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: "hello" } });
    expect(created.status).toBe(202);
    expect(created.headers.get("location")).toBe(`/api/v1/generations/${created.body.id}`);
    const done = await waitForTask(t, key, created.body.id);
    expect(done.status).toBe("succeeded");
    expect(done.final_credits).toBe(55);
    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.body).toEqual({ current_credits: 45 });
  });
});
