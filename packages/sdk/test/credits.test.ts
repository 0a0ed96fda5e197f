/**
 * credits.ledger() (auto-paginating, filters, Date bounds) and credits.usage() against the real
 * server, on tasks that ran: one succeeded, one failed and refunded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Framegate, type LedgerEntry, ValidationError } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;

beforeAll(async () => {
  t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0" });
  ({ client } = await clientFor(t, 1000));
  await client.generations.createAndWait({ model: "kling-2-6", prompt: "a quiet harbour" });
  await client.generations.createAndWait({ model: "kling-2-6", prompt: "broken [sim:fail]" }).catch(() => undefined);
}, 120_000);
afterAll(() => t?.close());

describe("credits.ledger", () => {
  it("walks every entry across pages with for await; they sum to the balance", async () => {
    const entries: LedgerEntry[] = [];
    for await (const entry of client.credits.ledger({ limit: 2 })) entries.push(entry);
    expect(entries.map((e) => e.type)).toEqual(["refund", "reserve", "reserve", "grant"]);
    const { current_credits } = await client.credits.retrieve();
    expect(entries.reduce((n, e) => n + e.amount, 0)).toBe(current_credits);
    expect(entries[0]?.balance_after).toBe(current_credits);

    const first = await client.credits.ledger({ limit: 2 });
    expect(first.data).toEqual(entries.slice(0, 2));
    expect(first.hasNextPage()).toBe(true);
    expect((await first.getNextPage()).data).toEqual(entries.slice(2, 4));
  });

  it("filters by one or several types and by Date or string bounds", async () => {
    const all: LedgerEntry[] = (await client.credits.ledger({ limit: 100 })).data;
    const refunds = await client.credits.ledger({ type: "refund" });
    expect(refunds.data.map((e) => e.type)).toEqual(["refund"]);
    const two = await client.credits.ledger({ type: ["grant", "refund"] });
    expect(two.data).toEqual(all.filter((e) => e.type === "grant" || e.type === "refund"));
    const newest = all[0] as LedgerEntry;
    const after = await client.credits.ledger({ createdAfter: new Date(newest.created_at) });
    expect(after.data[0]).toEqual(newest);
    const before = await client.credits.ledger({ createdBefore: newest.created_at });
    expect(before.data).not.toContainEqual(newest);
  });

  it("raises ValidationError for a bad bound", async () => {
    await expect(client.credits.ledger({ createdAfter: "last tuesday" })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("credits.usage", () => {
  it("returns day buckets by default and hour buckets on request, agreeing with the ledger", async () => {
    const days = await client.credits.usage();
    expect(days).toMatchObject({ object: "usage", granularity: "day" });
    expect(days.data).toHaveLength(30);
    const entries: LedgerEntry[] = (await client.credits.ledger({ limit: 100 })).data;
    const sum = (type: string) => entries.filter((e) => e.type === type).reduce((n, e) => n + e.amount, 0);
    expect(days.totals).toEqual({
      tasks_created: 2,
      tasks_succeeded: 1,
      tasks_failed: 1,
      tasks_canceled: 0,
      credits_charged: -sum("reserve") - sum("release"),
      credits_refunded: sum("refund"),
      credits_granted: sum("grant"),
    });

    const end = new Date(Date.parse(days.end));
    const hours = await client.credits.usage({
      granularity: "hour",
      start: new Date(end.getTime() - 48 * 3_600_000),
      end,
    });
    expect(hours.data).toHaveLength(48);
    expect(hours.totals).toEqual(days.totals);
    await expect(
      client.credits.usage({ granularity: "hour", start: "2026-01-01", end: "2026-02-01" }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
