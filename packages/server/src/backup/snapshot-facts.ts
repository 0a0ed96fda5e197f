/**
 * What a SQLite snapshot (a closed copy, never the live file) holds: row counts per table, the
 * last migration applied, and the storage objects its rows reference. The backup copies exactly
 * those objects, so the archive's media agree with its database: what the snapshot's files and
 * tasks point at is there, and objects created after the snapshot are not.
 */
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { StoredResult } from "../generations/serialize.js";
import type { Database as Schema } from "../store/schema.js";

/** Storage objects a deployment keeps that no row names: the simulated upstream's own working files. */
export const UNREFERENCED_PREFIXES = ["simulator/"];

export interface SnapshotFacts {
  lastMigration: string | null;
  rows: Record<string, number>;
  /** Storage keys the rows reference (live files, unpurged results and their posters). */
  referencedKeys: Set<string>;
}

/** Rows read at a time. */
const PAGE = 1000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function readSnapshotFacts(file: string): Promise<SnapshotFacts> {
  const sqlite = new Database(file, { readonly: true, fileMustExist: true });
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const tables = sqlite
      .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
      .pluck()
      .all() as string[];
    const rows: Record<string, number> = {};
    for (const table of tables) {
      rows[table] = sqlite
        .prepare(`select count(*) from "${table.replaceAll('"', '""')}"`)
        .pluck()
        .get() as number;
    }
    const lastMigration = tables.includes("kysely_migration")
      ? ((sqlite.prepare("select max(name) from kysely_migration").pluck().get() as string | null) ?? null)
      : null;
    const referencedKeys = new Set<string>();
    // Pages in key order, with a turn of the event loop between them: a scheduled backup runs in
    // the serving process, which must not stall on one read of every task.
    for (let after = ""; ; ) {
      // A deleted file's bytes stay while a running task still needs them (purge_pending).
      const page = await db
        .selectFrom("files")
        .select(["id", "storage_key"])
        .where("id", ">", after)
        .where((eb) => eb.or([eb("deleted_at", "is", null), eb("purge_pending", "=", 1)]))
        .orderBy("id")
        .limit(PAGE)
        .execute();
      for (const f of page) referencedKeys.add(f.storage_key);
      if (page.length < PAGE) break;
      after = (page.at(-1) as { id: string }).id;
      await yieldToEventLoop();
    }
    for (let after = ""; ; ) {
      const page = await db
        .selectFrom("tasks")
        .select(["id", "result"])
        .where("id", ">", after)
        .where("result", "is not", null)
        .where("result_purged_at", "is", null)
        .orderBy("id")
        .limit(PAGE)
        .execute();
      for (const { result } of page) {
        for (const media of (JSON.parse(result as string) as StoredResult).media) {
          referencedKeys.add(media.key);
          if (media.poster_key) referencedKeys.add(media.poster_key);
        }
      }
      if (page.length < PAGE) break;
      after = (page.at(-1) as { id: string }).id;
      await yieldToEventLoop();
    }
    return { lastMigration, rows, referencedKeys };
  } finally {
    await db.destroy();
  }
}
