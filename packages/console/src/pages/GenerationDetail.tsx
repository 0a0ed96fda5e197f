/**
 * One generation: status, params, references, timeline, the video with its poster and a download
 * link, the error with its refund, and a cancel button while it can still be canceled. A pending
 * task is re-read every few seconds until it settles.
 */
import { NotFoundError, type Task } from "@framegate/sdk";
import { useMutation, useQuery, useQueryClient } from "@tanstack/preact-query";
import { Fragment } from "preact";
import { client, errorMessage } from "../api.js";
import { formatBytes, formatCredits, formatElapsed, formatInstant, isCancelable } from "../format.js";
import { href } from "../routes.js";
import { Card, Empty, ErrorState, Loading, StatusBadge } from "../ui.js";

const PENDING_REFRESH_MS = 4000;

export function GenerationDetail({ id }: { id: string }) {
  const queryClient = useQueryClient();
  const task = useQuery({
    queryKey: ["generation", id],
    queryFn: () => client.generations.retrieve(id),
    refetchInterval: (query) =>
      query.state.data && isCancelable(query.state.data.status) ? PENDING_REFRESH_MS : false,
  });
  const cancel = useMutation({
    mutationFn: () => client.generations.cancel(id),
    onSuccess: (updated) => {
      queryClient.setQueryData(["generation", id], updated);
      void queryClient.invalidateQueries({ queryKey: ["generations"] });
      void queryClient.invalidateQueries({ queryKey: ["credits"] });
    },
  });

  if (task.isPending) return <Loading label="Loading the generation…" />;
  if (task.isError) {
    return (
      <>
        <h1>Generation</h1>
        {task.error instanceof NotFoundError ? (
          <Empty>
            No generation <code>{id}</code> in this account. <a href={href("/generations")}>Back to the list</a>
          </Empty>
        ) : (
          <ErrorState error={task.error} onRetry={() => task.refetch()} />
        )}
      </>
    );
  }

  const t = task.data;
  return (
    <>
      <p>
        <a href={href("/generations")}>← Generations</a>
      </p>
      <h1 class="task-title">
        <span>{t.id}</span> <StatusBadge task={t} />
      </h1>
      {isCancelable(t.status) ? (
        <div class="actions">
          <button type="button" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            {cancel.isPending ? "Canceling…" : "Cancel generation"}
          </button>
          {cancel.isError ? (
            <p class="notice error" role="alert">
              Cancel failed: {errorMessage(cancel.error)}
            </p>
          ) : null}
        </div>
      ) : null}
      <Outcome task={t} />
      <div class="grid">
        <Card title="Details" id="details-heading">
          <dl>
            <dt>Model</dt>
            <dd>{t.model}</dd>
            <dt>Credits reserved</dt>
            <dd>{formatCredits(t.reserved_credits)}</dd>
            <dt>Credits charged</dt>
            <dd>
              {t.status === "succeeded"
                ? formatCredits(t.final_credits)
                : t.status === "failed"
                  ? "None (refunded)"
                  : "Pending"}
            </dd>
            <dt>Client request ID</dt>
            <dd>{t.client_request_id ?? "—"}</dd>
            {Object.entries(t.params).map(([key, value]) => (
              <Fragment key={key}>
                <dt>{key}</dt>
                <dd class="wrap">{value}</dd>
              </Fragment>
            ))}
          </dl>
        </Card>
        <Card title="Timeline" id="timeline-heading">
          <ol class="timeline">
            <li>
              Created <time dateTime={t.created_at}>{formatInstant(t.created_at)}</time>
            </li>
            <li>
              Started {t.started_at ? <time dateTime={t.started_at}>{formatInstant(t.started_at)}</time> : "not yet"}
            </li>
            <li>
              {t.status === "failed" ? "Ended" : "Completed"}{" "}
              {t.completed_at ? <time dateTime={t.completed_at}>{formatInstant(t.completed_at)}</time> : "not yet"}
            </li>
            <li>Took {formatElapsed(t.created_at, t.completed_at)}</li>
          </ol>
        </Card>
      </div>
      <Card title="References" id="references-heading">
        {t.references.length === 0 ? (
          <Empty>This generation has no reference media.</Empty>
        ) : (
          <ul class="references">
            {t.references.map((r) => (
              <li key={r.file_id}>
                {r.kind === "image" && r.url ? <img src={r.url} alt={r.name ?? r.file_id} loading="lazy" /> : null}
                <span>
                  {r.url ? <a href={r.url}>{r.name ?? r.file_id}</a> : (r.name ?? r.file_id)} ({r.kind}, {r.mime_type}
                  {r.width && r.height ? `, ${r.width}×${r.height}` : ""})
                  {r.url ? null : <span class="muted"> expired</span>}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}

/**
 * The result (video, poster, download) or the error with what was refunded, or where it stands.
 * The playground shows a settled task's outcome with it too.
 */
export function Outcome({ task }: { task: Task }) {
  if (task.status === "succeeded") {
    const media = task.result.media[0];
    return (
      <Card title="Video" id="video-heading">
        {/* biome-ignore lint/a11y/useMediaCaption: generated videos come with no caption track to offer (the API has none). */}
        <video
          controls
          preload="metadata"
          src={task.result.primary_url}
          poster={media?.poster_url ?? undefined}
          width={media?.width}
          height={media?.height}
          aria-label={`Video of ${task.id}`}
        />
        <p>
          <a href={task.result.primary_url} download>
            Download video
          </a>
          {media
            ? ` (${media.width}×${media.height}, ${media.duration_seconds} s, ${formatBytes(media.size_bytes)})`
            : ""}
          . Links expire {formatInstant(task.result.expires_at)}.
        </p>
      </Card>
    );
  }
  if (task.status === "failed") {
    return (
      <div class="notice error" role="status">
        <h2>{task.error.reason === "canceled" ? "Canceled" : "Generation failed"}</h2>
        <p>
          {task.error.message} <span class="muted">({task.error.reason})</span>
        </p>
        <p>{formatCredits(task.reserved_credits)} refunded to the balance.</p>
      </div>
    );
  }
  return (
    <p class="notice" role="status">
      {task.status === "queued" ? "Waiting in the queue." : "The video is being generated."} This page updates by
      itself.
    </p>
  );
}
