/**
 * Opens the store. Everything dialect-specific lives in this file: the rest of the code writes
 * portable Kysely queries against `Db`, and takes row locks with `.forUpdate()` (and
 * `.skipLocked()`), which PostgreSQL honours and the SQLite store drops (see WithoutRowLocks).
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import {
  Kysely,
  type KyselyPlugin,
  Migrator,
  OperationNodeTransformer,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  PostgresDialect,
  type QueryResult,
  type RootOperationNode,
  type SelectQueryNode,
  SqliteDialect,
  type Transaction,
  type UnknownRow,
} from "kysely";
import pg from "pg";
import { migrationProvider } from "./migrations.js";
import type { Database } from "./schema.js";

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
  close(): Promise<void>;
}

export function openSqlite(file: string): StoreHandle {
  mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  // Another process (the CLI) may hold the write lock briefly: wait instead of failing.
  sqlite.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: sqlite }),
    plugins: [new WithoutRowLocks()],
  });
  return {
    db,
    dialect: "sqlite",
    close: () => db.destroy(),
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
  const migrator = new Migrator({ db: store.db, provider: migrationProvider(store.dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** True when an insert failed on a unique or primary key constraint (both dialects). */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "23505";
}

/**
 * SQLite has no row locks and needs none: one write transaction runs at a time (and Kysely's
 * SQLite driver runs one transaction at a time on its single connection). So the row-locking
 * clauses that portable queries carry for PostgreSQL (FOR UPDATE, SKIP LOCKED…) are dropped,
 * in subqueries too, instead of reaching SQLite as syntax errors.
 */
class WithoutRowLocks implements KyselyPlugin {
  private readonly transformer = new RowLockRemover();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

const ROW_LOCK_MODIFIERS = new Set(["ForUpdate", "ForNoKeyUpdate", "ForShare", "ForKeyShare", "NoWait", "SkipLocked"]);

class RowLockRemover extends OperationNodeTransformer {
  protected override transformSelectQuery(node: SelectQueryNode): SelectQueryNode {
    const transformed = super.transformSelectQuery(node);
    if (!transformed.endModifiers) return transformed;
    const endModifiers = transformed.endModifiers.filter((m) => !ROW_LOCK_MODIFIERS.has(m.modifier ?? ""));
    return { ...transformed, endModifiers: endModifiers.length ? endModifiers : undefined };
  }
}
