/**
 * Queries on the hottest paths, built and compiled once per dialect instead of on every request
 * (issue 13: Kysely's build, plugin pass and compile were an eighth of a keyed GET).
 *
 * The query is built with a sentinel in place of each argument; compiling it records where each
 * sentinel landed among the compiled parameters, and later calls swap the arguments in there. The
 * query stays a typed Kysely builder and its rows keep their types.
 */
import { type CompiledQuery, createQueryId, PostgresAdapter, SelectQueryNode } from "kysely";
import type { Db, Executor } from "./db.js";
import { readIfIdle, runIfHeld } from "./sync-paths.js";

interface Compiled<Row> {
  query: CompiledQuery<Row>;
  /** For each compiled parameter: the index of the argument it takes, or -1 to keep it. */
  slots: number[];
  /** A plain SELECT: on an idle SQLite connection it runs at once (store/sync-paths.ts). */
  reads: boolean;
}

const SENTINEL = "\u0000framegate-prepared-argument-";

export class PreparedQuery<Args extends readonly unknown[], Row> {
  /** One compilation per dialect: the SQL differs (placeholders, plugins). */
  private readonly compiled = new Map<string, Compiled<Row>>();

  constructor(
    private readonly build: (db: Db, ...args: Args) => { compile(): CompiledQuery<Row> },
    private readonly arity: Args["length"],
  ) {}

  async execute(db: Executor, ...args: Args): Promise<Row[]> {
    const compiled = this.compile(db);
    const parameters = bind(compiled, args);
    const direct =
      runIfHeld<Row>(db, compiled.query.sql, parameters) ??
      (compiled.reads ? readIfIdle<Row>(db, compiled.query.sql, parameters) : undefined);
    if (direct !== undefined) return direct;
    // A fresh query id per run: plugins may keep per-query state keyed by it.
    const result = await db.executeQuery<Row>({ ...compiled.query, parameters, queryId: createQueryId() });
    return result.rows;
  }

  async first(db: Executor, ...args: Args): Promise<Row | undefined> {
    return (await this.execute(db, ...args))[0];
  }

  /**
   * A plain SELECT's rows, read now, synchronously, when `db` is an idle SQLite connection
   * (store/sync-paths.ts); undefined when it would have to wait (or on PostgreSQL). Lets a caller
   * read and act on what it read before anything else runs.
   */
  readNow(db: Db, ...args: Args): Row[] | undefined {
    const compiled = this.compile(db);
    if (!compiled.reads) throw new Error("readNow runs plain SELECTs only");
    return readIfIdle<Row>(db, compiled.query.sql, bind(compiled, args));
  }

  private compile(db: Executor): Compiled<Row> {
    const dialect = db.getExecutor().adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
    let compiled = this.compiled.get(dialect);
    if (!compiled) {
      const sentinels = Array.from({ length: this.arity }, (_, i) => `${SENTINEL}${i}`);
      const query = this.build(db as Db, ...(sentinels as unknown as Args)).compile();
      const slots = query.parameters.map((value) => (typeof value === "string" ? sentinels.indexOf(value) : -1));
      const missing = sentinels.filter((_, i) => !slots.includes(i));
      if (missing.length > 0) throw new Error(`prepared query does not use argument(s) ${missing.join(", ")}`);
      compiled = { query, slots, reads: SelectQueryNode.is(query.query) };
      this.compiled.set(dialect, compiled);
    }
    return compiled;
  }
}

/** The compiled parameters with this call's arguments in their slots. */
function bind<Row>(compiled: Compiled<Row>, args: readonly unknown[]): unknown[] {
  return compiled.query.parameters.map((value, i) => {
    const slot = compiled.slots[i] as number;
    return slot === -1 ? value : args[slot];
  });
}
