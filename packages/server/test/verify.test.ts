/**
 * `framegate verify`'s checker (ops/verify.ts) on a database a real server filled: it passes as the
 * server left it, and each kind of violation, planted in a copy of that database (or, for
 * storage, planted and then undone), is reported by its check, alone, with a message naming what
 * is wrong. Runs on SQLite with local storage and on PostgreSQL (graphile-worker) with S3.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type VerifyReport, verifyStore } from "../src/ops/verify.js";
import { openStorage } from "../src/storage/build.js";
import type { Storage } from "../src/storage/storage.js";
import type { Executor, StoreHandle } from "../src/store/db.js";
import { systemClock } from "../src/util/clock.js";
import { uploadFile } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { startTestServer, TEST_ENV, waitForTask } from "./harness.js";
import { copyStore } from "./store-copy.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";

const dataDir = mkdtempSync(join(tmpdir(), "framegate-verify-"));
let storage: Storage;
let accountId: string;
let succeeded: { id: string; reserved: number; video: string };
let failedId: string;
let file: { id: string; key: string };

/** A second ahead, so objects written just now are outside a zero grace period. */
const clock = { now: () => new Date(Date.now() + 2000) };

beforeAll(async () => {
  const t = await startTestServer({}, dataDir);
  try {
    const account = await t.createAccount(1000);
    accountId = account.accountId;
    const create = async (prompt: string) => {
      const res = await t.request("/api/v1/generations", {
        key: account.key,
        json: { model: "kling-2-6", prompt },
      });
      expect(res.status, res.text).toBe(202);
      return waitForTask(t, account.key, res.body.id);
    };
    const ok = await create("A lighthouse at dusk");
    await create("A second shot of the same lighthouse");
    const failed = await create("A broken render [sim:fail]");
    expect([ok.status, failed.status]).toEqual(["succeeded", "failed"]);
    failedId = failed.id;
    const image = await makeImage(dataDir, { format: "png", width: 320, height: 320 });
    const upload = await uploadFile(t, account.key, image, { kind: "image", model: "kling-2-6" });
    expect(upload.status, upload.text).toBe(201);
    const row = await t.server.store.db
      .selectFrom("files")
      .select(["id", "storage_key"])
      .where("id", "=", upload.body.id)
      .executeTakeFirstOrThrow();
    file = { id: row.id, key: row.storage_key };
    const task = await t.server.store.db
      .selectFrom("tasks")
      .select(["reserved_credits", "result"])
      .where("id", "=", ok.id)
      .executeTakeFirstOrThrow();
    succeeded = {
      id: ok.id,
      reserved: task.reserved_credits,
      video: (JSON.parse(task.result as string) as { media: { key: string }[] }).media[0]?.key as string,
    };
  } finally {
    await t.close();
  }
  storage = await openStorage(loadConfig({ ...TEST_ENV, DATA_DIR: dataDir, ...(await testStoreEnv(dataDir)) }));
}, 180_000);

afterAll(async () => {
  storage?.close?.();
  rmSync(dataDir, { recursive: true, force: true });
  await dropTestDatabase(dataDir);
});

async function verifyCopy(plant: (db: Executor, store: StoreHandle) => Promise<void>, graceMs = 0) {
  const copy = await copyStore(dataDir);
  try {
    await plant(copy.store.db, copy.store);
    return await verifyStore({ db: copy.store.db, dialect: copy.store.dialect, storage, clock, graceMs });
  } finally {
    await copy.discard();
  }
}

/** The report's violations as "check: message", for exact comparison. */
function violations(report: VerifyReport): string[] {
  return report.checks.flatMap((c) => c.examples.map((v) => `${c.name}: ${v.message}`));
}

async function addToBalance(db: Executor, amount: number) {
  await db
    .updateTable("accounts")
    .set({ balance: sql<number>`balance + ${amount}` })
    .where("id", "=", accountId)
    .execute();
}

describe(`verify (${TEST_STORE})`, () => {
  it("passes on the database as the server left it, and counts what it checked", async () => {
    const report = await verifyCopy(async () => {});
    expect(violations(report)).toEqual([]);
    expect(report.ok).toBe(true);
    const checked = Object.fromEntries(report.checks.map((c) => [c.name, c.checked]));
    expect(checked).toMatchObject({ balances: 1, task_credits: 3, file_bytes: 1 });
    // Two videos, each with its poster; the upload; the orphan walk saw all five.
    expect(checked.result_media).toBe(4);
    expect(checked.orphan_objects).toBe(5);
  });

  it("catches a balance that is not the sum of the ledger", async () => {
    const report = await verifyCopy((db) => addToBalance(db, 7));
    expect(report.ok).toBe(false);
    // 1000 granted, two videos charged, the failed task's reservation refunded: 5 entries.
    const sum = 1000 - 2 * succeeded.reserved;
    expect(violations(report)).toEqual([
      `balances: account ${accountId}: balance is ${sum + 7} but its 5 ledger entries sum to ${sum}`,
    ]);
  });

  it("catches a ledger entry for a task that does not exist", async () => {
    const report = await verifyCopy(async (db) => {
      await db
        .insertInto("ledger_entries")
        .values({
          id: "led_planted",
          account_id: accountId,
          amount: 5,
          type: "refund",
          task_id: "gen_missing",
          reason: null,
          created_at: new Date().toISOString(),
        })
        .execute();
      await addToBalance(db, 5);
    });
    expect(violations(report)).toEqual([
      "ledger_references: ledger entry led_planted (refund): task gen_missing does not exist",
    ]);
  });

  it("catches a failed task that was never refunded", async () => {
    const report = await verifyCopy(async (db) => {
      const refund = await db
        .deleteFrom("ledger_entries")
        .where("task_id", "=", failedId)
        .where("type", "=", "refund")
        .returning("amount")
        .executeTakeFirstOrThrow();
      await addToBalance(db, -refund.amount);
    });
    expect(violations(report)).toEqual([
      `task_credits: task ${failedId} (failed): never refunded, expected one refund of ${succeeded.reserved}`,
    ]);
  });

  it("catches a refund of a task that succeeded", async () => {
    const report = await verifyCopy(async (db) => {
      await db
        .insertInto("ledger_entries")
        .values({
          id: "led_planted",
          account_id: accountId,
          amount: succeeded.reserved,
          type: "refund",
          task_id: succeeded.id,
          reason: "planted",
          created_at: new Date().toISOString(),
        })
        .execute();
      await addToBalance(db, succeeded.reserved);
    });
    expect(violations(report)).toEqual([
      `task_credits: task ${succeeded.id} (succeeded): refunded once (${succeeded.reserved} credits) although it succeeded`,
    ]);
  });

  it("catches a task without its reservation", async () => {
    const report = await verifyCopy(async (db) => {
      await db.deleteFrom("ledger_entries").where("task_id", "=", succeeded.id).where("type", "=", "reserve").execute();
      await addToBalance(db, succeeded.reserved);
    });
    expect(violations(report)).toEqual([
      `task_credits: task ${succeeded.id} (succeeded): reserved 0 times, expected once`,
    ]);
  });

  it("catches final credits that do not match a succeeded task's ledger", async () => {
    const report = await verifyCopy(async (db) => {
      await db.updateTable("tasks").set({ final_credits: 0 }).where("id", "=", succeeded.id).execute();
    });
    expect(violations(report)).toEqual([
      `task_credits: task ${succeeded.id} (succeeded): released 0 credits in 0 entries, expected ${succeeded.reserved} in one`,
    ]);
  });

  it("catches a job still queued for a task that ended (table queue, and graphile-worker on PostgreSQL)", async () => {
    const plant = async (db: Executor, store: StoreHandle) => {
      await db
        .insertInto("jobs")
        .values({
          id: "job_planted",
          kind: "generation.poll",
          job_key: `poll:${succeeded.id}`,
          payload: JSON.stringify({ taskId: succeeded.id }),
          run_at: new Date().toISOString(),
          attempts: 0,
          max_attempts: 5,
          locked_by: null,
          locked_until: null,
          last_error: null,
          created_at: new Date().toISOString(),
        })
        .execute();
      if (store.dialect === "postgres") {
        await sql`select graphile_worker.add_job('generation.finalize', '{}'::json, job_key => ${`finalize:${failedId}`})`.execute(
          db,
        );
      }
    };
    const report = await verifyCopy(plant);
    const expected = [
      expect.stringMatching(
        new RegExp(
          `^stale_jobs: table queue job job_planted \\(poll:${succeeded.id}\\) is still queued \\(due .+\\) for task ${succeeded.id}, succeeded at .+$`,
        ),
      ),
    ];
    if (TEST_STORE === "postgres") {
      expected.push(
        expect.stringMatching(
          new RegExp(
            `^stale_jobs: graphile-worker job \\d+ \\(finalize:${failedId}\\) is still queued \\(due .+\\) for task ${failedId}, failed at .+$`,
          ),
        ),
      );
    }
    expect(violations(report)).toEqual(expected);
    // The tasks ended moments ago: within the default grace such a job is a cancel's normal leftover.
    expect(violations(await verifyCopy(plant, 15 * 60_000))).toEqual([]);
  });

  it("catches a succeeded task's video missing from storage, and an upload's missing bytes", async () => {
    await withoutObject(succeeded.video, async () => {
      expect(violations(await verifyCopy(async () => {}))).toEqual([
        `result_media: task ${succeeded.id} (succeeded): ${succeeded.video} is missing from storage`,
      ]);
    });
    await withoutObject(file.key, async () => {
      expect(violations(await verifyCopy(async () => {}))).toEqual([
        `file_bytes: file ${file.id} (live): ${file.key} is missing from storage`,
      ]);
    });
  });

  it("reports orphaned objects without deleting them", async () => {
    const stray = ["results/gen_nobody/video.mp4", "stray/notes.txt", `results/${failedId}/video.mp4`];
    for (const key of stray) await storage.putStream(key, Readable.from([Buffer.from("left behind")]));
    try {
      const report = await verifyCopy(async () => {});
      const messages = violations(report);
      const orphan = (key: string, why: string) =>
        expect.stringMatching(new RegExp(`^orphan_objects: ${key} \\(11 bytes, written .+\\) is orphaned: ${why}$`));
      expect(messages).toHaveLength(3);
      expect(messages).toEqual(
        expect.arrayContaining([
          orphan(`results/${failedId}/video.mp4`, `task ${failedId} is failed`),
          orphan("results/gen_nobody/video.mp4", "no task gen_nobody exists"),
          orphan("stray/notes.txt", "Framegate writes nothing under this name"),
        ]),
      );
      for (const key of stray) expect(await storage.stat(key)).toBeDefined();
    } finally {
      for (const key of stray) await storage.delete(key);
    }
  });
});

describe(`verify on a live server (${TEST_STORE})`, () => {
  it("reports nothing while tasks are created, run, fail and settle around it", { timeout: 300_000 }, async () => {
    const t = await startTestServer({ RATE_LIMIT_CREATE_PER_MIN: "100000" });
    try {
      const { key } = await t.createAccount(100_000);
      const ids: string[] = [];
      let creating = true;
      const creator = (async () => {
        for (let i = 0; creating && i < 60; i++) {
          const prompt = i % 3 === 0 ? `Shot ${i} [sim:fail]` : `Shot ${i}`;
          const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
          expect(res.status, res.text).toBe(202);
          ids.push(res.body.id);
        }
      })();
      const reports: VerifyReport[] = [];
      try {
        // Pass after pass while commits land between (and during) its queries: none may be taken
        // for a fault (a balance read before a create and its ledger summed after, say).
        let done = false;
        const finished = () => {
          done = true;
        };
        creator.then(finished, finished);
        while (!done) {
          reports.push(
            await verifyStore({
              db: t.server.store.db,
              dialect: t.server.store.dialect,
              storage: t.server.storage,
              clock: systemClock,
            }),
          );
        }
      } finally {
        creating = false;
        await creator;
      }
      for (const id of ids) await waitForTask(t, key, id);
      reports.push(
        await verifyStore({
          db: t.server.store.db,
          dialect: t.server.store.dialect,
          storage: t.server.storage,
          clock: systemClock,
        }),
      );
      for (const report of reports) expect(violations(report)).toEqual([]);
      expect(reports.at(-1)?.checks.find((c) => c.name === "task_credits")?.checked).toBe(ids.length);
    } finally {
      await t.close();
    }
  });
});

/** Runs `fn` while `key` is gone from storage, then puts its bytes back. */
async function withoutObject(key: string, fn: () => Promise<void>) {
  const chunks: Buffer[] = [];
  for await (const chunk of storage.read(key)) chunks.push(chunk as Buffer);
  await storage.delete(key);
  try {
    await fn();
  } finally {
    await storage.putStream(key, Readable.from([Buffer.concat(chunks)]));
  }
}
