/**
 * The SQLite dialect of the store: Kysely's, with the statement-caching driver (sqlite-driver.ts)
 * and a query compiler that leaves out row-lock clauses.
 *
 * Portable queries take row locks with `.forUpdate()` / `.skipLocked()` for PostgreSQL. SQLite
 * has no row locks and needs none: one write transaction runs at a time, and the store's single
 * connection runs one transaction at a time. So the SQLite compiler drops those modifiers
 * wherever a SELECT carries them, subqueries included, instead of sending SQLite a syntax error.
 * Doing it while compiling costs one look at each SELECT's end modifiers; a plugin rewriting the
 * operation tree did the same at the price of a full tree copy per query.
 */
import type BetterSqlite3 from "better-sqlite3";
import {
  type Driver,
  type QueryCompiler,
  type SelectModifierNode,
  type SelectQueryNode,
  SqliteDialect,
  SqliteQueryCompiler,
} from "kysely";
import { CachingSqliteDriver, type ConnectionGate } from "./sqlite-driver.js";

export interface SqliteStoreDialectOptions {
  /** Prepared statements kept by SQL text (LRU). */
  statementCacheSize?: number;
  /** Lets the background WAL checkpointer pause the connection between two transactions. */
  gate?: ConnectionGate;
}

export class SqliteStoreDialect extends SqliteDialect {
  /** The one driver of this dialect (Kysely asks once, when the Kysely instance is made). */
  readonly driver: CachingSqliteDriver;

  constructor(database: BetterSqlite3.Database, options: SqliteStoreDialectOptions = {}) {
    super({ database });
    this.driver = new CachingSqliteDriver(database, options);
  }

  override createDriver(): Driver {
    return this.driver;
  }

  override createQueryCompiler(): QueryCompiler {
    return new SqliteCompilerWithoutRowLocks();
  }
}

const ROW_LOCK_MODIFIERS: ReadonlySet<string> = new Set([
  "ForUpdate",
  "ForNoKeyUpdate",
  "ForShare",
  "ForKeyShare",
  "NoWait",
  "SkipLocked",
]);

const isRowLock = (m: SelectModifierNode) => m.modifier !== undefined && ROW_LOCK_MODIFIERS.has(m.modifier);

class SqliteCompilerWithoutRowLocks extends SqliteQueryCompiler {
  // Every SELECT, nested ones too, is compiled through here (the visitor dispatches by node kind).
  protected override visitSelectQuery(node: SelectQueryNode): void {
    const modifiers = node.endModifiers;
    if (modifiers === undefined || !modifiers.some(isRowLock)) {
      super.visitSelectQuery(node);
      return;
    }
    const kept = modifiers.filter((m) => !isRowLock(m));
    super.visitSelectQuery({ ...node, endModifiers: kept.length > 0 ? kept : undefined });
  }
}
