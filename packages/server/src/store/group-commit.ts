/**
 * Group commit of write transactions on SQLite: creates, and the short transactions of the job
 * runners (claims, submits, terminal transitions, webhook delivery slots and attempts), through
 * writeTransaction below.
 *
 * SQLite runs one write transaction at a time, and each commit writes the pages it touched to the
 * WAL again (the account's row, the tables' and indexes' last pages): transactions that arrive
 * while another one runs therefore wait anyway, and committing them together writes those pages
 * once (a create alone wrote about 18 WAL frames, a page and its header each) and pays one COMMIT.
 *
 * When does a group form? better-sqlite3 is synchronous, so these transactions never wait on
 * I/O: each runs to its commit in one turn of the event loop, before the requests and job steps
 * that became ready beside it have run. A group is therefore gathered on purpose: the first
 * transaction schedules the group with `setImmediate`, which runs after the event loop has run
 * everything that is ready now, and they all go together (up to `maxBatch`; the rest form the
 * next group). That costs no waiting: nothing is delayed past the turn of the loop it arrived in.
 *
 * Each transaction in a group runs inside its own savepoint: one that fails (or is rolled back on
 * purpose, as a create's replay is) is rolled back to its savepoint and rejected, and the others
 * carry on. Each is resolved only after the transaction holding its rows has committed; if that
 * commit fails, every transaction of the group is rejected (none of them happened).
 */
import { type ControlledTransaction, SqliteAdapter, sql } from "kysely";
import type { Db, Tx } from "./db.js";
import type { Database } from "./schema.js";
import { holdConnection, releaseConnection, runIfHeld } from "./sync-paths.js";

interface Pending<T> {
  work: (trx: Tx) => Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  // biome-ignore lint/suspicious/noExplicitAny: each pending create has its own result type
  private waiting: Pending<any>[] = [];
  /** A transaction is running, or is scheduled to run in this turn of the event loop. */
  private running = false;

  constructor(
    private readonly db: Db,
    private readonly maxBatch = 64,
  ) {}

  /** Runs `work` in a transaction, alone or with others; resolves once its rows are committed. */
  run<T>(work: (trx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ work, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, this.maxBatch);
        if (group.length === 1) await this.runAlone(group[0] as Pending<unknown>);
        else await this.runTogether(group);
      }
    } finally {
      this.running = false;
    }
  }

  private async runAlone(item: Pending<unknown>): Promise<void> {
    try {
      const value = await this.db.transaction().execute(async (trx) => {
        holdConnection(trx, this.db);
        try {
          return await item.work(trx);
        } finally {
          releaseConnection(trx);
        }
      });
      item.resolve(value);
    } catch (error) {
      item.reject(error);
    }
  }

  private async runTogether(group: Pending<unknown>[]): Promise<void> {
    const settled: Settled[] = [];
    let trx: ControlledTransaction<Database> | undefined;
    try {
      trx = await this.db.startTransaction().execute();
      // The creates' prepared statements run straight on the connection this transaction holds
      // (store/sync-paths.ts), until it commits or rolls back.
      holdConnection(trx, this.db);
      for (const item of group) settled.push(await inSavepoint(trx, item.work));
      releaseConnection(trx);
      await trx.commit().execute();
    } catch (error) {
      // A savepoint or the commit failed: the transaction is gone, and with it every create in it.
      if (trx) {
        releaseConnection(trx);
        await trx
          .rollback()
          .execute()
          .catch(() => {});
      }
      for (const item of group) item.reject(error);
      return;
    }
    group.forEach((item, i) => {
      const outcome = settled[i] as Settled;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }
}

const SAVEPOINT = "savepoint in_group";
const ROLLBACK_TO_SAVEPOINT = "rollback to in_group";
const RELEASE_SAVEPOINT = "release in_group";

/** A savepoint command on the group's transaction: at once on the held connection, or through Kysely. */
async function command(trx: ControlledTransaction<Database>, text: string): Promise<void> {
  if (runIfHeld(trx, text, []) === undefined) await sql.raw(text).execute(trx);
}

/**
 * Runs one piece of a group; its own failure is rolled back to the savepoint and returned. The
 * savepoint is plain SQL on the group's transaction: Kysely's savepoint() builds a new
 * transaction object with its own executor for each, which cost more than the statements.
 */
async function inSavepoint(
  trx: ControlledTransaction<Database>,
  work: (trx: Tx) => Promise<unknown>,
): Promise<Settled> {
  await command(trx, SAVEPOINT);
  let outcome: Settled;
  try {
    outcome = { ok: true, value: await work(trx) };
  } catch (error) {
    await command(trx, ROLLBACK_TO_SAVEPOINT);
    outcome = { ok: false, error };
  }
  await command(trx, RELEASE_SAVEPOINT);
  return outcome;
}

/** Each SQLite store's one group (creates and worker transactions commit together). */
const groups = new WeakMap<Db, GroupCommit>();

/**
 * Runs `work` as one write transaction of `db`: on SQLite in the store's group commit (with the
 * other write transactions that are ready in this turn of the event loop, each in a savepoint of
 * its own, resolved only once committed), on PostgreSQL as a transaction of its own (its
 * transactions run concurrently, on a pool). `work` must use only `trx`, never `db`, like any
 * transaction's work: the group holds the connection until it commits.
 */
export function writeTransaction<T>(db: Db, work: (trx: Tx) => Promise<T>): Promise<T> {
  let group = groups.get(db);
  if (!group) {
    if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return db.transaction().execute(work);
    group = new GroupCommit(db);
    groups.set(db, group);
  }
  return group.run(work);
}
