/**
 * Read-only access to a benchmarked server's database, for the checks after a run: the SQLite
 * file under its DATA_DIR (opened read-only, so the bench can never change what it checks), or a
 * PostgreSQL database. Queries are written once with `?` placeholders and numbered for pg.
 * On PostgreSQL each server gets a throwaway database, created here and dropped afterwards.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import pg from "pg";

export interface StoreReader {
  dialect: "sqlite" | "postgres";
  all<T>(sql: string, params?: readonly (string | number)[]): Promise<T[]>;
  /**
   * Runs `read` in one read-only transaction, so its queries see one snapshot: the server may
   * still be committing requests the load generator cut off when it stopped.
   */
  snapshot<T>(read: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function openSqliteReader(dataDir: string): StoreReader {
  const db = new SQLite(join(dataDir, "framegate.db"), { readonly: true, fileMustExist: true });
  db.pragma("busy_timeout = 5000");
  return {
    dialect: "sqlite",
    all: async <T>(sql: string, params: readonly (string | number)[] = []) => db.prepare(sql).all(...params) as T[],
    snapshot: async (read) => {
      db.exec("BEGIN");
      try {
        return await read();
      } finally {
        db.exec("COMMIT");
      }
    },
    close: async () => {
      db.close();
    },
  };
}

export async function openPgReader(url: string): Promise<StoreReader> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // Counts and sums come back as int8/numeric strings; every figure here fits a JS number.
  const toNumbers = (row: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(row)) if (typeof v === "string" && /^-?\d+$/.test(v)) row[k] = Number(v);
    return row;
  };
  await client.query("SET default_transaction_read_only = on");
  return {
    dialect: "postgres",
    all: async <T>(sql: string, params: readonly (string | number)[] = []) => {
      let n = 0;
      const res = await client.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params as unknown[],
      );
      return res.rows.map(toNumbers) as T[];
    },
    snapshot: async (read) => {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        return await read();
      } finally {
        await client.query("COMMIT");
      }
    },
    close: () => client.end(),
  };
}

export interface ThrowawayDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A new, empty database on the server of `adminUrl` (its role needs CREATEDB), so every run starts
 * from a fresh schema and never touches the data already there.
 */
export async function createThrowawayDatabase(adminUrl: string, label: string): Promise<ThrowawayDatabase> {
  const name = `framegate_bench_${label}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    throw new Error(
      `could not create a throwaway database on DATABASE_URL's server (${(error as Error).message}); the bench needs a role with CREATEDB`,
    );
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
