/**
 * Which store the integration suite runs on, and one database per data directory on PostgreSQL.
 *
 * The "postgres" vitest project sets FRAMEGATE_TEST_STORE=postgres, and its global setup
 * (pg-global-setup.ts) provides an admin connection string and a run id. A data directory then
 * always maps to the same database of this run, `fg_<run>_<hash of the path>`, created on first
 * use: a server restarted on the same directory (crash and restart tests) finds its data again,
 * and parallel tests never share one. SQLite needs nothing: the file lives in the directory.
 *
 * The PostgreSQL pass also keeps media in S3 (FRAMEGATE_TEST_STORAGE=s3): the global setup
 * starts one s3rver bucket and each data directory gets its own prefix in it, so that pass runs
 * the suite on the scale-out combination (PostgreSQL + S3) and the SQLite pass on the embedded
 * one (SQLite + local directory).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import pg from "pg";
import { inject } from "vitest";

export type TestStore = "sqlite" | "postgres";

export const TEST_STORE: TestStore = process.env.FRAMEGATE_TEST_STORE === "postgres" ? "postgres" : "sqlite";
export const TEST_STORAGE: "fs" | "s3" = process.env.FRAMEGATE_TEST_STORAGE === "s3" ? "s3" : "fs";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");
/** duplicate_database, or the unique index of pg_database when two sessions create it at once. */
const ALREADY_EXISTS = ["42P04", "23505"];

function pgRun(): { adminUrl: string; runId: string } {
  const adminUrl = inject("pgAdminUrl");
  const runId = inject("pgRunId");
  if (!adminUrl || !runId) throw new Error("FRAMEGATE_TEST_STORE=postgres without the postgres project's global setup");
  return { adminUrl, runId };
}

/** A short, stable name for a data directory (its database's suffix, its S3 prefix). */
function dirKey(dataDir: string): string {
  return createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 20);
}

export function testDatabaseName(dataDir: string): string {
  return `fg_${pgRun().runId}_${dirKey(dataDir)}`;
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The env that points a server (in process or child) at the store of `dataDir`, creating its
 * database first on PostgreSQL. On SQLite it unsets a DATABASE_URL the test run may inherit.
 */
export async function testStoreEnv(dataDir: string): Promise<Record<string, string>> {
  if (TEST_STORE === "sqlite") return { DATABASE_URL: "", ...testStorageEnv(dataDir) };
  const { adminUrl } = pgRun();
  const name = testDatabaseName(dataDir);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } catch (error) {
    if (!ALREADY_EXISTS.includes((error as { code?: string }).code ?? "")) throw error;
  } finally {
    await client.end();
  }
  return { DATABASE_URL: databaseUrl(adminUrl, name), ...testStorageEnv(dataDir) };
}

/** The storage of `dataDir`: its own prefix in the run's s3rver bucket, or (default) DATA_DIR/storage. */
function testStorageEnv(dataDir: string): Record<string, string> {
  if (TEST_STORAGE === "fs") return {};
  const [endpoint, bucket] = [inject("s3Endpoint"), inject("s3Bucket")];
  if (!endpoint || !bucket) throw new Error("FRAMEGATE_TEST_STORAGE=s3 without the global setup's S3 server");
  return {
    STORAGE_DRIVER: "s3",
    S3_ENDPOINT: endpoint,
    S3_BUCKET: bucket,
    S3_PREFIX: `${dirKey(dataDir)}/`,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
  };
}

/** testStoreEnv for synchronous callers (spawning a child server): creates the database in a child node. */
export function testStoreEnvSync(dataDir: string): Record<string, string> {
  if (TEST_STORE === "sqlite") return { DATABASE_URL: "", ...testStorageEnv(dataDir) };
  const { adminUrl } = pgRun();
  const name = testDatabaseName(dataDir);
  const script = `
    import pg from "pg";
    const client = new pg.Client({ connectionString: process.env.FG_ADMIN_URL });
    await client.connect();
    try {
      await client.query('create database "' + process.env.FG_DATABASE + '"');
    } catch (error) {
      if (!${JSON.stringify(ALREADY_EXISTS)}.includes(error.code)) throw error;
    } finally {
      await client.end();
    }`;
  execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: REPO_ROOT,
    env: { ...process.env, FG_ADMIN_URL: adminUrl, FG_DATABASE: name },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return { DATABASE_URL: databaseUrl(adminUrl, name), ...testStorageEnv(dataDir) };
}

/** Drops the database of `dataDir` (PostgreSQL), closing any connection still open to it. */
export async function dropTestDatabase(dataDir: string): Promise<void> {
  if (TEST_STORE === "sqlite") return;
  const { adminUrl } = pgRun();
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists "${testDatabaseName(dataDir)}" with (force)`);
  } finally {
    await client.end();
  }
}

/** Runs one query on the PostgreSQL database of `dataDir` (for looks at a child's data once it is gone). */
export async function queryTestDatabase<R extends object>(dataDir: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({
    connectionString: (await testStoreEnv(dataDir)).DATABASE_URL,
    // Credits are bigint there: read them as numbers, as the server's store does.
    types: {
      getTypeParser: ((oid: number, format?: "text") =>
        oid === 20 ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
    },
  });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgRunId: string;
    /** The run's S3 server (FRAMEGATE_TEST_STORAGE=s3), else "". */
    s3Endpoint: string;
    s3Bucket: string;
  }
}
