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
    // A deleted file's bytes stay while a running task still needs them (purge_pending).
    const files = await db
      .selectFrom("files")
      .select("storage_key")
      .where((eb) => eb.or([eb("deleted_at", "is", null), eb("purge_pending", "=", 1)]))
      .execute();
    for (const f of files) referencedKeys.add(f.storage_key);
    const results = await db
      .selectFrom("tasks")
      .select("result")
      .where("result", "is not", null)
      .where("result_purged_at", "is", null)
      .execute();
    for (const { result } of results) {
      for (const media of (JSON.parse(result as string) as StoredResult).media) {
        referencedKeys.add(media.key);
        if (media.poster_key) referencedKeys.add(media.poster_key);
      }
    }
    return { lastMigration, rows, referencedKeys };
  } finally {
    await db.destroy();
  }
}
