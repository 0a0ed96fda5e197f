/**
 * Live status for clients: held `Prefer: wait` answers and SSE streams, both bounded in number,
 * both fed by the process's TaskWatcher, and both let go at shutdown (a held request is answered
 * with the task's current state, a stream is ended) so that closing the server never waits out
 * a client's wait.
 */
import type { Task } from "@framegate/contract";
import type { Logger } from "pino";
import type { TaskWatcher } from "./watcher.js";

/** Event ids of a task's stream: one per status, in the order a task can pass them. */
export const STATUS_SEQUENCE = { queued: 1, processing: 2, succeeded: 3, failed: 3 } as const;
export const TERMINAL_SEQUENCE = 3;
export const sequenceOf = (task: Pick<Task, "status">): number => STATUS_SEQUENCE[task.status];
export const isTerminal = (task: Pick<Task, "status">): boolean => sequenceOf(task) === TERMINAL_SEQUENCE;

export interface LiveStatusLimits {
  /** Requests held for `Prefer: wait` at once in this process. */
  maxHeldRequests: number;
  /** SSE streams open at once in this process, in total and per account. */
  maxStreams: number;
  maxStreamsPerAccount: number;
  /** Interval of the SSE heartbeat comment. */
  heartbeatMs: number;
}

/** Reads the task as the client may see it (tenant-scoped; throws not_found). */
export type ReadTask = () => Promise<Task>;

/** One client following one task: it hears of every state newer than the last one it was given. */
export class TaskFollower {
  private last: Task;
  private reading = false;
  private again = false;
  private stopped = false;
  private readonly unwatch: () => void;

  constructor(
    watcher: TaskWatcher,
    first: Task,
    private readonly read: ReadTask,
    private readonly onNewer: (task: Task) => void,
    private readonly log: Logger,
  ) {
    this.last = first;
    this.unwatch = watcher.watch(first.id, { status: () => this.last.status, wake: () => this.wake() });
    // A change between the first read and the registration above would be heard only by the
    // poll: read once more now that nothing can be missed.
    this.wake();
  }

  get task(): Task {
    return this.last;
  }

  stop(): void {
    this.stopped = true;
    this.unwatch();
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.refresh();
  }

  private async refresh(): Promise<void> {
    this.reading = true;
    try {
      do {
        this.again = false;
        const task = await this.read();
        if (this.stopped) return;
        if (sequenceOf(task) > sequenceOf(this.last)) {
          this.last = task;
          this.onNewer(task);
        }
      } while (this.again && !this.stopped);
    } catch (error) {
      // The next wake or poll tries again; a client is never failed for one read.
      if (!this.stopped) this.log.warn({ err: error, taskId: this.last.id }, "live status read failed");
    } finally {
      this.reading = false;
    }
  }
}

export class LiveStatus {
  private held = 0;
  private streams = 0;
  private readonly streamsPerAccount = new Map<string, number>();
  /** What to run at shutdown for every held request and open stream. */
  private readonly releases = new Set<() => void>();
  private closed = false;

  constructor(
    readonly watcher: TaskWatcher,
    readonly limits: LiveStatusLimits,
    private readonly log: Logger,
  ) {}

  /** True once close() ran: answers let go now should not keep their connection (prefer.ts). */
  get closing(): boolean {
    return this.closed;
  }

  /** How many of each are open now (tests check that departed clients are not still counted). */
  stats(): { held: number; streams: number; watchers: number } {
    return { held: this.held, streams: this.streams, watchers: this.watcher.size };
  }

  /**
   * Holds until the task is terminal, `seconds` pass, the client goes away or the server shuts
   * down, then gives the task's latest state. `applied: false` when the wait was refused (over
   * MAX_HELD_REQUESTS, or shutting down): the answer is then the state given, at once.
   */
  async waitFor(
    first: Task,
    seconds: number,
    read: ReadTask,
    signal?: AbortSignal,
  ): Promise<{ task: Task; applied: boolean }> {
    if (this.closed || this.held >= this.limits.maxHeldRequests) return { task: first, applied: false };
    if (isTerminal(first) || seconds === 0) return { task: first, applied: true };
    if (signal?.aborted) return { task: first, applied: false };
    this.held++;
    let follower: TaskFollower | undefined;
    let release = () => {};
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve) => {
        release = resolve;
        this.releases.add(release);
        signal?.addEventListener("abort", release, { once: true });
        timer = setTimeout(release, seconds * 1000);
        follower = new TaskFollower(this.watcher, first, read, (task) => isTerminal(task) && resolve(), this.log);
      });
    } finally {
      this.held--;
      clearTimeout(timer);
      this.releases.delete(release);
      signal?.removeEventListener("abort", release);
      follower?.stop();
    }
    const seen = follower?.task ?? first;
    if (isTerminal(seen) || signal?.aborted) return { task: seen, applied: true };
    // Time is up (or the server is closing): answer with the state as stored now, not as last
    // heard, in case a notice is still on its way.
    const now = await read().catch(() => seen);
    return { task: sequenceOf(now) >= sequenceOf(seen) ? now : seen, applied: true };
  }

  /**
   * Counts a new stream for the account, or says why not. The returned function gives the place
   * back; `onShutdown` is called when the server closes while the stream is open.
   */
  openStream(
    accountId: string,
    onShutdown: () => void,
  ): { ok: true; done: () => void } | { ok: false; reason: "closed" | "total" | "account" } {
    if (this.closed) return { ok: false, reason: "closed" };
    if (this.streams >= this.limits.maxStreams) return { ok: false, reason: "total" };
    const mine = this.streamsPerAccount.get(accountId) ?? 0;
    if (mine >= this.limits.maxStreamsPerAccount) return { ok: false, reason: "account" };
    this.streams++;
    this.streamsPerAccount.set(accountId, mine + 1);
    this.releases.add(onShutdown);
    let done = false;
    return {
      ok: true,
      done: () => {
        if (done) return;
        done = true;
        this.releases.delete(onShutdown);
        this.streams--;
        const left = (this.streamsPerAccount.get(accountId) ?? 1) - 1;
        if (left > 0) this.streamsPerAccount.set(accountId, left);
        else this.streamsPerAccount.delete(accountId);
      },
    };
  }

  /** Answers every held request and ends every stream now; later ones are not held. */
  close(): void {
    this.closed = true;
    for (const release of [...this.releases]) release();
    this.releases.clear();
  }
}
