/**
 * The operators' snapshot (GET /admin/v1/stats, `framegate stats`): queue depth per job class,
 * recent task outcomes, refunds, provider health and disabled webhook endpoints, in one document.
 *
 * Each part is read by the domain that owns its tables (queue/depth.ts, generations/stats.ts,
 * ledger/refund-totals.ts, webhooks/disabled-endpoints.ts); this module only names the windows,
 * groups and derives. Everything is read from the store, so it is the same whichever process
 * answers, except the circuit breakers: they live in each process's memory, so their states are
 * this process's view (`circuit_scope: "process"`); the CLI runs none, and an API-only process
 * submits nothing, so its breakers would only ever say "closed": neither reports any.
 * Provider error rates come from task outcomes in the store, which every process shares.
 */
import { PURGE_FILE_JOB } from "../files/purge-job.js";
import { SUBMIT_JOB } from "../generations/service.js";
import { providerSlotsInUse, taskOutcomes } from "../generations/stats.js";
import { FINALIZE_JOB, POLL_JOB } from "../generations/worker.js";
import { refundTotals } from "../ledger/refund-totals.js";
import type { BreakerSnapshot } from "../providers/circuit-breaker.js";
import { type JobState, queueDepth } from "../queue/depth.js";
import type { Executor } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { type DisabledEndpoint, disabledEndpoints } from "../webhooks/disabled-endpoints.js";
import { DELIVER_JOB } from "../webhooks/events.js";

/** The windows every count covers, each ending now. */
export const STATS_WINDOWS = { last_hour: 3_600_000, last_day: 86_400_000 } as const;
export type WindowName = keyof typeof STATS_WINDOWS;
const WINDOW_NAMES = Object.keys(STATS_WINDOWS) as WindowName[];

/** The job classes and their kinds, as server.ts starts their runners. */
export const JOB_CLASSES = {
  generation: [SUBMIT_JOB, POLL_JOB, FINALIZE_JOB, PURGE_FILE_JOB],
  webhook: [DELIVER_JOB],
} as const;
export type JobClassName = keyof typeof JOB_CLASSES | "other";

/** Failure reasons that speak about the provider's health; the others are about the request (or the account). */
export const PROVIDER_ERROR_REASONS: readonly string[] = ["provider_error", "timeout"];

/** How many recently disabled webhook endpoints are listed. */
const RECENT_DISABLED = 10;

type TaskStatus = TasksTable["status"];

export interface StatsDeps {
  db: Executor;
  clock: Clock;
  queueDriver: "table" | "graphile";
  /** The configured providers, in routing order. */
  providers: readonly string[];
  /** Each provider's concurrency cap (KLING_MAX_CONCURRENCY, FAL_MAX_CONCURRENCY); absent = none. */
  maxConcurrency?: Record<string, number | undefined>;
  /** This process's circuit breakers; absent where none see calls (the CLI, `framegate api`). */
  circuits?: () => { provider: string; breaker: BreakerSnapshot }[];
}

export interface JobStateStats {
  count: number;
  /** Waiting and running: seconds since the earliest of them came due (running: waiting plus run time). */
  oldest_age_seconds?: number | null;
  /** Scheduled: seconds until the earliest of them comes due. */
  next_due_in_seconds?: number | null;
}

export type ClassStats = Record<JobState, JobStateStats>;

export interface TaskCounts {
  created: number;
  by_status: Record<TaskStatus, number>;
  /** Failed tasks by error reason (canceled included). */
  failure_reasons: Record<string, number>;
}

export interface TaskWindowStats extends TaskCounts {
  /** Per provider; `provider: null` holds the tasks no provider has taken yet. */
  by_provider: ({ provider: string | null } & TaskCounts)[];
}

export interface ProviderErrorRate {
  /** Tasks created in the window that ended, canceled ones aside. */
  finished: number;
  /** Those of them that failed for a provider reason (provider_error, timeout). */
  errors: number;
  /** errors / finished, or null when nothing finished. */
  error_rate: number | null;
}

export interface ProviderStats {
  provider: string;
  /** In this server's PROVIDERS chain (a provider only seen in older tasks is not). */
  configured: boolean;
  circuit: { state: BreakerSnapshot["state"]; since: string; consecutive_failures: number } | null;
  recent: Record<WindowName, ProviderErrorRate>;
  /**
   * Slots taken now (processing, or a submit in flight) against the provider's cap, counted from
   * the store as the router counts them, so every process sees the same; `limit` null: uncapped.
   */
  concurrency: { in_use: number; limit: number | null };
}

export interface OperatorStats {
  object: "stats";
  generated_at: string;
  windows: Record<WindowName, { start: string; end: string }>;
  queue: { driver: "table" | "graphile"; classes: Record<string, ClassStats> };
  tasks: Record<WindowName, TaskWindowStats>;
  refunds: Record<WindowName, { count: number; credits: number }>;
  providers: {
    /** `process`: the circuit states are this process's breakers; null: none known here (the CLI, an API-only process). */
    circuit_scope: "process" | null;
    data: ProviderStats[];
  };
  webhooks: { disabled_endpoints: { count: number; recent: DisabledEndpoint[] } };
}

export async function operatorStats(deps: StatsDeps): Promise<OperatorStats> {
  const now = deps.clock.now();
  const end = now.toISOString();
  const windows = Object.fromEntries(
    WINDOW_NAMES.map((name) => [name, { start: new Date(now.getTime() - STATS_WINDOWS[name]).toISOString(), end }]),
  ) as OperatorStats["windows"];
  const starts = WINDOW_NAMES.map((name) => windows[name].start);

  // Sequential: on SQLite they share one connection anyway, and on PostgreSQL four at once would
  // take four pool connections from the requests for one operator's page.
  const depth = await queueDepth(deps.db, deps.queueDriver, now);
  const outcomes = await taskOutcomes(deps.db, starts, end);
  const refunds = await refundTotals(deps.db, starts, end);
  const disabled = await disabledEndpoints(deps.db, RECENT_DISABLED);
  const slots = await providerSlotsInUse(deps.db);

  return {
    object: "stats",
    generated_at: end,
    windows,
    queue: { driver: deps.queueDriver, classes: classStats(depth.rows, depth.at) },
    tasks: Object.fromEntries(WINDOW_NAMES.map((name, i) => [name, taskWindow(outcomes, i)])) as OperatorStats["tasks"],
    refunds: Object.fromEntries(WINDOW_NAMES.map((name, i) => [name, refunds[i]])) as OperatorStats["refunds"],
    providers: {
      circuit_scope: deps.circuits ? "process" : null,
      data: providerStats(deps, outcomes, slots),
    },
    webhooks: { disabled_endpoints: disabled },
  };
}

function classOf(kind: string): JobClassName {
  for (const [name, kinds] of Object.entries(JOB_CLASSES) as [keyof typeof JOB_CLASSES, readonly string[]][]) {
    if (kinds.includes(kind)) return name;
  }
  return "other";
}

const seconds = (ms: number) => Math.round(Math.max(0, ms)) / 1000;

/** Every class (each state present, zero when empty); an `other` class only when unknown kinds are queued. */
function classStats(rows: Awaited<ReturnType<typeof queueDepth>>["rows"], at: Date): Record<string, ClassStats> {
  const empty = (): ClassStats => ({
    waiting: { count: 0, oldest_age_seconds: null },
    running: { count: 0, oldest_age_seconds: null },
    scheduled: { count: 0, next_due_in_seconds: null },
  });
  const earliest = new Map<string, number>();
  const classes: Record<string, ClassStats> = Object.fromEntries(Object.keys(JOB_CLASSES).map((c) => [c, empty()]));
  for (const row of rows) {
    const name = classOf(row.kind);
    classes[name] ??= empty();
    const stats = (classes[name] as ClassStats)[row.state];
    stats.count += row.count;
    const key = `${name}:${row.state}`;
    const first = Math.min(earliest.get(key) ?? Number.POSITIVE_INFINITY, row.earliestRunAt.getTime());
    earliest.set(key, first);
    if (row.state === "scheduled") stats.next_due_in_seconds = seconds(first - at.getTime());
    else stats.oldest_age_seconds = seconds(at.getTime() - first);
  }
  return classes;
}

function zeroCounts(): TaskCounts {
  return { created: 0, by_status: { queued: 0, processing: 0, succeeded: 0, failed: 0 }, failure_reasons: {} };
}

function addCount(into: TaskCounts, status: TaskStatus, reason: string | null, n: number) {
  into.created += n;
  into.by_status[status] += n;
  if (status === "failed") {
    const key = reason ?? "unknown";
    into.failure_reasons[key] = (into.failure_reasons[key] ?? 0) + n;
  }
}

function taskWindow(rows: Awaited<ReturnType<typeof taskOutcomes>>, window: number): TaskWindowStats {
  const total = zeroCounts();
  const byProvider = new Map<string | null, TaskCounts>();
  for (const row of rows) {
    const n = row.counts[window] ?? 0;
    if (n === 0) continue;
    addCount(total, row.status, row.reason, n);
    const provider = byProvider.get(row.provider) ?? zeroCounts();
    byProvider.set(row.provider, provider);
    addCount(provider, row.status, row.reason, n);
  }
  const by_provider = [...byProvider]
    .map(([provider, counts]) => ({ provider, ...counts }))
    .sort((a, b) => b.created - a.created || String(a.provider).localeCompare(String(b.provider)));
  return { ...total, by_provider };
}

/** Configured providers first (routing order), then any other provider the windows' tasks name. */
function providerStats(
  deps: StatsDeps,
  rows: Awaited<ReturnType<typeof taskOutcomes>>,
  slots: Map<string, number>,
): ProviderStats[] {
  const circuits = new Map((deps.circuits?.() ?? []).map((c) => [c.provider, c.breaker]));
  const seen = rows.flatMap((r) => (r.provider !== null && !deps.providers.includes(r.provider) ? [r.provider] : []));
  const busy = [...slots.keys()].filter((p) => !deps.providers.includes(p));
  const names = [...deps.providers, ...[...new Set([...seen, ...busy])].sort()];
  return names.map((provider) => {
    const breaker = circuits.get(provider);
    const recent = Object.fromEntries(
      WINDOW_NAMES.map((name, i) => {
        let finished = 0;
        let errors = 0;
        for (const row of rows) {
          if (row.provider !== provider) continue;
          const n = row.counts[i] ?? 0;
          if (row.status === "succeeded") finished += n;
          if (row.status === "failed" && row.reason !== "canceled") {
            finished += n;
            if (row.reason !== null && PROVIDER_ERROR_REASONS.includes(row.reason)) errors += n;
          }
        }
        return [
          name,
          { finished, errors, error_rate: finished ? Math.round((errors / finished) * 10_000) / 10_000 : null },
        ];
      }),
    ) as ProviderStats["recent"];
    return {
      provider,
      configured: deps.providers.includes(provider),
      circuit: breaker
        ? {
            state: breaker.state,
            since: new Date(breaker.since).toISOString(),
            consecutive_failures: breaker.consecutiveFailures,
          }
        : null,
      recent,
      concurrency: { in_use: slots.get(provider) ?? 0, limit: deps.maxConcurrency?.[provider] ?? null },
    };
  });
}
