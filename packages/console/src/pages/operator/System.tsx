/** The operator's start page: GET /admin/v1/stats, read again every few seconds. */
import { useQuery } from "@tanstack/preact-query";
import { admin, type OperatorStats, type ProviderErrorRate, type WindowName } from "../../admin-api.js";
import { formatCredits, formatInstant } from "../../format.js";
import { formatAge, formatRate } from "../../operator-format.js";
import { href } from "../../routes.js";
import { Card, Empty, ErrorState, Loading } from "../../ui.js";
import "./operator.css";
import { ScrollTable } from "./ScrollTable.js";

/** How often the page re-reads the snapshot: fresh enough to watch a queue drain. */
export const STATS_REFRESH_MS = 5_000;

const WINDOWS: [WindowName, string][] = [
  ["last_hour", "Last hour"],
  ["last_day", "Last day"],
];

export function System() {
  const stats = useQuery({
    queryKey: ["admin", "stats"],
    queryFn: admin.stats,
    refetchInterval: STATS_REFRESH_MS,
    staleTime: 0,
  });
  return (
    <>
      <h1>System</h1>
      {stats.isPending ? (
        <Loading label="Loading the system's state…" />
      ) : stats.isError ? (
        <ErrorState error={stats.error} onRetry={() => stats.refetch()} />
      ) : (
        <>
          <p class="muted small">
            As of {formatInstant(stats.data.generated_at)}; refreshed every {STATS_REFRESH_MS / 1000} s.
            {stats.isRefetchError ? " The last refresh failed; showing the previous answer." : ""}
          </p>
          <Queue stats={stats.data} />
          <Outcomes stats={stats.data} />
          <Providers stats={stats.data} />
          <DisabledEndpoints stats={stats.data} />
        </>
      )}
    </>
  );
}

function Queue({ stats }: { stats: OperatorStats }) {
  return (
    <Card title={`Queue (${stats.queue.driver})`} id="queue">
      <ScrollTable label="Jobs per class">
        <thead>
          <tr>
            <th scope="col">Class</th>
            <th scope="col">Waiting</th>
            <th scope="col">Oldest waiting</th>
            <th scope="col">Running</th>
            <th scope="col">Oldest running</th>
            <th scope="col">Scheduled</th>
            <th scope="col">Next due in</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(stats.queue.classes).map(([name, c]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td>{c.waiting.count}</td>
              <td>{formatAge(c.waiting.oldest_age_seconds)}</td>
              <td>{c.running.count}</td>
              <td>{formatAge(c.running.oldest_age_seconds)}</td>
              <td>{c.scheduled.count}</td>
              <td>{formatAge(c.scheduled.next_due_in_seconds)}</td>
            </tr>
          ))}
        </tbody>
      </ScrollTable>
    </Card>
  );
}

function Outcomes({ stats }: { stats: OperatorStats }) {
  return (
    <Card title="Tasks and refunds" id="outcomes">
      <ScrollTable label="Tasks created and refunds written, per window">
        <thead>
          <tr>
            <th scope="col">Created in</th>
            <th scope="col">Tasks</th>
            <th scope="col">Queued</th>
            <th scope="col">Processing</th>
            <th scope="col">Succeeded</th>
            <th scope="col">Failed</th>
            <th scope="col">Refunds</th>
          </tr>
        </thead>
        <tbody>
          {WINDOWS.map(([w, label]) => {
            const t = stats.tasks[w];
            const r = stats.refunds[w];
            return (
              <tr key={w}>
                <th scope="row">{label}</th>
                <td>{t.created}</td>
                <td>{t.by_status.queued}</td>
                <td>{t.by_status.processing}</td>
                <td>{t.by_status.succeeded}</td>
                <td>{t.by_status.failed}</td>
                <td>
                  {r.count} ({formatCredits(r.credits)})
                </td>
              </tr>
            );
          })}
        </tbody>
      </ScrollTable>
      {WINDOWS.map(([w, label]) => {
        const reasons = Object.entries(stats.tasks[w].failure_reasons).sort((a, b) => b[1] - a[1]);
        return (
          <p key={w} class="small">
            Failure reasons, {label.toLowerCase()}:{" "}
            {reasons.length ? reasons.map(([reason, n]) => `${reason} ${n}`).join(", ") : "none"}
          </p>
        );
      })}
    </Card>
  );
}

const CIRCUIT_LABELS = { closed: "Closed", open: "Open", half_open: "Half open" } as const;

function Providers({ stats }: { stats: OperatorStats }) {
  const rate = (r: ProviderErrorRate) => formatRate(r.errors, r.finished, r.error_rate);
  return (
    <Card title="Providers, in routing order" id="providers">
      <ScrollTable label="Providers: circuit, error rates and concurrency">
        <thead>
          <tr>
            <th scope="col">Provider</th>
            <th scope="col">Circuit</th>
            <th scope="col">Errors, last hour</th>
            <th scope="col">Errors, last day</th>
            <th scope="col">In use / cap</th>
          </tr>
        </thead>
        <tbody>
          {stats.providers.data.map((p) => (
            <tr key={p.provider}>
              <th scope="row">
                {p.provider}
                {p.configured ? null : <div class="muted small">not configured (older tasks)</div>}
              </th>
              <td>
                {p.circuit ? (
                  <>
                    <span class={`badge circuit-${p.circuit.state}`}>{CIRCUIT_LABELS[p.circuit.state]}</span>
                    <div class="muted small">since {formatInstant(p.circuit.since)}</div>
                  </>
                ) : (
                  <span class="muted">not known here</span>
                )}
              </td>
              <td>{rate(p.recent.last_hour)}</td>
              <td>{rate(p.recent.last_day)}</td>
              <td>
                {p.concurrency.in_use} / {p.concurrency.limit ?? "no cap"}
              </td>
            </tr>
          ))}
        </tbody>
      </ScrollTable>
      {stats.providers.circuit_scope === null ? (
        <p class="muted small">
          This process submits nothing (an API-only process), so it knows no circuit states; the workers' are in the
          framegate_provider_circuit_open metric.
        </p>
      ) : (
        <p class="muted small">Circuit states are those of the process that answered.</p>
      )}
    </Card>
  );
}

function DisabledEndpoints({ stats }: { stats: OperatorStats }) {
  const disabled = stats.webhooks.disabled_endpoints;
  return (
    <Card title={`Disabled webhook endpoints (${disabled.count})`} id="disabled-endpoints">
      {disabled.recent.length === 0 ? (
        <Empty>No webhook endpoint is disabled.</Empty>
      ) : (
        <ScrollTable label="The most recently disabled webhook endpoints">
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">URL</th>
              <th scope="col">Disabled</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {disabled.recent.map((e) => (
              <tr key={e.id}>
                <th scope="row">
                  <a href={href(`/accounts/${encodeURIComponent(e.account_id)}`)}>{e.account_id}</a>
                </th>
                <td class="wrap">{e.url}</td>
                <td>{formatInstant(e.disabled_at)}</td>
                <td>
                  {e.reason === "failing"
                    ? `Failing since ${formatInstant(e.failing_since)} (${e.failure_count} failed attempts)`
                    : "Switched off by its account"}
                </td>
              </tr>
            ))}
          </tbody>
        </ScrollTable>
      )}
      {disabled.count > disabled.recent.length ? (
        <p class="muted small">
          Showing the {disabled.recent.length} most recently disabled of {disabled.count}.
        </p>
      ) : null}
    </Card>
  );
}
