/**
 * One breaker per provider, in memory: it opens after `threshold` consecutive retryable failures,
 * lets one trial call through after `cooldownMs` (half-open), and closes on a success.
 */
export type BreakerState = "closed" | "open" | "half_open";

/** What an operator sees of a breaker (GET /admin/v1/stats); times in ms since the epoch. */
export interface BreakerSnapshot {
  state: BreakerState;
  /** When it entered this state: closed since it last closed (or was created), open since it opened, half-open since the cooldown ended. */
  since: number;
  /** Retryable failures in a row since the last success. */
  consecutiveFailures: number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;
  /** When it last closed; the creation time until it first opens and closes again. */
  private closedAt: number;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number,
  ) {
    this.closedAt = now();
  }

  snapshot(): BreakerSnapshot {
    const state = this.state();
    const since =
      this.openedAt === undefined
        ? this.closedAt
        : state === "half_open"
          ? this.openedAt + this.cooldownMs
          : this.openedAt;
    return { state, since, consecutiveFailures: this.failures };
  }

  state(): BreakerState {
    if (this.openedAt === undefined) return "closed";
    return this.now() - this.openedAt >= this.cooldownMs ? "half_open" : "open";
  }

  /** Whether a call may go through now; in half-open state only one trial at a time. */
  tryAcquire(): boolean {
    const state = this.state();
    if (state === "closed") return true;
    if (state === "open" || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  recordSuccess(): void {
    if (this.openedAt !== undefined) this.closedAt = this.now();
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  recordFailure(): void {
    this.failures++;
    if (this.trialInFlight || this.failures >= this.threshold) this.openedAt = this.now();
    this.trialInFlight = false;
  }

  /** A call that ended without saying anything about the provider's health (e.g. saturation). */
  recordNeutral(): void {
    this.trialInFlight = false;
  }
}
