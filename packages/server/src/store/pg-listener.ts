/**
 * A PostgreSQL LISTEN on a connection of its own, reconnecting with backoff until stopped: what
 * key revocations (accounts/key-revocations.ts) and live status (generations/live/pg-channel.ts)
 * each listen with.
 *
 * Notices sent while the connection is down are lost, so the owner hears about both edges:
 * `connected` after every (re)connect (re-read what may have changed meanwhile) and `lost` when
 * the connection fails (fall back to whatever bounds staleness without notices).
 */
import pg from "pg";
import type { Logger } from "pino";

const RECONNECT_MS = { first: 500, max: 10_000 };

export interface ListenerHandlers {
  /** A notice on the channel, with its payload (notices without one are dropped). */
  notify(payload: string): void;
  /** Listening again: notices of the time before (or in between) were not heard. */
  connected(): void;
  /** The connection failed or ended; a reconnect is scheduled. */
  lost?(): void;
}

export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private delayMs = RECONNECT_MS.first;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly handlers: ListenerHandlers,
    private readonly log: Logger,
    /** The warning logged when the connection is lost (what the owner falls back to). */
    private readonly lostMessage: string,
  ) {
    // The channel goes into the statement as an identifier: only plain names.
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a plain channel name: ${channel}`);
  }

  /** Resolves once listening, or after the first failure (the owner's fallback covers that). */
  start(): Promise<void> {
    return this.connect();
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
      if (message.channel === this.channel && message.payload) this.handlers.notify(message.payload);
    });
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, undefined));
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.stopped) return;
      this.delayMs = RECONNECT_MS.first;
      this.handlers.connected();
    } catch (error) {
      this.lost(client, error as Error);
    }
  }

  /** The current connection failed or ended (events of connections already given up are ignored). */
  private lost(client: pg.Client, error: Error | undefined): void {
    if (this.stopped || this.client !== client) return;
    this.client = undefined;
    this.handlers.lost?.();
    client.end().catch(() => {});
    this.log.warn(
      { reason: (error as { code?: string } | undefined)?.code ?? error?.message, retryInMs: this.delayMs },
      this.lostMessage,
    );
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.connect();
    }, this.delayMs);
    this.retry.unref();
    this.delayMs = Math.min(RECONNECT_MS.max, this.delayMs * 2);
  }
}
