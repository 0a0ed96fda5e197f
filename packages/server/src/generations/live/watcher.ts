/**
 * One process's registry of clients following tasks (SSE streams, held `Prefer: wait` requests),
 * and the three ways it learns that a task may have changed:
 *  - this process committed the change (changes.ts: the in-process channel of the store handle);
 *  - another process did, and PostgreSQL NOTIFYed it (pg-channel.ts calls wake());
 *  - a slow poll: every `pollMs` one keyed read of the watched tasks' statuses, compared with
 *    what each client last saw. It is the backstop for a lost notification, a listener that was
 *    reconnecting, or a second process on one SQLite file (no NOTIFY there).
 * A wake is only a hint: the client re-reads the task and sends nothing unless it moved on.
 */
import type { EventEmitter } from "node:events";
import type { TaskStatus } from "@framegate/contract";
import type { Logger } from "pino";
import type { Db } from "../../store/db.js";

export interface Subscriber {
  /** The status this client last saw (the poll wakes it when the stored one differs). */
  status(): TaskStatus;
  wake(): void;
}

/** Ids per poll query: keeps the IN list and its parameters well inside every driver's limit. */
const POLL_BATCH = 500;

export class TaskWatcher {
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private readonly onLocalChange = (taskId: string) => this.wake(taskId);
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(private readonly deps: { db: Db; channel: EventEmitter; pollMs: number; log: Logger }) {
    deps.channel.on("change", this.onLocalChange);
  }

  /** Registers a subscriber for a task; returns the function that removes it. */
  watch(taskId: string, subscriber: Subscriber): () => void {
    let set = this.subscribers.get(taskId);
    if (!set) {
      set = new Set();
      this.subscribers.set(taskId, set);
    }
    set.add(subscriber);
    this.schedulePoll();
    return () => {
      const current = this.subscribers.get(taskId);
      if (!current?.delete(subscriber)) return;
      if (current.size === 0) this.subscribers.delete(taskId);
      if (this.subscribers.size === 0) this.stopPoll();
    };
  }

  /** The task may have changed: every subscriber of it re-reads. */
  wake(taskId: string): void {
    const set = this.subscribers.get(taskId);
    if (!set) return;
    for (const subscriber of [...set]) subscriber.wake();
  }

  /** Every subscriber re-reads (after a gap in notifications, e.g. a reconnected listener). */
  wakeAll(): void {
    for (const taskId of [...this.subscribers.keys()]) this.wake(taskId);
  }

  /** Subscribers registered now (a client that went away must not stay counted). */
  get size(): number {
    let n = 0;
    for (const set of this.subscribers.values()) n += set.size;
    return n;
  }

  close(): void {
    this.closed = true;
    this.deps.channel.off("change", this.onLocalChange);
    this.stopPoll();
    this.subscribers.clear();
  }

  // The poll timer runs only while someone watches, so an idle process does no reads.
  private schedulePoll(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.deps.pollMs);
    this.timer.unref();
  }

  private stopPoll(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    // A slow database must not pile polls up: skip a tick while the last one still runs.
    if (this.polling) return;
    this.polling = true;
    try {
      const ids = [...this.subscribers.keys()];
      for (let i = 0; i < ids.length && !this.closed; i += POLL_BATCH) {
        const rows = await this.deps.db
          .selectFrom("tasks")
          .select(["id", "status"])
          .where("id", "in", ids.slice(i, i + POLL_BATCH))
          .execute();
        for (const row of rows) {
          for (const subscriber of [...(this.subscribers.get(row.id) ?? [])]) {
            if (subscriber.status() !== row.status) subscriber.wake();
          }
        }
      }
    } catch (error) {
      if (!this.closed) this.deps.log.warn({ err: error }, "live status poll failed");
    } finally {
      this.polling = false;
    }
  }
}
