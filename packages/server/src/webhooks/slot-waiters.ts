/**
 * This process's side of the delivery slots (inflight.ts): the slots it holds right now, and the
 * deliveries that found none free and are parked until one is given back.
 *
 * Both are only hints; the store stays the authority on the caps. What this process holds is a
 * lower bound of what is held everywhere, so "we already hold the endpoint's whole share" means
 * no slot can be free, and a delivery can park without asking the store. A parked delivery's job
 * is rescheduled a while ahead (the dispatcher's safety net); when this process gives a slot back,
 * the longest-parked delivery that may use it is made due at once instead of every parked
 * delivery retrying every second or so, which under a backlog was most of the webhook work.
 * A wake that finds its job gone or already running costs one no-op update; a delivery parked in
 * another process is not woken from here and runs on its safety net.
 */

export interface SlotWaiter {
  /** The delivery's job key (Queue.runNow). */
  key: string;
  endpointId: string;
  /** Unknown when it parked before its endpoint was read (this process held the endpoint's share). */
  accountId: string | undefined;
}

/**
 * A parked delivery is forgotten this long after it parked. Its safety net has long come due by
 * then; if it ran in another process (several workers), nothing here would ever remove it, and
 * the list would grow for as long as the process lives.
 */
export const PARKED_FORGOTTEN_AFTER_MS = 60_000;

export class SlotWaiters {
  /** Every parked delivery, oldest first (a Map keeps insertion order), with when it parked. */
  private readonly byKey = new Map<string, SlotWaiter & { parkedAt: number }>();
  /** The same, per endpoint, oldest first. */
  private readonly byEndpoint = new Map<string, Map<string, SlotWaiter>>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Parks a delivery (again at the back if it was parked before). */
  park(waiter: SlotWaiter): void {
    this.remove(waiter.key);
    const now = this.now();
    // Oldest first: stop at the first one still recent.
    for (const [key, parked] of this.byKey) {
      if (now - parked.parkedAt < PARKED_FORGOTTEN_AFTER_MS) break;
      this.remove(key);
    }
    this.byKey.set(waiter.key, { ...waiter, parkedAt: now });
    let forEndpoint = this.byEndpoint.get(waiter.endpointId);
    if (!forEndpoint) {
      forEndpoint = new Map();
      this.byEndpoint.set(waiter.endpointId, forEndpoint);
    }
    forEndpoint.set(waiter.key, waiter);
  }

  /** Forgets a delivery: it runs now (woken, or its safety net came due). */
  remove(key: string): void {
    const waiter = this.byKey.get(key);
    if (!waiter) return;
    this.byKey.delete(key);
    const forEndpoint = this.byEndpoint.get(waiter.endpointId);
    forEndpoint?.delete(key);
    if (forEndpoint?.size === 0) this.byEndpoint.delete(waiter.endpointId);
  }

  /**
   * Takes the delivery a slot just given back by (account, endpoint) should go to: the oldest one
   * to the same endpoint, else the oldest one to another endpoint of the account whose own share
   * this process does not already hold (`endpointFull`).
   */
  takeNext(
    accountId: string,
    endpointId: string,
    endpointFull: (endpointId: string) => boolean,
  ): SlotWaiter | undefined {
    let next: SlotWaiter | undefined = this.byEndpoint.get(endpointId)?.values().next().value;
    if (!next) {
      for (const waiter of this.byKey.values()) {
        if (waiter.accountId === accountId && !endpointFull(waiter.endpointId)) {
          next = waiter;
          break;
        }
      }
    }
    if (next) this.remove(next.key);
    return next;
  }
}

/** Counts of the delivery slots this process holds, per endpoint and per account. */
export class HeldSlots {
  private readonly endpoints = new Map<string, number>();
  private readonly accounts = new Map<string, number>();

  byEndpoint(endpointId: string): number {
    return this.endpoints.get(endpointId) ?? 0;
  }

  byAccount(accountId: string): number {
    return this.accounts.get(accountId) ?? 0;
  }

  take(accountId: string, endpointId: string): void {
    bump(this.endpoints, endpointId, 1);
    bump(this.accounts, accountId, 1);
  }

  give(accountId: string, endpointId: string): void {
    bump(this.endpoints, endpointId, -1);
    bump(this.accounts, accountId, -1);
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
