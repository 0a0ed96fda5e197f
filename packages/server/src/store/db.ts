/**
 * Opens the store. Everything dialect-specific lives here and in the SQLite modules beside it:
 * the rest of the code writes portable Kysely queries against `Db`, and takes row locks with
 * `.forUpdate()` (and `.skipLocked()`), which PostgreSQL honours and the SQLite store drops
 * (sqlite-dialect.ts).
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, type Transaction } from "kysely";
import pg from "pg";
import { type CheckpointerOptions, WalCheckpointer } from "./checkpointer.js";
import { refuseNewerDatabase } from "./migration-state.js";
import { migrationProvider } from "./migrations.js";
import type { Database } from "./schema.js";
import { SqliteStoreDialect } from "./sqlite-dialect.js";
import { registerSyncPaths } from "./sync-paths.js";

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Db | Tx;
export type Dialect = "sqlite" | "postgres";

export interface StoreHandle {
  db: Db;
  dialect: Dialect;
  /** The connection pool under `db` on PostgreSQL (shared with the rate limiter's store). */
  pgPool?: pg.Pool;
  /** SQLite: the background WAL checkpointer, when checkpoints run off the request path. */
  checkpointer?: WalCheckpointer;
  close(): Promise<void>;
}

export interface SqliteOptions {
  /**
   * `normal`: a commit is durable once the process has handed it to the OS (it survives the
   * process being killed, not a power loss or OS crash). `full`: fsync at every commit (it
   * survives those too). See README, "SQLite settings and durability".
   */
  synchronous?: "normal" | "full";
  /** `background` (WalCheckpointer) or `inline`: SQLite's auto-checkpoint, inside commits. */
  checkpoint?: "background" | "inline";
  /** Tuning of the background checkpointer (tests use short intervals and small bounds). */
  checkpointer?: Pick<CheckpointerOptions, "intervalMs" | "restartFrames" | "busyTimeoutMs">;
  /** Prepared statements kept by SQL text. */
  statementCacheSize?: number;
  /** Told when the background checkpointer fails and SQLite's auto-checkpoint takes over. */
  onCheckpointerFailure?: (error: Error) => void;
}

/** SQLite's own auto-checkpoint point, restored if the background checkpointer fails. */
const AUTO_CHECKPOINT_PAGES = 1000;
/** Page cache of the serving connection (the negative form means KiB): the hot tables fit. */
const CACHE_SIZE_KIB = 64 * 1024;
/** A WAL that grew past this in a burst is cut back to it once it is rewound. */
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

export function openSqlite(file: string, options: SqliteOptions = {}): StoreHandle {
  mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  const synchronous = options.synchronous === "full" ? "FULL" : "NORMAL";
  // WAL: readers never block the writer nor it them, and the checkpointer thread can copy the
  // WAL into the database file while this connection keeps serving.
  sqlite.pragma("journal_mode = WAL");
  // NORMAL syncs the WAL at checkpoints only; FULL at every commit (see SqliteOptions).
  sqlite.pragma(`synchronous = ${synchronous}`);
  sqlite.pragma("foreign_keys = ON");
  // Another process (the CLI) may hold the write lock briefly, or the checkpointer while it
  // rewinds the WAL: wait instead of failing.
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
  // Sorts and temporary indexes SQLite builds for a query stay in memory instead of temp files.
  sqlite.pragma("temp_store = MEMORY");
  sqlite.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);

  let checkpointer: WalCheckpointer | undefined;
  if (options.checkpoint !== "inline" && !sqlite.memory) {
    sqlite.pragma("wal_autocheckpoint = 0");
    checkpointer = new WalCheckpointer({
      ...options.checkpointer,
      file,
      synchronous,
      onFailure: (error) => {
        // Back to checkpoints inside commits: slower requests, but the WAL stays bounded.
        if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
        options.onCheckpointerFailure?.(error);
      },
    });
  }

  const dialect = new SqliteStoreDialect(sqlite, {
    statementCacheSize: options.statementCacheSize,
    gate: checkpointer?.gate,
  });
  const db = new Kysely<Database>({ dialect });
  registerSyncPaths(db, dialect.driver);
  return {
    db,
    dialect: "sqlite",
    checkpointer,
    close: async () => {
      // The thread first: closing the last connection then checkpoints the rest of the WAL
      // into the database file and removes it.
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * pg returns int8 and numeric as strings (they may not fit a JS number). Here they are counts,
 * sums of credits and byte sizes, so they are parsed to numbers, refusing values that would lose
 * precision, and queries read the same numbers on both dialects.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === INT8_OID || oid === NUMERIC_OID) return parseExactNumber;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

function parseExactNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n))) {
    throw new Error(`database value ${value} does not fit a JavaScript number`);
  }
  return n;
}

/** PostgreSQL (scale-out): a connection pool; transactions run concurrently (READ COMMITTED). */
export function openPostgres(
  url: string,
  opts: { maxConnections?: number; connectTimeoutMs?: number } = {},
): StoreHandle {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    // A database that stops answering fails requests after this instead of holding them.
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    types,
  });
  // A pooled connection that dies while idle (server restart, pg_terminate_backend) is dropped
  // by the pool; without a listener its error event would crash the process.
  pool.on("error", () => {});
  // The same for a connection lost while checked out between queries: pg rejects its next query.
  pool.on("connect", (client) => client.on("error", () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: "postgres",
    pgPool: pool,
    close: () => db.destroy(),
  };
}

export async function migrateToLatest(store: StoreHandle): Promise<string[]> {
  const migrate = async () => {
    // A database a newer binary migrated is refused before anything runs (migration-state.ts).
    await refuseNewerDatabase(store);
    const migrator = new Migrator({ db: store.db, provider: migrationProvider(store.dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  };
  return store.pgPool ? withPgMigrationLock(store.pgPool, migrate) : migrate();
}

/**
 * Runs `fn` holding the one session advisory lock that every schema change on PostgreSQL takes
 * (ours and graphile-worker's), on a connection of its own. Kysely's migrator reads the whole
 * catalog before it takes its own lock, and graphile-worker's migrations take none: without
 * this, an API and a worker started together on a fresh database raced (the catalog read failed
 * on a column graphile-worker's DDL was dropping).
 */
export async function withPgMigrationLock<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  // Outside the pool, so that `fn` has the whole pool even when DATABASE_POOL_SIZE is 1.
  const client = new pg.Client(pool.options);
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("select pg_advisory_lock(hashtext('framegate:migrate'))");
    return await fn();
  } finally {
    // Ending the session releases its advisory lock.
    await client.end().catch(() => {});
  }
}

/** True when an insert failed on a unique or primary key constraint (both dialects). */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "23505";
}
