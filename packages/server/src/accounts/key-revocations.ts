/**
 * Revocations across processes on PostgreSQL: the revoking transaction NOTIFYs the key's id (sent
 * at commit, so never for a rollback) and every API process LISTENs and drops the key from its
 * cache at once. The cache's TTL stays the bound when a notice is missed: while the listening
 * connection is down the whole cache is cleared and keys are read again.
 * On SQLite there is no NOTIFY, but SQLite counts other connections' commits (data_version): a
 * process that sees the count move forgets its cached keys (externalWrites below).
 */
import { PostgresAdapter, sql } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import type { Executor } from "../store/db.js";
import { readIfIdle } from "../store/sync-paths.js";
import type { KeyCache } from "./key-cache.js";

export const REVOCATION_CHANNEL = "framegate_key_revoked";
const RECONNECT_MS = { first: 500, max: 10_000 };

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
  // Every keyed request asks: on an idle connection it is answered without queueing.
  const rows =
    readIfIdle<{ data_version: number }>(db, "pragma data_version", []) ??
    (await sql<{ data_version: number }>`pragma data_version`.execute(db)).rows;
  return rows[0]?.data_version;
}

/** Listens for revocations on a connection of its own; reconnects with backoff until stopped. */
export class RevocationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private delayMs = RECONNECT_MS.first;

  constructor(
    private readonly connectionString: string,
    private readonly cache: KeyCache,
    private readonly log: Logger,
  ) {}

  /** Resolves once listening (or after the first failure: the TTL still bounds staleness). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.connectionString, connectionTimeoutMillis: 10_000 });
    client.on("notification", (message) => {
      if (message.channel === REVOCATION_CHANNEL && message.payload) this.cache.invalidate(message.payload);
    });
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, undefined));
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`);
      if (this.stopped) return;
      this.delayMs = RECONNECT_MS.first;
      // Revocations made while nobody listened are unknown: read every key again.
      this.cache.clear();
    } catch (error) {
      this.lost(client, error as Error);
    }
  }

  /** The current connection failed or ended (events of connections already given up are ignored). */
  private lost(client: pg.Client, error: Error | undefined): void {
    if (this.stopped || this.client !== client) return;
    this.client = undefined;
    this.cache.clear();
    client.end().catch(() => {});
    this.log.warn(
      { reason: (error as { code?: string } | undefined)?.code ?? error?.message, retryInMs: this.delayMs },
      "key revocation listener disconnected; cached keys dropped",
    );
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect();
    }, this.delayMs);
    this.retry.unref();
    this.delayMs = Math.min(RECONNECT_MS.max, this.delayMs * 2);
  }
}
