/**
 * Prometheus metrics of one Framegate process (issue 16). Every process role builds one `Metrics`
 * with a registry of its own (tests start several servers in one process, so nothing is put on
 * prom-client's global registry) and hands it to the parts that record, as any other dependency.
 *
 * Label values are bounded by construction: route templates (never raw paths), the model catalog,
 * the configured providers, fixed outcome and reason enums, the job kinds of this code base.
 * Nothing free-form (an id, an error message, an upstream's wording) ever becomes a label.
 *
 * Counters count what this process did (sum them over processes in PromQL); the queue gauges are
 * read from the database when scraped, so every process reports the same shared queue; the
 * circuit gauge is this process's own breakers (they are in memory, per process).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RowCacheStats } from "../store/row-cache.js";
import type { TasksTable } from "../store/schema.js";
import { HttpDurations } from "./http-durations.js";

export const METRIC_PREFIX = "framegate_";

/** Operations recorded against providers: the Provider interface's calls, plus the result download. */
export type ProviderOperation = "submit" | "poll" | "find_submitted" | "cancel" | "release" | "download";

/**
 * How a provider call ended: `ok`; `retryable_error` (a passing failure: 5xx, timeout, network),
 * `saturated` (the upstream's concurrency limit), `final_error` (refused for good).
 */
export type ProviderOutcome = "ok" | "retryable_error" | "saturated" | "final_error";

/** Ledger movements, by what happened to the credits (not by the ledger's own entry names). */
export type CreditEntryType = "reserved" | "settled" | "released" | "refunded" | "granted" | "debited";

/** A webhook attempt's outcome: delivered, a non-2xx answer, or the transport's failure kind. */
export type WebhookOutcome =
  | "succeeded"
  | "http_error"
  | "redirect"
  | "timeout"
  | "network"
  | "blocked"
  | "too_large"
  | "error";

export type InspectionOutcome = "accepted" | "rejected" | "busy" | "error";

/** The job states the queue gauges report (queue/depth.ts says what each means). */
export type JobState = "waiting" | "scheduled" | "running";
const JOB_STATES: readonly JobState[] = ["waiting", "scheduled", "running"];

/** One row of a queue's stats (Queue.stats): jobs of one kind in one state. */
export interface JobCount {
  kind: string;
  state: JobState;
  count: number;
  /** For `waiting`: seconds since the oldest of them became due. */
  oldestAgeSeconds?: number;
}

/** The label of an unmatched request (no route): a fixed value, never the path asked for. */
export const UNMATCHED_ROUTE = "unmatched";

/** How long a scrape waits for the queue's stats before it reports the queue as unknown. */
export const QUEUE_STATS_TIMEOUT_MS = 2000;

const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TASK_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
const CALL_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Sources read at scrape time; attached once the parts they read exist (server.ts). */
export interface ScrapeSources {
  /** Jobs by kind and state, from the database (every process sees the same queue). */
  queue?: () => Promise<JobCount[]>;
  /**
   * The job classes and their kinds (for the `class` label; a kind not listed is "other"). Every
   * listed kind and class has its series, 0 when nothing is there, so dashboards see them all.
   */
  jobClasses?: Readonly<Record<string, readonly string[]>>;
  /** Providers of this process and whether their circuit is open now. */
  circuits?: () => { provider: string; open: boolean }[];
  /** Told when a scrape's queue read failed or took too long (logged by the caller). */
  onQueueStatsError?: (error: unknown) => void;
  /** SQLite: what this process's caches of polled answers have done, by cache (store/row-cache.ts). */
  answerCaches?: () => Record<string, RowCacheStats>;
}

export class Metrics {
  readonly registry = new Registry();
  private sources: ScrapeSources = {};
  /** The queue read of the scrape in progress, shared by the gauges that need it. */
  private queueRead: Promise<JobCount[] | undefined> | undefined;

  /** Recorded on every request: counted without prom-client's per-observation work (http-durations.ts). */
  readonly httpDuration = new HttpDurations(
    `${METRIC_PREFIX}http_request_duration_seconds`,
    "Time to answer an HTTP request, by route template, method and status class",
    HTTP_BUCKETS,
    this.registry,
  );

  readonly tasks = new Counter({
    name: `${METRIC_PREFIX}tasks_total`,
    help: "Generation tasks that ended, by model, provider, outcome and failure reason",
    labelNames: ["model", "provider", "outcome", "reason"] as const,
    registers: [this.registry],
  });

  readonly taskDuration = new Histogram({
    name: `${METRIC_PREFIX}task_duration_seconds`,
    help: "Task phases: queue_wait (created to accepted upstream, or to its end if never accepted) and run (accepted to its end)",
    labelNames: ["model", "provider", "phase"] as const,
    buckets: TASK_BUCKETS,
    registers: [this.registry],
  });

  readonly providerRequests = new Counter({
    name: `${METRIC_PREFIX}provider_requests_total`,
    help: "Calls to upstream providers, by provider, operation and outcome",
    labelNames: ["provider", "operation", "outcome"] as const,
    registers: [this.registry],
  });

  readonly providerDuration = new Histogram({
    name: `${METRIC_PREFIX}provider_request_duration_seconds`,
    help: "Duration of calls to upstream providers, by provider and operation",
    labelNames: ["provider", "operation"] as const,
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: `${METRIC_PREFIX}webhook_deliveries_total`,
    help: "Webhook delivery attempts, by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly webhookDuration = new Histogram({
    name: `${METRIC_PREFIX}webhook_delivery_duration_seconds`,
    help: "Duration of webhook delivery attempts (request sent to answer or failure)",
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });

  readonly credits = new Counter({
    name: `${METRIC_PREFIX}credits_total`,
    help: "Credits moved by committed ledger changes, by entry type",
    labelNames: ["entry_type"] as const,
    registers: [this.registry],
  });

  readonly uploadBytes = new Counter({
    name: `${METRIC_PREFIX}upload_bytes_total`,
    help: "Bytes of accepted files (uploads and fetched reference URLs), by file kind",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly inspectionDuration = new Histogram({
    name: `${METRIC_PREFIX}upload_inspection_duration_seconds`,
    help: "Time to inspect a received file (sniffing, decoding, probing), by file kind and outcome",
    labelNames: ["kind", "outcome"] as const,
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: `${METRIC_PREFIX}rate_limited_total`,
    help: "Requests refused with 429 rate_limited, by rate-limit bucket",
    labelNames: ["bucket"] as const,
    registers: [this.registry],
  });

  readonly backups = new Counter({
    name: `${METRIC_PREFIX}backups_total`,
    help: "Scheduled backups (BACKUP_DIR), by outcome",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly backupLastSuccess = new Gauge({
    name: `${METRIC_PREFIX}backup_last_success_timestamp_seconds`,
    help: "When the last scheduled backup succeeded (Unix time); 0 before the first",
    registers: [this.registry],
  });

  readonly scrapeErrors = new Counter({
    name: `${METRIC_PREFIX}metrics_scrape_errors_total`,
    help: "Scrapes whose database read failed or timed out (its gauges were left out), by source",
    labelNames: ["source"] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const self = this;
    new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: "Jobs in the queue (shared by every process), by job class, kind and state (waiting: due; scheduled: due later; running: claimed)",
      labelNames: ["class", "kind", "state"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await self.readQueue();
        if (!rows) return;
        for (const [jobClass, kinds] of Object.entries(self.sources.jobClasses ?? {})) {
          for (const kind of kinds) for (const state of JOB_STATES) this.set({ class: jobClass, kind, state }, 0);
        }
        for (const row of rows) {
          this.set({ class: self.classOf(row.kind), kind: row.kind, state: row.state }, row.count);
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}queue_oldest_job_age_seconds`,
      help: "Seconds since the oldest due, unclaimed job of each class became due (0 when none waits)",
      labelNames: ["class"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await self.readQueue();
        if (!rows) return;
        const oldest = new Map<string, number>(Object.keys(self.sources.jobClasses ?? {}).map((c) => [c, 0]));
        for (const row of rows) {
          const jobClass = self.classOf(row.kind);
          const age = row.state === "waiting" ? (row.oldestAgeSeconds ?? 0) : 0;
          oldest.set(jobClass, Math.max(oldest.get(jobClass) ?? 0, age));
        }
        for (const [jobClass, age] of oldest) this.set({ class: jobClass }, age);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}provider_circuit_open`,
      help: "1 while this process's circuit breaker for the provider is open or half-open, else 0",
      labelNames: ["provider"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { provider, open } of self.sources.circuits?.() ?? []) this.set({ provider }, open ? 1 : 0);
      },
    });
    // Counted by the caches themselves (a field increment per read), turned into series at scrape time.
    new Counter({
      name: `${METRIC_PREFIX}answer_cache_lookups_total`,
      help: "Polled GETs on SQLite by how they were answered: hit (kept answer), miss (read, then kept), bypass (connection busy: read only); cache generation or credits",
      labelNames: ["cache", "result"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [cache, stats] of Object.entries(self.sources.answerCaches?.() ?? {})) {
          this.inc({ cache, result: "hit" }, stats.hits);
          this.inc({ cache, result: "miss" }, stats.misses);
          this.inc({ cache, result: "bypass" }, stats.bypassed);
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}answer_cache_entries`,
      help: "Answers held by this process's caches of polled GETs (SQLite), by cache",
      labelNames: ["cache"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [cache, stats] of Object.entries(self.sources.answerCaches?.() ?? {}))
          this.set({ cache }, stats.entries);
      },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Attaches what scrapes read (the queue, the breakers); later calls add to or replace earlier ones. */
  attach(sources: ScrapeSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The text exposition of every metric, and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /** Every request passes here (the request envelope, http/envelope.ts). */
  recordHttp(route: string, method: string, status: number, seconds: number): void {
    this.httpDuration.observe(route, method, statusClass(status), seconds);
  }

  /** A task was accepted upstream: its wait in the queue is over (committed). */
  recordTaskStarted(model: string, provider: string, queueWaitSeconds: number): void {
    this.taskDuration.observe({ model, provider, phase: "queue_wait" }, Math.max(0, queueWaitSeconds));
  }

  /**
   * A terminal transition committed, with the task as it was committed: counts the task, its
   * phases, and the credits it settled or refunded (derived from the committed row, so a
   * transaction that rolled back is never counted).
   */
  recordTaskEnded(task: TasksTable): void {
    const provider = task.provider ?? "none";
    const outcome = task.status === "succeeded" ? "succeeded" : "failed";
    this.tasks.inc({ model: task.model, provider, outcome, reason: task.error_reason ?? "" });
    const ended = Date.parse(task.completed_at ?? task.updated_at);
    if (task.started_at) {
      this.taskDuration.observe(
        { model: task.model, provider, phase: "run" },
        Math.max(0, (ended - Date.parse(task.started_at)) / 1000),
      );
    } else {
      // Never accepted upstream (timed out waiting, cancelled, refused everywhere): all of it was waiting.
      this.taskDuration.observe(
        { model: task.model, provider, phase: "queue_wait" },
        Math.max(0, (ended - Date.parse(task.created_at)) / 1000),
      );
    }
    if (outcome === "succeeded") {
      this.recordCredits("settled", task.final_credits);
      this.recordCredits("released", task.reserved_credits - task.final_credits);
    } else {
      this.recordCredits("refunded", task.reserved_credits);
    }
  }

  /** Credits moved by a committed change; amounts are counted as positive numbers. */
  recordCredits(type: CreditEntryType, amount: number): void {
    if (amount > 0) this.credits.inc({ entry_type: type }, amount);
  }

  /** An operator grant (positive) or debit (negative) committed. */
  recordGrant(amount: number): void {
    if (amount > 0) this.recordCredits("granted", amount);
    else this.recordCredits("debited", -amount);
  }

  recordProviderCall(provider: string, operation: ProviderOperation, outcome: ProviderOutcome, seconds: number): void {
    this.providerRequests.inc({ provider, operation, outcome });
    this.providerDuration.observe({ provider, operation }, seconds);
  }

  recordWebhookDelivery(outcome: WebhookOutcome, seconds: number): void {
    this.webhookDeliveries.inc({ outcome });
    this.webhookDuration.observe(seconds);
  }

  recordUploadAccepted(kind: string, bytes: number): void {
    this.uploadBytes.inc({ kind }, bytes);
  }

  recordInspection(kind: string, outcome: InspectionOutcome, seconds: number): void {
    this.inspectionDuration.observe({ kind, outcome }, seconds);
  }

  recordRateLimited(bucket: string): void {
    this.rateLimited.inc({ bucket });
  }

  recordBackup(outcome: "succeeded" | "failed", at?: Date): void {
    this.backups.inc({ outcome });
    if (at) this.backupLastSuccess.set(at.getTime() / 1000);
  }

  private classOf(kind: string): string {
    for (const [jobClass, kinds] of Object.entries(this.sources.jobClasses ?? {})) {
      if (kinds.includes(kind)) return jobClass;
    }
    return "other";
  }

  /**
   * The queue's stats for the scrape in progress: both queue gauges collect at once (the registry
   * collects every metric concurrently) and share one read. A read that fails or outlasts
   * QUEUE_STATS_TIMEOUT_MS leaves the queue gauges out of this scrape, so a slow database never
   * holds /metrics; the error counter and the caller's log say why.
   */
  private readQueue(): Promise<JobCount[] | undefined> {
    const read = this.sources.queue;
    if (!read) return Promise.resolve(undefined);
    this.queueRead ??= withTimeout(read(), QUEUE_STATS_TIMEOUT_MS)
      .catch((error: unknown) => {
        this.scrapeErrors.inc({ source: "queue" });
        this.sources.onQueueStatsError?.(error);
        return undefined;
      })
      .finally(() => {
        this.queueRead = undefined;
      });
    return this.queueRead;
  }
}

export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

class StatsTimeout extends Error {
  constructor(ms: number) {
    super(`queue stats took longer than ${ms} ms`);
    this.name = "StatsTimeout";
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StatsTimeout(ms)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
