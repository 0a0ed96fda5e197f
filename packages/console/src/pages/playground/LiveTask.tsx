/**
 * A task just created in the playground, followed as it changes: through the SDK's live status
 * stream (Server-Sent Events, resumed by the SDK after a dropped connection), and, when the stream
 * cannot be had (refused, or failing more than a couple of times in a row), through waitFor, which
 * long-polls the task. The outcome is the generation page's: the video, or the error and refund.
 */
import type { Task } from "@framegate/sdk";
import { useQueryClient } from "@tanstack/preact-query";
import { useEffect, useState } from "preact/hooks";
import { client, errorMessage } from "../../api.js";
import { href } from "../../routes.js";
import { ErrorState, StatusBadge } from "../../ui.js";
import { Outcome } from "../GenerationDetail.js";

/** How the page learns of changes; shown so a stalled stream is not mistaken for a stalled task. */
type Source = "stream" | "polling";

/** Reconnects the stream may spend before the page falls back to polling. */
const STREAM_RECONNECTS = 2;

const isTerminal = (task: Task) => task.status === "succeeded" || task.status === "failed";

export function LiveTask({ created }: { created: Task }) {
  const queryClient = useQueryClient();
  const [task, setTask] = useState(created);
  const [source, setSource] = useState<Source>("stream");
  const [streamProblem, setStreamProblem] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    const { signal } = abort;
    let last = created;
    const seen = (update: Task) => {
      last = update;
      if (!signal.aborted) setTask(update);
    };
    const follow = async () => {
      try {
        for await (const update of client.generations.stream(created.id, {
          signal,
          maxReconnects: STREAM_RECONNECTS,
        })) {
          seen(update);
        }
        if (isTerminal(last)) return;
        // The stream ended without a final state the page saw (it had already ended): ask once more.
        throw new Error("The status stream ended early.");
      } catch (error) {
        if (signal.aborted) return;
        setSource("polling");
        setStreamProblem(errorMessage(error));
      }
      try {
        await client.generations.waitFor(created.id, { signal, onUpdate: seen });
      } catch (error) {
        if (!signal.aborted) setFailure(error);
      }
    };
    setFailure(null);
    void follow();
    return () => abort.abort();
  }, [created, attempt]);

  // The balance changes when the task settles (a refund on failure), and the lists gain it.
  const terminal = isTerminal(task);
  useEffect(() => {
    if (!terminal) return;
    void queryClient.invalidateQueries({ queryKey: ["credits"] });
    void queryClient.invalidateQueries({ queryKey: ["generations"] });
  }, [terminal, queryClient]);

  return (
    <section class="card live-task" aria-labelledby="live-task-heading">
      <h2 id="live-task-heading" class="task-title">
        <span>{task.id}</span> <StatusBadge task={task} />
      </h2>
      <p role="status" class="live-status">
        {statusSentence(task)}
      </p>
      <p class="muted small">
        {source === "stream"
          ? terminal
            ? "Followed live through the status stream."
            : "Following the status stream: this updates by itself."
          : `The status stream was not available (${streamProblem}); checking the task by polling instead.`}
      </p>
      {failure ? <ErrorState error={failure} onRetry={() => setAttempt((n) => n + 1)} /> : null}
      {terminal ? <Outcome task={task} /> : null}
      <p>
        <a href={href(`/generations/${encodeURIComponent(task.id)}`)}>Open the generation's page</a>
      </p>
    </section>
  );
}

function statusSentence(task: Task): string {
  switch (task.status) {
    case "queued":
      return "Queued: waiting for a worker.";
    case "processing":
      return "Processing: the video is being generated.";
    case "succeeded":
      return "Succeeded: the video is ready.";
    case "failed":
      return task.error.reason === "canceled" ? "Canceled." : "Failed.";
  }
}
