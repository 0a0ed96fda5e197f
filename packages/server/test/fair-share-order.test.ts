/**
 * Fair share's choice of the next waiting task, on rows written directly: fewest running first,
 * then the oldest waiting task; tasks in flight, refused by the provider or at their account's cap
 * are skipped. And the statement that finds them walks an index per account (SQLite plan), so its
 * cost does not grow with the queued backlog.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { FairShare, oldestWaitingByAccount } from "../src/generations/fair-share.js";
import { submitJobKey } from "../src/generations/service.js";
import type { Queue } from "../src/queue/queue.js";
import { openStore } from "../src/server.js";
import type { StoreHandle } from "../src/store/db.js";
import type { TasksTable } from "../src/store/schema.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ store: StoreHandle; woken: string[]; fairShare: FairShare }> {
  const dir = mkdtempSync(join(tmpdir(), "framegate-fair-order-"));
  const store = await openStore(
    loadConfig({ DATA_DIR: dir, LOG_LEVEL: "silent", BOOTSTRAP_DEV_ACCOUNT: "false", ...(await testStoreEnv(dir)) }),
  );
  cleanups.push(async () => {
    await store.close();
    await dropTestDatabase(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  const woken: string[] = [];
  // Only runNow is called by FairShare; it records which task's submit was made due.
  const queue = { runNow: async (_db: unknown, key: string) => void woken.push(key) } as unknown as Queue;
  return { store, woken, fairShare: new FairShare(queue, 3) };
}

let clock = Date.parse("2026-01-01T00:00:00Z");
function at(): string {
  clock += 1000;
  return new Date(clock).toISOString();
}

async function account(store: StoreHandle, id: string, cap: number | null = null): Promise<void> {
  await store.db
    .insertInto("accounts")
    .values({
      id,
      name: id,
      balance: 0,
      max_running_tasks: cap,
      max_webhook_endpoints: null,
      max_file_bytes: null,
      max_files: null,
      created_at: at(),
    })
    .execute();
}

async function task(
  store: StoreHandle,
  id: string,
  accountId: string,
  state: Partial<Pick<TasksTable, "status" | "submit_state" | "started_at">> = {},
): Promise<void> {
  const now = at();
  await store.db
    .insertInto("tasks")
    .values({
      id,
      account_id: accountId,
      model: "kling-2-6",
      status: state.status ?? "queued",
      prompt: "p",
      params: "{}",
      references_json: "[]",
      reserved_credits: 0,
      final_credits: 0,
      client_request_id: null,
      provider: null,
      upstream_id: null,
      result: null,
      error_reason: null,
      error_message: null,
      error_detail: null,
      submit_state: state.submit_state ?? null,
      upstream_details: null,
      result_expires_at: null,
      result_purged_at: null,
      created_at: now,
      updated_at: now,
      started_at: state.started_at ?? null,
      completed_at: null,
    })
    .execute();
}

const IN_FLIGHT = JSON.stringify({ refused: [], uncertain: "simulator" });
const REFUSED_BY_SIM = JSON.stringify({ refused: ["simulator"], lastError: "simulator: no" });

describe("fair share: the next waiting task", () => {
  it("goes to the account running fewest, then to the oldest task; in-flight and capped ones are skipped", async () => {
    const { store, woken, fairShare } = await setup();
    await account(store, "acc_a");
    await account(store, "acc_b");
    await account(store, "acc_c", 1);
    await account(store, "acc_d");
    // A: 2 running (one processing, one in flight), then 2 waiting.
    await task(store, "t_a_run", "acc_a", { status: "processing", started_at: at() });
    await task(store, "t_a_fly", "acc_a", { submit_state: IN_FLIGHT });
    await task(store, "t_a1", "acc_a");
    await task(store, "t_a2", "acc_a");
    // B: 1 running, 2 waiting (its oldest waiting is newer than A's).
    await task(store, "t_b_run", "acc_b", { status: "processing", started_at: at() });
    await task(store, "t_b1", "acc_b");
    await task(store, "t_b2", "acc_b");
    // C: at its cap of 1, one waiting: never chosen while at the cap.
    await task(store, "t_c_run", "acc_c", { status: "processing", started_at: at() });
    await task(store, "t_c1", "acc_c");
    // D: nothing queued but a finished task.
    await task(store, "t_d_done", "acc_d", { status: "succeeded" });

    // A finishing task of A: the next in fair order is B's oldest (B runs 1, A runs 2); A's own
    // oldest waiting task is woken too (its account slot).
    await store.db.transaction().execute((trx) => fairShare.wakeNext(trx, { account: "acc_a" }));
    expect(woken.sort()).toEqual([submitJobKey("t_a1"), submitJobKey("t_b1")].sort());

    // B's second task deciding for itself: A runs 2 and B 1 (not counting the deciding task),
    // nobody runs fewer, so it goes.
    woken.length = 0;
    const go = await store.db
      .transaction()
      .execute((trx) => fairShare.decide(trx, { taskId: "t_b2", accountId: "acc_b", provider: "simulator" }));
    expect(go).toEqual({ kind: "go" });
    expect(woken).toEqual([]);
  });

  it("a task the provider refused is not handed that provider's slot; another is", async () => {
    const { store, woken, fairShare } = await setup();
    await account(store, "acc_a");
    await account(store, "acc_b");
    await task(store, "t_a_run1", "acc_a", { status: "processing", started_at: at() });
    await task(store, "t_a_run2", "acc_a", { status: "processing", started_at: at() });
    await task(store, "t_a1", "acc_a");
    await task(store, "t_b_refused", "acc_b", { submit_state: REFUSED_BY_SIM });
    await task(store, "t_b1", "acc_b");
    // A's task asks for the simulator: B runs fewer and waits for it, with t_b1 (not the refused one).
    const decision = await store.db
      .transaction()
      .execute((trx) => fairShare.decide(trx, { taskId: "t_a1", accountId: "acc_a", provider: "simulator" }));
    expect(decision).toEqual({ kind: "fair_share", woken: "t_b1" });
    expect(woken).toEqual([submitJobKey("t_b1")]);
    // For another provider, B's refused task is the oldest and is the one woken.
    const other = await store.db
      .transaction()
      .execute((trx) => fairShare.decide(trx, { taskId: "t_a1", accountId: "acc_a", provider: "fal" }));
    expect(other).toEqual({ kind: "fair_share", woken: "t_b_refused" });
  });

  it("with many accounts, each one's oldest waiting task is found; the exception task is left out", async () => {
    const { store } = await setup();
    for (let i = 0; i < 30; i++) {
      const id = `acc_${String(i).padStart(2, "0")}`;
      await account(store, id);
      for (let j = 0; j < 3; j++) await task(store, `t_${i}_${j}`, id);
    }
    const rows = (await oldestWaitingByAccount({ exceptTask: "t_7_0" }).execute(store.db)).rows;
    expect(rows).toHaveLength(30);
    const byAccount = new Map(rows.map((r) => [r.account_id, r.oldest_id]));
    expect(byAccount.get("acc_00")).toBe("t_0_0");
    expect(byAccount.get("acc_07")).toBe("t_7_1");
    expect(byAccount.get("acc_29")).toBe("t_29_0");
    const only = (await oldestWaitingByAccount({ onlyAccount: "acc_03" }).execute(store.db)).rows;
    expect(only.map((r) => r.oldest_id)).toEqual(["t_3_0"]);
    const except = (await oldestWaitingByAccount({ exceptAccount: "acc_03" }).execute(store.db)).rows;
    expect(except.map((r) => r.account_id)).not.toContain("acc_03");
    expect(except).toHaveLength(29);
  });

  it.runIf(TEST_STORE === "sqlite")("finds them by index seeks: SQLite's plan scans no table of tasks", async () => {
    const { store } = await setup();
    const compiled = oldestWaitingByAccount({ provider: "simulator", exceptTask: "x", exceptAccount: "y" }).compile(
      store.db,
    );
    const plan = await sql
      .raw<{ detail: string }>(`explain query plan ${inline(compiled.sql, compiled.parameters)}`)
      .execute(store.db);
    const onTasks = plan.rows.map((r) => r.detail).filter((d) => /^(SEARCH|SCAN) (tasks|w|t|o)\b/.test(d));
    // Every access to tasks (the walk's start and steps, each account's oldest, its created_at)
    // is a SEARCH on an index: none reads the table or an index from end to end.
    expect(onTasks.length).toBeGreaterThanOrEqual(4);
    for (const d of onTasks) expect(d).toMatch(/^SEARCH \w+ USING (COVERING )?INDEX \w+ \(/);
  });
});

/** The statement with its parameters written in as literals (for EXPLAIN, which takes no bindings here). */
function inline(text: string, parameters: readonly unknown[]): string {
  let i = 0;
  return text.replace(/\?/g, () => `'${String(parameters[i++]).replace(/'/g, "''")}'`);
}
