/** Small shared pieces: loading, error and empty states, and the status badge. */
import type { Task } from "@framegate/sdk";
import type { ComponentChildren } from "preact";
import { errorMessage } from "./api.js";
import { statusLabel } from "./format.js";

export function Loading({ label }: { label: string }) {
  return (
    <p class="muted" role="status">
      {label}
    </p>
  );
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  return (
    <div class="notice error" role="alert">
      <p>{errorMessage(error)}</p>
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="notice empty">{children}</p>;
}

export function StatusBadge({ task }: { task: Pick<Task, "status" | "error"> }) {
  const label = statusLabel(task.status, task.error?.reason);
  return <span class={`badge badge-${label.toLowerCase()}`}>{label}</span>;
}

export function Card({ title, children, id }: { title: string; children: ComponentChildren; id: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}
