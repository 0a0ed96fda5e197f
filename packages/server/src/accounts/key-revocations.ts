/**
 * Revocations across processes on PostgreSQL: the revoking transaction NOTIFYs the key's id (sent
 * at commit, so never for a rollback) and every API process LISTENs and drops the key from its
 * cache at once. The cache's TTL stays the bound when a notice is missed: while the listening
 * connection is down the whole cache is cleared and keys are read again.
 * On SQLite there is no NOTIFY, but SQLite counts other connections' commits (data_version): a
 * process that sees the count move forgets its cached keys (externalWrites below).
 */
import { PostgresAdapter, sql } from "kysely";
import type { Logger } from "pino";
import type { Executor } from "../store/db.js";
import { PgListener } from "../store/pg-listener.js";
import { dataVersionIfIdle } from "../store/sync-paths.js";
import type { KeyCache } from "./key-cache.js";

export const REVOCATION_CHANNEL = "framegate_key_revoked";

export async function announceRevocation(db: Executor, keyId: string): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`select pg_notify(${REVOCATION_CHANNEL}, ${keyId})`.execute(db);
}

/**
 * SQLite's count of commits made by other connections to the file (another process: the CLI);
 * undefined on PostgreSQL, where revocations are NOTIFYed instead.
 */
export async function externalWrites(db: Executor): Promise<number | undefined> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) return undefined;
  // On an idle connection it is answered without queueing.
  const now = dataVersionIfIdle(db);
  if (now !== undefined) return now;
  return (await sql<{ data_version: number }>`pragma data_version`.execute(db)).rows[0]?.data_version;
}

/** Listens for revocations on a connection of its own; reconnects with backoff until stopped. */
export class RevocationListener {
  private readonly listener: PgListener;

  constructor(connectionString: string, cache: KeyCache, log: Logger) {
    this.listener = new PgListener(
      connectionString,
      REVOCATION_CHANNEL,
      {
        notify: (keyId) => cache.invalidate(keyId),
        // Revocations made while nobody listened are unknown: read every key again.
        connected: () => cache.clear(),
        lost: () => cache.clear(),
      },
      log,
      "key revocation listener disconnected; cached keys dropped",
    );
  }

  /** Resolves once listening (or after the first failure: the TTL still bounds staleness). */
  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }
}
