/**
 * Where a database stands against the migrations this binary ships, read without writing
 * anything: what `framegate migrate --dry-run` prints, and the check that keeps an older binary
 * off a database a newer one has migrated.
 *
 * Kysely's Migrator, given a database that records a migration it does not know, throws
 * "corrupted migrations: previously executed migration … is missing" (after creating its tables
 * and taking its lock). That is safe but reads like damage; here the same case gets a sentence
 * that says what happened and what to do, before anything runs.
 */
import { type Kysely, Migrator, sql } from "kysely";
import type { StoreHandle } from "./db.js";
import { migrationProvider } from "./migrations.js";

/** Kysely's default name for its record of applied migrations. */
const MIGRATION_TABLE = "kysely_migration";

export interface MigrationState {
  /** Migrations of this binary already applied, in order. */
  applied: string[];
  /** Migrations of this binary not applied yet, in the order they would run. */
  pending: string[];
  /** Migrations the database records that this binary does not know (a newer version applied them). */
  unknown: string[];
}

export async function migrationState(store: StoreHandle): Promise<MigrationState> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider(store.dialect) });
  const known = await migrator.getMigrations();
  const recorded = (await migrationTableExists(store)) ? await recordedMigrations(store) : [];
  const knownNames = new Set(known.map((m) => m.name));
  return {
    applied: known.filter((m) => m.executedAt !== undefined).map((m) => m.name),
    pending: known.filter((m) => m.executedAt === undefined).map((m) => m.name),
    unknown: recorded.filter((name) => !knownNames.has(name)).sort(),
  };
}

/** Thrown when the database was migrated by a newer Framegate than this one. */
export class NewerDatabaseError extends Error {
  constructor(
    readonly unknown: string[],
    readonly latestKnown: string | undefined,
  ) {
    super(
      `This database was upgraded by a newer Framegate: it records migration${unknown.length > 1 ? "s" : ""} ` +
        `${unknown.join(", ")}, which this version does not know (its latest is ${latestKnown ?? "none"}). ` +
        "Nothing was changed. Run the newer version again, or restore a backup taken before the upgrade.",
    );
    this.name = "NewerDatabaseError";
  }
}

/** Throws NewerDatabaseError when the database records a migration this binary does not ship. */
export async function refuseNewerDatabase(store: StoreHandle): Promise<MigrationState> {
  const state = await migrationState(store);
  if (state.unknown.length > 0) {
    throw new NewerDatabaseError(state.unknown, [...state.applied, ...state.pending].at(-1));
  }
  return state;
}

async function migrationTableExists(store: StoreHandle): Promise<boolean> {
  // Resolved as the Migrator resolves it: PostgreSQL through the connection's search_path.
  const query =
    store.dialect === "postgres"
      ? sql<{ found: unknown }>`select to_regclass(${MIGRATION_TABLE}::text) as found`
      : sql<{
          found: unknown;
        }>`select name as found from sqlite_master where type = 'table' and name = ${MIGRATION_TABLE}`;
  const { rows } = await query.execute(store.db);
  return rows[0]?.found != null;
}

async function recordedMigrations(store: StoreHandle): Promise<string[]> {
  // The table is Kysely's, outside the typed schema.
  const rows = await (store.db as unknown as Kysely<Record<string, { name: string }>>)
    .selectFrom(MIGRATION_TABLE)
    .select("name")
    .execute();
  return rows.map((r) => r.name);
}
