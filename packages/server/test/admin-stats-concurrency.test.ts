/**
 * GET /admin/v1/stats: each provider's concurrency in use, counted from the store as the router's
 * caps count it (tasks processing on it), against its cap (null when uncapped, else the
 * configured *_MAX_CONCURRENCY).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { pollUntil } from "./webhook-receiver.js";

describe("GET /admin/v1/stats, provider concurrency", () => {
  let t: TestServer;
  let key = "";

  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_CREATE_PER_MIN: "0" });
    ({ key } = await t.createAccount(10_000));
  });

  afterAll(async () => {
    await t?.close();
  });

  const simulated = async () => {
    const res = await t.admin("/admin/v1/stats");
    expect(res.status, res.text).toBe(200);
    // biome-ignore lint/suspicious/noExplicitAny: response JSON
    return res.body.providers.data.find((p: any) => p.provider === "simulated");
  };

  it("counts the tasks processing on a provider, and none once they end", async () => {
    expect((await simulated()).concurrency).toEqual({ in_use: 0, limit: null });
    const ids: string[] = [];
    for (const prompt of ["slow one [sim:delay=3]", "slow two [sim:delay=3]"]) {
      const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      expect(res.status, res.text).toBe(202);
      ids.push(res.body.id);
    }
    await pollUntil(
      async () => ((await simulated()).concurrency.in_use === 2 ? true : undefined),
      30_000,
      "two tasks processing",
    );
    for (const id of ids) await waitForTask(t, key, id);
    expect((await simulated()).concurrency).toEqual({ in_use: 0, limit: null });
  }, 90_000);

  it("states each provider's cap from its configuration", async () => {
    // A chain with fal after the simulator: fal is never called here, only configured.
    const capped = await startTestServer({ PROVIDERS: "simulated,fal", FAL_KEY: "test-key", FAL_MAX_CONCURRENCY: "7" });
    try {
      const res = await capped.admin("/admin/v1/stats");
      expect(res.status, res.text).toBe(200);
      // biome-ignore lint/suspicious/noExplicitAny: response JSON
      const byName = Object.fromEntries(res.body.providers.data.map((p: any) => [p.provider, p.concurrency]));
      expect(byName).toEqual({ simulated: { in_use: 0, limit: null }, fal: { in_use: 0, limit: 7 } });
    } finally {
      await capped.close();
    }
  });
});
