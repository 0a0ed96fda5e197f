/**
 * Status changes across processes on PostgreSQL. Each process forwards the changes it commits
 * (its in-process channel, changes.ts) as NOTIFY on one channel, and each process that serves
 * the API LISTENs on one connection of its own and wakes its watcher (watcher.ts).
 *
 * The NOTIFY is sent after the status change committed, as a statement of its own, not inside
 * the task's transaction: a transaction that notifies holds PostgreSQL's database-wide notify
 * lock through its commit's WAL flush, which would make every worker's commits wait in line (the
 * create path dropped its NOTIFY for that reason). The cost is that a process dying between the
 * commit and the NOTIFY loses the notice; the watcher's poll is the backstop for that. The ids of
 * one event-loop turn go out in one NOTIFY.
 */
import type { EventEmitter } from "node:events";
import { sql } from "kysely";
import type { Logger } from "pino";
import type { Db } from "../../store/db.js";
import { PgListener } from "../../store/pg-listener.js";
import type { TaskWatcher } from "./watcher.js";

export const TASK_CHANGE_CHANNEL = "framegate_task_changed";
/** PostgreSQL refuses payloads of 8000 bytes or more; task ids are ~30 bytes. */
const MAX_PAYLOAD = 7000;

/** Forwards this process's committed changes to the other processes. */
export class ChangeAnnouncer {
  private pending = new Set<string>();
  private scheduled = false;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly onChange = (taskId: string) => {
    this.pending.add(taskId);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  };

  constructor(
    private readonly db: Db,
    private readonly channel: EventEmitter,
    private readonly log: Logger,
  ) {
    channel.on("change", this.onChange);
  }

  private flush(): void {
    this.scheduled = false;
    const ids = [...this.pending];
    this.pending.clear();
    for (const payload of payloads(ids)) {
      this.inFlight = this.inFlight
        .then(() => sql`select pg_notify(${TASK_CHANGE_CHANNEL}, ${payload})`.execute(this.db))
        .then(
          () => {},
          (error) => this.log.warn({ err: error }, "could not announce task changes; other processes poll for them"),
        );
    }
  }

  /** Stops listening; sends what is pending (the store is still open when this is called). */
  async close(): Promise<void> {
    this.channel.off("change", this.onChange);
    if (this.pending.size) this.flush();
    await this.inFlight;
  }
}

function payloads(ids: string[]): string[] {
  const out: string[] = [];
  let current = "";
  for (const id of ids) {
    if (current && current.length + id.length + 1 > MAX_PAYLOAD) {
      out.push(current);
      current = "";
    }
    current = current ? `${current},${id}` : id;
  }
  if (current) out.push(current);
  return out;
}

/** LISTENs on a connection of its own; reconnects with backoff until stopped. */
export class ChangeListener {
  private readonly listener: PgListener;

  constructor(connectionString: string, watcher: TaskWatcher, log: Logger) {
    this.listener = new PgListener(
      connectionString,
      TASK_CHANGE_CHANNEL,
      {
        notify: (payload) => {
          for (const id of payload.split(",")) watcher.wake(id);
        },
        // Changes made while nobody listened were not heard: every follower re-reads once.
        connected: () => watcher.wakeAll(),
      },
      log,
      "task change listener disconnected; live status falls back to polling until it is back",
    );
  }

  /** Resolves once listening, or after the first failure (the watcher's poll still runs). */
  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }
}
