/**
 * One task for the operator (GET /admin/v1/tasks/{id}): the public task plus the provider, the
 * upstream task id, the provider's own failure detail and upstream details, and its account.
 */
import { useQuery } from "@tanstack/preact-query";
import { admin } from "../../admin-api.js";
import { formatCredits, formatElapsed, formatInstant, isCancelable } from "../../format.js";
import { formatJson } from "../../operator-format.js";
import { href } from "../../routes.js";
import { Card, ErrorState, Loading, StatusBadge } from "../../ui.js";
import "./operator.css";

/** A task still running is read again this often, so its page follows it to the end. */
const PENDING_REFRESH_MS = 4_000;

export function TaskDetail({ id }: { id: string }) {
  const item = useQuery({
    queryKey: ["admin", "task", id],
    queryFn: () => admin.tasks.get(id),
    refetchInterval: (q) => (q.state.data && isCancelable(q.state.data.task.status) ? PENDING_REFRESH_MS : false),
  });
  if (item.isPending) return <Loading label="Loading the task…" />;
  if (item.isError) {
    return (
      <>
        <h1>Task</h1>
        <ErrorState error={item.error} onRetry={() => item.refetch()} />
        <p>
          <a href={href("/tasks")}>All tasks</a>
        </p>
      </>
    );
  }
  const { task, account_id, provider, upstream_id, upstream_details, submit_state, error_detail } = item.data;
  return (
    <>
      <div class="task-title">
        <h1>{task.id}</h1>
        <StatusBadge task={task} />
      </div>
      <p>
        <a href={href(`/accounts/${encodeURIComponent(account_id)}`)}>Account {account_id}</a> ·{" "}
        <a href={href("/tasks", { account_id })}>Its tasks</a>
      </p>
      <div class="grid">
        <Card title="Task" id="task-facts">
          <dl>
            <dt>Model</dt>
            <dd>{task.model}</dd>
            <dt>Credits</dt>
            <dd>
              {formatCredits(task.reserved_credits)} reserved, {formatCredits(task.final_credits)} final
            </dd>
            <dt>Created</dt>
            <dd>{formatInstant(task.created_at)}</dd>
            <dt>Started</dt>
            <dd>{formatInstant(task.started_at)}</dd>
            <dt>Completed</dt>
            <dd>
              {formatInstant(task.completed_at)}
              {task.completed_at ? ` (${formatElapsed(task.created_at, task.completed_at)} after creation)` : ""}
            </dd>
            <dt>Client request ID</dt>
            <dd class="wrap">{task.client_request_id ?? "—"}</dd>
            <dt>Params</dt>
            <dd class="wrap">
              {Object.entries(task.params)
                .map(([k, v]) => `${k}=${v}`)
                .join(", ") || "—"}
            </dd>
          </dl>
        </Card>
        <Card title="Upstream" id="task-upstream">
          <dl>
            <dt>Provider</dt>
            <dd>{provider ?? "none yet"}</dd>
            <dt>Upstream ID</dt>
            <dd class="wrap">{upstream_id ?? "—"}</dd>
          </dl>
          <h3 class="small">Upstream details</h3>
          <pre class="json">{formatJson(upstream_details)}</pre>
          <h3 class="small">Submit state</h3>
          <pre class="json">{formatJson(submit_state)}</pre>
        </Card>
      </div>
      {task.error ? (
        <Card title="Failure" id="task-failure">
          <dl>
            <dt>Reason</dt>
            <dd>{task.error.reason}</dd>
            <dt>Message</dt>
            <dd class="wrap">{task.error.message}</dd>
            <dt>Provider's detail</dt>
            <dd class="wrap">{error_detail ?? "—"}</dd>
            <dt>Refund</dt>
            <dd>{formatCredits(task.reserved_credits - task.final_credits)} given back</dd>
          </dl>
        </Card>
      ) : null}
      {task.result ? (
        <Card title="Result" id="task-result">
          <p>
            <a href={task.result.primary_url}>Open the video</a> (link expires {formatInstant(task.result.expires_at)})
          </p>
        </Card>
      ) : null}
    </>
  );
}
