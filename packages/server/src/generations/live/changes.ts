/**
 * Where a task's status changes are announced inside one process. Whoever commits a status
 * change (the worker's submit, a terminal transition, a cancel) calls publishTaskChange after
 * the commit; whoever follows tasks live (SSE streams, held `Prefer: wait` requests) listens
 * through the process's TaskWatcher (watcher.ts), which also hears other processes' changes
 * (PostgreSQL NOTIFY, pg-channel.ts) and polls as a backstop.
 *
 * The channel is keyed by the store handle rather than being a module-wide global: two servers
 * started in one process (tests) each hear only their own database's changes.
 */
import { EventEmitter } from "node:events";

const channels = new WeakMap<object, EventEmitter>();

/** The in-process channel of one store handle; emits "change" with a task id. */
export function taskChangeChannel(db: object): EventEmitter {
  let channel = channels.get(db);
  if (!channel) {
    channel = new EventEmitter();
    // One listener per watcher and per NOTIFY announcer, never one per client.
    channel.setMaxListeners(16);
    channels.set(db, channel);
  }
  return channel;
}

/** Call after the transaction that changed the task's status has committed (never inside it). */
export function publishTaskChange(db: object, taskId: string): void {
  channels.get(db)?.emit("change", taskId);
}
