/**
 * Kysely's SQLite driver with prepared statements kept between queries.
 *
 * Kysely's own SqliteDriver calls `db.prepare(sql)` for every query; compiling the SQL text again
 * each time was about a fifth of a keyed GET's CPU time (issue #13). This driver keeps the
 * better-sqlite3 `Statement`s by SQL text in a bounded LRU and otherwise behaves like Kysely's:
 *
 * - one connection, handed to one caller at a time (a mutex: SQLite transactions on a single
 *   connection cannot interleave);
 * - reader statements (those that return rows, RETURNING included) run with `.all()`, the others
 *   with `.run()` and report numAffectedRows / insertId;
 * - streaming with `.iterate()`, for SELECTs only;
 * - BEGIN / COMMIT / ROLLBACK and savepoints as plain statements (cached like any other).
 *
 * It also lets the background WAL checkpointer (checkpointer.ts) pause the connection between
 * two holders when it asks to: never inside a transaction, and by awaiting, not blocking.
 *
 * A better-sqlite3 statement runs one query at a time: while a stream iterates it, it is busy.
 * Through Kysely that cannot meet a second run of the same SQL (a stream holds the connection
 * until it ends or is returned), but the cache does not rely on it: a statement found busy is
 * left alone and the query gets a freshly prepared one.
 */
import type BetterSqlite3 from "better-sqlite3";
import {
  CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type Driver,
  IdentifierNode,
  type QueryCompiler,
  type QueryResult,
  RawNode,
  SelectQueryNode,
} from "kysely";

/** Distinct SQL texts kept prepared; the app issues a few hundred at most (IN lists vary in length). */
export const DEFAULT_STATEMENT_CACHE_SIZE = 500;

/** Builds one row object from the values of a row read in raw mode (arrays). */
type RowBuilder = (values: unknown[]) => Record<string, unknown>;

/**
 * A statement ready to run. A reader is kept in raw mode and `rows` turns its value arrays into
 * objects: better-sqlite3's own row objects are built in C++ one property at a time, interning
 * every column name again for every row, which was half of a keyed GET's time in SQLite (issue
 * 13); an object literal of fixed shape, compiled once per statement, costs about a tenth of it.
 */
export interface CachedStatement {
  stmt: BetterSqlite3.Statement;
  /** Runs a reader and returns its rows as objects; undefined for statements that return none. */
  read: ((parameters: readonly unknown[]) => unknown[]) | undefined;
  /** The reader's row builder (streams build one row at a time). */
  row: RowBuilder | undefined;
}

/**
 * A compiled row builder for these column names. Names are written as JSON string literals, so
 * any name is safe; `__proto__` (which would set the prototype in a literal) gets the slow path.
 * A name that repeats (a join reading `id` twice) keeps its last value, as better-sqlite3 does.
 */
export function rowBuilder(names: readonly string[]): RowBuilder {
  if (names.includes("__proto__")) {
    return (values) => {
      const row: Record<string, unknown> = {};
      for (const [i, name] of names.entries()) {
        Object.defineProperty(row, name, { value: values[i], enumerable: true, writable: true, configurable: true });
      }
      return row;
    };
  }
  const fields = names.map((name, i) => `${JSON.stringify(name)}: v[${i}]`).join(", ");
  return new Function("v", `return { ${fields} };`) as RowBuilder;
}

function prepare(db: BetterSqlite3.Database, sql: string): CachedStatement {
  const stmt = db.prepare(sql);
  if (!stmt.reader) return { stmt, read: undefined, row: undefined };
  stmt.raw(true);
  const names = stmt.columns().map((c) => c.name);
  const row = rowBuilder(names);
  const width = names.length;
  return {
    stmt,
    row,
    read: (parameters) => {
      const raw = stmt.all(parameters as unknown[]) as unknown[][];
      // A schema change re-prepares the statement inside SQLite and `select *` may then return
      // another set of columns; DDL empties the cache (executeQuery), and this guards what slips by.
      if (raw.length > 0 && (raw[0] as unknown[]).length !== width)
        return raw.map(rowBuilder(stmt.columns().map((c) => c.name)));
      return raw.map(row);
    },
  };
}

/** A bounded least-recently-used map from SQL text to its prepared statement. */
export class StatementCache {
  // A Map iterates in insertion order; re-inserting on every hit keeps the least recently used first.
  private readonly statements = new Map<string, CachedStatement>();

  constructor(
    private readonly db: BetterSqlite3.Database,
    readonly capacity = DEFAULT_STATEMENT_CACHE_SIZE,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("statement cache capacity must be ≥ 1");
  }

  get size(): number {
    return this.statements.size;
  }

  /** A statement for `sql`, ready to run: the cached one, or a new one when it is absent or busy. */
  statement(sql: string): CachedStatement {
    const cached = this.statements.get(sql);
    if (cached !== undefined) {
      // Busy: a stream is still iterating it. A fresh statement runs this query; the cached one
      // stays for later (the stream will be done with it).
      if (cached.stmt.busy) return prepare(this.db, sql);
      this.statements.delete(sql);
      this.statements.set(sql, cached);
      return cached;
    }
    // A statement that fails to prepare (a syntax error) throws here and is not cached.
    const prepared = prepare(this.db, sql);
    this.statements.set(sql, prepared);
    if (this.statements.size > this.capacity) {
      // Evicted statements are finalized by better-sqlite3 when they are garbage-collected.
      const oldest = this.statements.keys().next().value as string;
      this.statements.delete(oldest);
    }
    return prepared;
  }

  clear(): void {
    this.statements.clear();
  }
}

/** Statements that change the schema: the columns a cached `select *` returns may change with them. */
const DDL = /^\s*(create|alter|drop)\b/i;

class CachingSqliteConnection implements DatabaseConnection {
  constructor(private readonly statements: StatementCache) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { stmt, read } = this.statements.statement(compiledQuery.sql);
    const parameters = compiledQuery.parameters as unknown[];
    if (read) return { rows: read(parameters) as R[] };
    const { changes, lastInsertRowid } = stmt.run(parameters);
    if (DDL.test(compiledQuery.sql)) this.statements.clear();
    return {
      numAffectedRows: changes !== undefined && changes !== null ? BigInt(changes) : undefined,
      insertId: lastInsertRowid !== undefined && lastInsertRowid !== null ? BigInt(lastInsertRowid) : undefined,
      rows: [],
    };
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, _chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiledQuery.query)) {
      throw new Error("the SQLite driver streams SELECT queries only");
    }
    const { stmt, row } = this.statements.statement(compiledQuery.sql);
    const build = row as RowBuilder;
    // Leaving the loop early (a consumer that stops reading) returns the iterator, which resets
    // the statement and makes it reusable.
    for (const values of stmt.iterate(compiledQuery.parameters as unknown[])) {
      yield { rows: [build(values as unknown[]) as R] };
    }
  }
}

/** Someone who may ask the connection to pause between two holders (the WAL checkpointer). */
export interface ConnectionGate {
  /** Called every time the connection is handed out: must be cheap. */
  pauseRequested(): boolean;
  /** Called while holding the connection; resolves when it may be used again. */
  pause(): Promise<void>;
}

/** Waiters for the single connection, served in turn. */
class ConnectionMutex {
  private held: Promise<void> | undefined;
  private release: (() => void) | undefined;

  get isHeld(): boolean {
    return this.held !== undefined;
  }

  async lock(): Promise<void> {
    while (this.held) await this.held;
    this.held = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  unlock(): void {
    const release = this.release;
    this.held = undefined;
    this.release = undefined;
    release?.();
  }
}

export class CachingSqliteDriver implements Driver {
  private readonly mutex = new ConnectionMutex();
  private readonly statements: StatementCache;
  private readonly connection: CachingSqliteConnection;
  private readonly gate: ConnectionGate | undefined;
  private dataVersion: BetterSqlite3.Statement | undefined;

  constructor(
    private readonly db: BetterSqlite3.Database,
    options: { statementCacheSize?: number; gate?: ConnectionGate } = {},
  ) {
    this.statements = new StatementCache(db, options.statementCacheSize ?? DEFAULT_STATEMENT_CACHE_SIZE);
    this.connection = new CachingSqliteConnection(this.statements);
    this.gate = options.gate;
  }

  async init(): Promise<void> {}

  /**
   * Runs a statement at once for a caller that holds the connection (a transaction of its own,
   * between its BEGIN and its COMMIT): what Kysely would do, without its chain of awaits. Returns
   * the rows, none for a statement that returns none.
   */
  runHeld(sql: string, parameters: readonly unknown[]): unknown[] {
    if (!this.mutex.isHeld) throw new Error("runHeld needs the connection held by the caller's transaction");
    const { stmt, read } = this.statements.statement(sql);
    if (read) return read(parameters);
    stmt.run(parameters as unknown[]);
    return [];
  }

  /**
   * Runs a reading statement at once, synchronously, when nobody holds the connection and the
   * checkpointer is not waiting for it; undefined otherwise (the caller then queues as usual).
   *
   * Sound because JavaScript runs one thing at a time: between the check and the end of the
   * statement nothing else can take the connection, so the read sees exactly what it would see
   * had it queued for the mutex, and it can never land inside someone else's open transaction
   * (a transaction holds the mutex from BEGIN to COMMIT). What it saves is the mutex's promise
   * and Kysely's chain of awaits, most of a point read's JavaScript (issue 13).
   */
  readIfIdle(sql: string, parameters: readonly unknown[]): unknown[] | undefined {
    if (this.mutex.isHeld || this.gate?.pauseRequested()) return undefined;
    const { read } = this.statements.statement(sql);
    if (!read) throw new Error("readIfIdle runs statements that return rows only");
    return read(parameters);
  }

  /**
   * PRAGMA data_version when the connection is idle (as readIfIdle), else undefined. Its value
   * changes only when another connection (another process, the CLI) commits: never for this
   * connection's own commits, nor for the checkpointer's PASSIVE and RESTART rounds.
   */
  dataVersionIfIdle(): number | undefined {
    if (this.mutex.isHeld || this.gate?.pauseRequested()) return undefined;
    this.dataVersion ??= this.db.prepare("pragma data_version").pluck();
    return this.dataVersion.get() as number;
  }

  /**
   * Calls `onChange(id)` whenever this connection updates or deletes a row of `table`, from
   * inside the statement (before its transaction commits, or rolls back). TEMP triggers: they
   * live in this connection only, never in the database file, so other connections (the CLI, a
   * backup, a restore) neither see nor need the function they call.
   */
  async watchRowChanges(table: string, onChange: (id: string) => void): Promise<void> {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
    const fn = `framegate_${table}_row_changed`;
    // Not directOnly: triggers must be able to call it.
    this.db.function(fn, { deterministic: false }, (id: unknown) => {
      onChange(String(id));
      return null;
    });
    // Through the mutex: DDL run inside someone else's open transaction would share its fate.
    const connection = await this.acquireConnection();
    try {
      for (const op of ["update", "delete"]) {
        await connection.executeQuery(
          CompiledQuery.raw(
            `create temp trigger if not exists framegate_${table}_${op}_watch after ${op} on main.${table} ` +
              `begin select ${fn}(old.id); end`,
          ),
        );
      }
    } finally {
      await this.releaseConnection();
    }
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.mutex.lock();
    if (this.gate?.pauseRequested()) await this.gate.pause();
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    this.mutex.unlock();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    await connection.executeQuery(compile(savepointCommand("savepoint", name), createQueryId()));
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await connection.executeQuery(compile(savepointCommand("rollback to", name), createQueryId()));
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ): Promise<void> {
    await connection.executeQuery(compile(savepointCommand("release", name), createQueryId()));
  }

  async destroy(): Promise<void> {
    this.statements.clear();
    this.db.close();
  }
}

/** `<command> "<name>"`, the name quoted as an identifier by the compiler. */
function savepointCommand(command: string, name: string): RawNode {
  return RawNode.createWithChildren([RawNode.createWithSql(`${command} `), IdentifierNode.create(name)]);
}
