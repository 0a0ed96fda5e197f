import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { migrateToLatest, openSqlite } from "../store/db.js";
import { readSnapshotFacts } from "./snapshot-facts.js";

const dir = mkdtempSync(join(tmpdir(), "framegate-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readSnapshotFacts", () => {
  it("collects the keys of live files and unpurged results across pages, and nothing else", async () => {
    const file = join(dir, "framegate.db");
    const store = openSqlite(file, { checkpoint: "inline" });
    await migrateToLatest(store);
    await store.close();

    const db = new Database(file);
    const now = "2026-12-07T00:00:00.000Z";
    const insertFile = db.prepare(
      `insert into files (id, account_id, kind, mime_type, size_bytes, sha256, storage_key, created_at, expires_at, deleted_at, purge_pending)
       values (?, 'acct_x', 'image', 'image/png', 1, 'x', ?, ?, ?, ?, ?)`,
    );
    const insertTask = db.prepare(
      `insert into tasks (id, account_id, model, status, prompt, params, references_json, reserved_credits, final_credits, result, result_purged_at, created_at, updated_at)
       values (?, 'acct_x', 'kling-2-6', 'succeeded', 'p', '{}', '[]', 1, 1, ?, ?, ?, ?)`,
    );
    const result = (id: string, poster: boolean) =>
      JSON.stringify({
        media: [{ key: `results/${id}/video.mp4`, poster_key: poster ? `results/${id}/video.jpg` : null }],
      });
    db.pragma("foreign_keys = OFF");
    db.transaction(() => {
      // 2,500 live files: more than two pages.
      for (let i = 0; i < 2500; i++)
        insertFile.run(`file_${String(i).padStart(5, "0")}`, `files/${i}.png`, now, now, null, 0);
      insertFile.run("file_deleted", "files/deleted.png", now, now, now, 0);
      insertFile.run("file_pending", "files/pending.png", now, now, now, 1);
      for (let i = 0; i < 1200; i++)
        insertTask.run(`task_${String(i).padStart(5, "0")}`, result(`t${i}`, i % 2 === 0), null, now, now);
      insertTask.run("task_purged", result("purged", true), now, now, now);
    })();
    db.close();

    const facts = await readSnapshotFacts(file);
    const keys = facts.referencedKeys;
    expect(keys.size).toBe(2500 + 1 + 1200 + 600);
    expect(keys.has("files/2499.png")).toBe(true);
    expect(keys.has("files/pending.png")).toBe(true);
    expect(keys.has("files/deleted.png")).toBe(false);
    expect(keys.has("results/t1199/video.mp4")).toBe(true);
    expect(keys.has("results/t1198/video.jpg")).toBe(true);
    expect(keys.has("results/purged/video.mp4")).toBe(false);
    expect(facts.rows.files).toBe(2502);
    expect(facts.rows.tasks).toBe(1201);
    expect(facts.lastMigration).toMatch(/^\d{4}_/);
  });
});
