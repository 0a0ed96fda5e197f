/**
 * Webhook delivery slots (webhooks/inflight.ts) on the store itself, SQLite or PostgreSQL: the
 * per-endpoint and per-account caps, release, expiry of a dead holder's slot, and that racing
 * acquirers (on PostgreSQL from two "processes", i.e. two connection pools) never exceed the caps.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { openStore } from "../src/server.js";
import type { StoreHandle } from "../src/store/db.js";
import { DeliverySlots } from "../src/webhooks/inflight.js";
import { ManualClock, TEST_ENV } from "./harness.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

const LIMITS = { perEndpoint: 2, perAccount: 4, holdMs: 40_000 };

describe(`webhook delivery slots (${TEST_STORE})`, () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A migrated store with accounts acct_a and acct_b; `open` gives another handle on it. */
  async function setup(): Promise<{ store: StoreHandle; open(): Promise<StoreHandle> }> {
    const dir = mkdtempSync(join(tmpdir(), "framegate-slots-"));
    const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)) });
    const handles: StoreHandle[] = [];
    const open = async () => {
      const handle = await openStore(config);
      handles.push(handle);
      return handle;
    };
    const store = await open();
    cleanups.push(async () => {
      for (const handle of handles) await handle.close();
      await dropTestDatabase(dir);
      rmSync(dir, { recursive: true, force: true });
    });
    const createdAt = new Date().toISOString();
    await store.db
      .insertInto("accounts")
      .values([
        { id: "acct_a", name: "a", balance: 0, created_at: createdAt },
        { id: "acct_b", name: "b", balance: 0, created_at: createdAt },
      ])
      .execute();
    return { store, open };
  }

  async function takeAll(slots: DeliverySlots, account: string, endpoint: string, n: number) {
    const taken: (string | undefined)[] = [];
    for (let i = 0; i < n; i++) taken.push(await slots.acquire(account, endpoint));
    return taken;
  }

  it("caps deliveries in flight per endpoint and per account; other accounts are not affected", async () => {
    const { store } = await setup();
    const slots = new DeliverySlots(store.db, new ManualClock(), LIMITS);
    const e1 = await takeAll(slots, "acct_a", "whend_1", 3);
    expect(e1.filter(Boolean)).toHaveLength(2);
    expect(e1[2]).toBeUndefined();
    // Another endpoint of the account has its own share, until the account's cap.
    const e2 = await takeAll(slots, "acct_a", "whend_2", 2);
    expect(e2.every(Boolean)).toBe(true);
    expect(await slots.acquire("acct_a", "whend_3")).toBeUndefined();
    // Another account is not counted against A.
    expect(await slots.acquire("acct_b", "whend_9")).toBeDefined();
    const rows = await store.db.selectFrom("webhook_inflight").selectAll().execute();
    expect(rows.filter((r) => r.account_id === "acct_a")).toHaveLength(4);
  });

  it("a released slot is free again", async () => {
    const { store } = await setup();
    const slots = new DeliverySlots(store.db, new ManualClock(), LIMITS);
    const [first] = await takeAll(slots, "acct_a", "whend_1", 2);
    expect(await slots.acquire("acct_a", "whend_1")).toBeUndefined();
    await slots.release(first as string);
    expect(await slots.acquire("acct_a", "whend_1")).toBeDefined();
    // Releasing twice (or a slot that expired and was removed) is harmless.
    await slots.release(first as string);
  });

  it("a slot never released (its process died) expires after holdMs and is removed", async () => {
    const { store } = await setup();
    const clock = new ManualClock();
    const slots = new DeliverySlots(store.db, clock, LIMITS);
    await takeAll(slots, "acct_a", "whend_1", 2);
    clock.advance(LIMITS.holdMs - 1000);
    expect(await slots.acquire("acct_a", "whend_1")).toBeUndefined();
    clock.advance(1000);
    expect(await slots.acquire("acct_a", "whend_1")).toBeDefined();
    const rows = await store.db.selectFrom("webhook_inflight").selectAll().execute();
    expect(rows).toHaveLength(1);
  });

  it("acquirers racing from two processes never exceed the account's cap", async () => {
    const { store, open } = await setup();
    // SQLite runs jobs in one process (its better-sqlite3 calls block the event loop, so a second
    // connection here would deadlock on the write lock): there the race is within one handle.
    const other = TEST_STORE === "postgres" ? await open() : store;
    const clock = new ManualClock();
    const here = new DeliverySlots(store.db, clock, LIMITS);
    const there = new DeliverySlots(other.db, clock, LIMITS);
    const attempts = Array.from({ length: 24 }, (_, i) => (i % 2 ? here : there).acquire("acct_a", `whend_${i % 6}`));
    const granted = (await Promise.all(attempts)).filter(Boolean);
    expect(granted).toHaveLength(LIMITS.perAccount);
    const rows = await store.db.selectFrom("webhook_inflight").select("endpoint_id").execute();
    expect(rows).toHaveLength(LIMITS.perAccount);
    const perEndpoint = new Map<string, number>();
    for (const row of rows) perEndpoint.set(row.endpoint_id, (perEndpoint.get(row.endpoint_id) ?? 0) + 1);
    expect(Math.max(...perEndpoint.values())).toBeLessThanOrEqual(LIMITS.perEndpoint);
  });
});
