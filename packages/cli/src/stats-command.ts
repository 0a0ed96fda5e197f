/**
 * `framegate stats`: the operators' snapshot (GET /admin/v1/stats's document) read straight from
 * the local store, like `accounts usage`: queue depth per job class, tasks and refunds over the
 * last hour and day, provider error rates, disabled webhook endpoints.
 *
 * Circuit breaker states are not in it: each server process keeps its own in memory, and this
 * command runs none (the admin API and the framegate_provider_circuit_open metric show them).
 */
import {
  type Config,
  type OperatorStats,
  operatorStats,
  providerCaps,
  type StoreHandle,
  systemClock,
} from "@framegate/server";
import { formatTable } from "./pages.js";
import type { Printable } from "./run.js";

export async function stats(ctx: { store: StoreHandle; config: Config }): Promise<Printable> {
  const report = await operatorStats({
    db: ctx.store.db,
    clock: systemClock,
    queueDriver: ctx.config.queueDriver,
    providers: ctx.config.providers,
    maxConcurrency: providerCaps(ctx.config),
  });
  return { json: report, text: formatStats(report) };
}

/** Seconds as a person reads them: 42s, 3m05s, 2h10m, 3d4h. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

const WINDOW_LABELS = { last_hour: "last hour", last_day: "last day" } as const;

export function formatStats(report: OperatorStats): string {
  const windows = Object.keys(WINDOW_LABELS) as (keyof typeof WINDOW_LABELS)[];
  const queue = formatTable(
    ["JOB CLASS", "WAITING", "OLDEST", "RUNNING", "OLDEST", "SCHEDULED", "NEXT DUE IN"],
    Object.entries(report.queue.classes).map(([name, c]) => [
      name,
      String(c.waiting.count),
      formatAge(c.waiting.oldest_age_seconds),
      String(c.running.count),
      formatAge(c.running.oldest_age_seconds),
      String(c.scheduled.count),
      formatAge(c.scheduled.next_due_in_seconds),
    ]),
  );
  const tasks = formatTable(
    ["CREATED IN", "TASKS", "QUEUED", "PROCESSING", "SUCCEEDED", "FAILED", "REFUNDS", "REFUNDED CREDITS"],
    windows.map((w) => {
      const t = report.tasks[w];
      const r = report.refunds[w];
      return [
        WINDOW_LABELS[w],
        ...[t.created, t.by_status.queued, t.by_status.processing, t.by_status.succeeded, t.by_status.failed].map(
          String,
        ),
        String(r.count),
        String(r.credits),
      ];
    }),
  );
  const reasons = windows.map((w) => {
    const entries = Object.entries(report.tasks[w].failure_reasons).sort((a, b) => b[1] - a[1]);
    const list = entries.length ? entries.map(([reason, n]) => `${reason} ${n}`).join(", ") : "none";
    return `failure reasons, ${WINDOW_LABELS[w]}: ${list}`;
  });
  const rate = (r: { finished: number; errors: number; error_rate: number | null }) =>
    r.error_rate === null ? "-" : `${r.errors}/${r.finished} (${Math.round(r.error_rate * 1000) / 10}%)`;
  const providers = formatTable(
    ["PROVIDER", "CONFIGURED", "ERRORS LAST HOUR", "ERRORS LAST DAY", "IN USE"],
    report.providers.data.map((p) => [
      p.provider,
      p.configured ? "yes" : "no",
      rate(p.recent.last_hour),
      rate(p.recent.last_day),
      `${p.concurrency.in_use}/${p.concurrency.limit ?? "-"}`,
    ]),
  );
  const disabled = report.webhooks.disabled_endpoints;
  const endpoints = disabled.recent.map(
    (e) =>
      `  ${e.id} (${e.account_id}) disabled ${e.disabled_at ?? "?"}: ${
        e.reason === "failing"
          ? `by the dispatcher, failing since ${e.failing_since} (${e.failure_count} failed attempts)`
          : "by its account"
      }`,
  );
  return [
    `framegate stats at ${report.generated_at} (queue: ${report.queue.driver})`,
    "",
    queue,
    "",
    tasks,
    ...reasons,
    "",
    providers,
    "errors: provider_error and timeout among the finished tasks (canceled aside); circuit states are per server process: GET /admin/v1/stats",
    "",
    `disabled webhook endpoints: ${disabled.count}${disabled.count > disabled.recent.length ? ` (the ${disabled.recent.length} most recent below)` : ""}`,
    ...endpoints,
  ].join("\n");
}
