/**
 * A delivery that finds no free slot parks, and the slot given back next is handed to it at once
 * (webhooks/slot-waiters.ts): it does not wait for its safety-net retry. The server's clock runs
 * a thousand times slower than real time here, so that retry (seconds ahead on the server's
 * clock) would take about an hour: every delivery below can only go out through a wake, per
 * endpoint and (another endpoint of the same account) per account, and the caps still hold.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../src/util/clock.js";
import { startTestServer, type TestServer } from "./harness.js";
import { pollUntil, WebhookReceiver } from "./webhook-receiver.js";

/** Server time that advances 1 ms per real second. */
class SlowClock implements Clock {
  private readonly start = Date.now();
  now(): Date {
    return new Date(this.start + (Date.now() - this.start) / 1000);
  }
}

describe("webhook delivery slots handed on", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("wakes the next parked delivery when a slot is given back, per endpoint and per account", async () => {
    const t: TestServer = await startTestServer(
      {
        WEBHOOK_ALLOW_INSECURE_URLS: "true",
        WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT: "1",
        WEBHOOK_MAX_INFLIGHT_PER_ACCOUNT: "1",
        WEBHOOK_CONCURRENCY: "4",
        RATE_LIMIT_CREATE_PER_MIN: "0",
        RATE_LIMIT_READ_PER_MIN: "0",
        RATE_LIMIT_WRITE_PER_MIN: "0",
      },
      undefined,
      { clock: new SlowClock() },
    );
    cleanups.push(() => t.close());
    let overlapped = 0;
    const receiver = await WebhookReceiver.start((req) => {
      // Every earlier request was answered before this one arrived (its slot was given back).
      if (receiver.requests.slice(0, req.index).some((r) => r.answeredStatus === undefined)) overlapped++;
      return { status: 200, delayMs: 150 };
    });
    cleanups.push(() => receiver.close());

    const { key } = await t.createAccount(0);
    const endpoints: string[] = [];
    for (const path of ["/x", "/y"]) {
      const created = await t.request("/api/v1/webhooks", { key, json: { url: receiver.at(path) } });
      expect(created.status, created.text).toBe(201);
      endpoints.push(created.body.id);
    }
    const perEndpoint = 3;
    for (let i = 0; i < perEndpoint; i++) {
      for (const id of endpoints) {
        const res = await t.request(`/api/v1/webhooks/${id}/test`, { key, method: "POST" });
        expect(res.status, res.text).toBe(202);
      }
    }

    const total = perEndpoint * endpoints.length;
    await receiver.waitUntil((r) => r.acknowledged().length === total, 30_000, `${total} deliveries`);
    // The account's single slot was never exceeded, across both endpoints.
    expect(overlapped).toBe(0);
    for (const id of endpoints) {
      const deliveries = await pollUntil(
        async () => {
          const log = await t.request(`/api/v1/webhooks/${id}/deliveries?limit=100`, { key });
          expect(log.status, log.text).toBe(200);
          return log.body.data.length >= perEndpoint ? log.body.data : undefined;
        },
        10_000,
        "logged deliveries",
      );
      // Waiting for a slot is not an attempt: each went out once.
      expect(deliveries.map((d: { attempt: number; status: string }) => [d.attempt, d.status])).toEqual(
        Array.from({ length: perEndpoint }, () => [1, "succeeded"]),
      );
    }
  });
});
