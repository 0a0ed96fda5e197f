/**
 * Picks providers for a task in the configured order, skipping those whose circuit is open and
 * those at their concurrency cap (counted from the store, so it holds across processes).
 */
import type { Db, Executor } from "../store/db.js";
import { lockNamed } from "../store/locks.js";
import { type BreakerSnapshot, CircuitBreaker } from "./circuit-breaker.js";
import type { Provider } from "./provider.js";

export interface RouterOptions {
  chain: string[];
  providers: Map<string, Provider>;
  /** Max tasks in `processing` per provider; absent = unlimited. */
  maxConcurrency: Record<string, number | undefined>;
  breaker: { threshold: number; cooldownMs: number };
  now: () => number;
}

export type Availability = "available" | "open_circuit" | "saturated";

export class ProviderRouter {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly db: Db,
    private readonly opts: RouterOptions,
  ) {
    for (const name of opts.chain) {
      this.breakers.set(name, new CircuitBreaker(opts.breaker.threshold, opts.breaker.cooldownMs, opts.now));
    }
  }

  get chain(): readonly string[] {
    return this.opts.chain;
  }

  provider(name: string): Provider | undefined {
    return this.opts.providers.get(name);
  }

  breaker(name: string): CircuitBreaker {
    const breaker = this.breakers.get(name);
    if (!breaker) throw new Error(`no circuit breaker for provider ${name}`);
    return breaker;
  }

  /** Each configured provider's breaker as this process sees it (breakers live in memory). */
  circuits(): { provider: string; breaker: BreakerSnapshot }[] {
    return this.opts.chain.map((provider) => ({ provider, breaker: this.breaker(provider).snapshot() }));
  }

  /**
   * Whether a submit to `name` may be tried now; takes the half-open trial slot when it says yes.
   * Against the cap count the tasks processing on `name` and the queued ones whose submit to
   * `name` is in flight or of unknown outcome (submit_state.uncertain), except `taskId` itself.
   * Run it in the transaction that then marks the task uncertain: it takes the provider's named
   * lock, so two concurrent submits (other processes included) cannot both take the last slot.
   */
  async availability(name: string, opts: { taskId?: string; db?: Executor } = {}): Promise<Availability> {
    const cap = this.opts.maxConcurrency[name];
    if (cap !== undefined) {
      const db = opts.db ?? this.db;
      await lockNamed(db, `provider_slots:${name}`);
      const row = await db
        .selectFrom("tasks")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where((eb) =>
          eb.or([
            eb.and([eb("status", "=", "processing"), eb("provider", "=", name)]),
            eb.and([
              eb("status", "=", "queued"),
              eb("submit_state", "like", `%"uncertain":${JSON.stringify(name)}%`),
              ...(opts.taskId !== undefined ? [eb("id", "!=", opts.taskId)] : []),
            ]),
          ]),
        )
        .executeTakeFirstOrThrow();
      if (Number(row.n) >= cap) return "saturated";
    }
    return this.breaker(name).tryAcquire() ? "available" : "open_circuit";
  }
}
