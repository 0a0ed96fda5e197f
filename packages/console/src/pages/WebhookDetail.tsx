/**
 * One webhook endpoint: why it is disabled (if it is), an edit form (name, URL, events), enable or
 * pause, rotate the signing secret (the new one shown once), send a test event, the delivery log
 * with "Load more" and a redeliver button per event, and delete behind a confirmation. After a
 * test or a redelivery the log re-reads itself for a minute, so the attempt shows up unasked.
 */
import { NotFoundError, type WebhookDelivery, type WebhookEndpoint, type WebhookEventType } from "@framegate/sdk";
import { useMutation, useQuery, useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { client, errorMessage } from "../api.js";
import { formatInstant } from "../format.js";
import { LoadMore, loadedItems, useCursorPages } from "../paging.js";
import { navigate } from "../router.js";
import { href } from "../routes.js";
import { Card, Empty, ErrorState, Loading } from "../ui.js";
import { disabledExplanation } from "../webhook-status.js";
import { ConfirmAction, MissingScope, SecretOnce, useSession } from "./account-ui.js";
import { EventChoices } from "./Webhooks.js";
import "./account.css";

const DELIVERY_PAGE_SIZE = 20;
const WATCH_MS = 60_000;
const WATCH_INTERVAL_MS = 2_000;

export function WebhookDetail({ id }: { id: string }) {
  const session = useSession();
  if (!session?.scopes.includes("webhooks:manage")) {
    return (
      <>
        <h1>Webhook endpoint</h1>
        <MissingScope scope="webhooks:manage" what="read or change webhook endpoints" />
      </>
    );
  }
  return <Endpoint id={id} />;
}

function Endpoint({ id }: { id: string }) {
  const queryClient = useQueryClient();
  const endpoint = useQuery({ queryKey: ["webhooks", "endpoint", id], queryFn: () => client.webhooks.retrieve(id) });
  // Until when the delivery log re-reads itself (set by a test event or a redelivery).
  const [watchUntil, setWatchUntil] = useState(0);
  const watch = () => setWatchUntil(Date.now() + WATCH_MS);
  const [secret, setSecret] = useState<string | null>(null);

  const setEndpoint = (updated: WebhookEndpoint) => {
    queryClient.setQueryData(["webhooks", "endpoint", id], updated);
    void queryClient.invalidateQueries({ queryKey: ["webhooks", "list"] });
  };
  const rotate = useMutation({
    mutationFn: () => client.webhooks.rotateSecret(id),
    onSuccess: (updated) => {
      setSecret(updated.signing_secret);
      setEndpoint(updated);
    },
  });
  const test = useMutation({
    mutationFn: () => client.webhooks.test(id),
    onSuccess: () => {
      watch();
      void queryClient.invalidateQueries({ queryKey: ["webhooks", "deliveries", id] });
    },
  });
  const remove = useMutation({
    mutationFn: () => client.webhooks.delete(id),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: ["webhooks", "endpoint", id] });
      void queryClient.invalidateQueries({ queryKey: ["webhooks", "list"] });
      navigate(href("/webhooks"));
    },
  });

  if (endpoint.isPending) return <Loading label="Loading the endpoint…" />;
  if (endpoint.isError) {
    return (
      <>
        <h1>Webhook endpoint</h1>
        {endpoint.error instanceof NotFoundError ? (
          <Empty>
            No webhook endpoint <code>{id}</code> in this account. <a href={href("/webhooks")}>Back to the list</a>
          </Empty>
        ) : (
          <ErrorState error={endpoint.error} onRetry={() => endpoint.refetch()} />
        )}
      </>
    );
  }
  const e = endpoint.data;
  const disabled = disabledExplanation(e);
  return (
    <>
      <p>
        <a href={href("/webhooks")}>← Webhooks</a>
      </p>
      <h1 class="task-title">
        <span>{e.name ?? e.url}</span>{" "}
        <span class={`badge badge-endpoint-${e.status}`}>{e.status === "active" ? "Active" : "Disabled"}</span>
      </h1>
      {disabled ? <p class="notice warning">{disabled}</p> : null}
      {secret ? (
        <SecretOnce title="New signing secret" label="Signing secret" secret={secret} onDone={() => setSecret(null)}>
          <p>The previous secret keeps signing next to this one for 24 hours, while your receiver switches over.</p>
        </SecretOnce>
      ) : null}
      <div class="grid">
        <Card title="Details" id="endpoint-details-heading">
          <dl>
            <dt>ID</dt>
            <dd>
              <code>{e.id}</code>
            </dd>
            <dt>URL</dt>
            <dd class="wrap-anywhere">{e.url}</dd>
            <dt>Events</dt>
            <dd class="scopes">
              {e.event_types.map((t) => (
                <code key={t}>{t}</code>
              ))}
            </dd>
            <dt>Secret</dt>
            <dd>
              <code>{e.secret_preview}</code>
            </dd>
            <dt>Last delivered</dt>
            <dd>{formatInstant(e.last_success_at)}</dd>
            <dt>Last failure</dt>
            <dd>{formatInstant(e.last_failure_at)}</dd>
            <dt>Failures in a row</dt>
            <dd>{e.failure_count}</dd>
            <dt>Created</dt>
            <dd>{formatInstant(e.created_at)}</dd>
          </dl>
        </Card>
        <Card title="Actions" id="endpoint-actions-heading">
          <div class="stack">
            <StatusToggle endpoint={e} onUpdated={setEndpoint} />
            <div>
              <button type="button" onClick={() => test.mutate()} disabled={test.isPending}>
                {test.isPending ? "Sending…" : "Send test event"}
              </button>
              <p class="small muted" role="status">
                {test.isSuccess ? `Test event ${test.data.id} queued: it appears in the delivery log below.` : ""}
              </p>
              {test.isError ? (
                <p class="notice error" role="alert">
                  The test event was not sent: {errorMessage(test.error)}
                </p>
              ) : null}
            </div>
            <div>
              <button type="button" onClick={() => rotate.mutate()} disabled={rotate.isPending}>
                {rotate.isPending ? "Rotating…" : "Rotate signing secret"}
              </button>
              {rotate.isError ? (
                <p class="notice error" role="alert">
                  The secret was not rotated: {errorMessage(rotate.error)}
                </p>
              ) : null}
            </div>
            <ConfirmAction
              label="Delete endpoint…"
              question="Delete this endpoint?"
              confirmLabel="Delete endpoint"
              pending={remove.isPending}
              error={remove.isError ? remove.error : null}
              onConfirm={() => remove.mutate()}
            >
              <p>No more events are sent to it, retries pending included. This cannot be undone.</p>
            </ConfirmAction>
          </div>
        </Card>
      </div>
      <EditForm endpoint={e} onUpdated={setEndpoint} />
      <DeliveryLog id={id} watching={watchUntil} onRedelivered={watch} />
    </>
  );
}

function StatusToggle({ endpoint, onUpdated }: { endpoint: WebhookEndpoint; onUpdated: (e: WebhookEndpoint) => void }) {
  const next = endpoint.status === "active" ? "disabled" : "active";
  const update = useMutation({
    mutationFn: () => client.webhooks.update(endpoint.id, { status: next }),
    onSuccess: onUpdated,
  });
  return (
    <div>
      <button type="button" onClick={() => update.mutate()} disabled={update.isPending}>
        {update.isPending ? "Saving…" : next === "active" ? "Enable endpoint" : "Pause endpoint"}
      </button>
      <p class="small muted">
        {next === "active"
          ? "Enabling starts a fresh failure window."
          : "A paused endpoint receives nothing until it is enabled again."}
      </p>
      {update.isError ? (
        <p class="notice error" role="alert">
          Not changed: {errorMessage(update.error)}
        </p>
      ) : null}
    </div>
  );
}

function EditForm({ endpoint, onUpdated }: { endpoint: WebhookEndpoint; onUpdated: (e: WebhookEndpoint) => void }) {
  const [events, setEvents] = useState<WebhookEventType[]>(endpoint.event_types);
  const [localError, setLocalError] = useState<string | null>(null);
  const update = useMutation({
    mutationFn: (body: { name: string | null; url: string; event_types: WebhookEventType[] }) =>
      client.webhooks.update(endpoint.id, body),
    onSuccess: onUpdated,
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const url = String(form.get("url") ?? "").trim();
    const name = String(form.get("name") ?? "").trim();
    if (!url) return setLocalError("Enter the URL to deliver events to.");
    if (events.length === 0) return setLocalError("Choose at least one event.");
    setLocalError(null);
    update.mutate({ name: name || null, url, event_types: events });
  };
  return (
    <Card title="Edit" id="endpoint-edit-heading">
      <form class="stack" onSubmit={onSubmit} noValidate>
        <div>
          <label for="edit-url">URL</label>
          <input id="edit-url" name="url" type="url" required maxLength={2048} defaultValue={endpoint.url} />
        </div>
        <div>
          <label for="edit-name">Name (optional)</label>
          <input id="edit-name" name="name" type="text" maxLength={200} defaultValue={endpoint.name ?? ""} />
        </div>
        <EventChoices chosen={events} onChange={setEvents} idPrefix="edit-event" />
        <div>
          <button type="submit" class="primary" disabled={update.isPending}>
            {update.isPending ? "Saving…" : "Save changes"}
          </button>
        </div>
        <p class="small muted" role="status">
          {update.isSuccess ? "Saved." : ""}
        </p>
        {localError || update.isError ? (
          <p class="notice error" role="alert">
            {localError ?? `Not saved: ${errorMessage(update.error)}`}
          </p>
        ) : null}
      </form>
    </Card>
  );
}

function DeliveryLog({ id, watching, onRedelivered }: { id: string; watching: number; onRedelivered: () => void }) {
  const log = useCursorPages<WebhookDelivery>({
    queryKey: ["webhooks", "deliveries", id],
    fetchPage: (startingAfter) => client.webhooks.deliveries(id, { limit: DELIVERY_PAGE_SIZE, startingAfter }),
    refetchInterval: () => (Date.now() < watching ? WATCH_INTERVAL_MS : false),
  });
  return (
    <section class="card" aria-labelledby="deliveries-heading">
      <div class="item-head">
        <h2 id="deliveries-heading">Delivery log</h2>
        <button type="button" onClick={() => log.refetch()} disabled={log.isFetching}>
          {log.isFetching ? "Refreshing…" : "Refresh"}
        </button>
      </div>
      {log.isPending ? (
        <Loading label="Loading deliveries…" />
      ) : log.isError ? (
        <ErrorState error={log.error} onRetry={() => log.refetch()} />
      ) : log.data.pages[0]?.data.length === 0 ? (
        <Empty>No deliveries yet. Send a test event to try the endpoint.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="deliveries">
            <caption class="visually-hidden">Delivery attempts, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Attempt</th>
                <th scope="col">Status</th>
                <th scope="col">Response</th>
                <th scope="col">Next attempt</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {loadedItems(log.data.pages).map((d) => (
                <DeliveryRow key={d.id} delivery={d} onRedelivered={onRedelivered} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={log} />
    </section>
  );
}

function DeliveryRow({ delivery: d, onRedelivered }: { delivery: WebhookDelivery; onRedelivered: () => void }) {
  const queryClient = useQueryClient();
  const redeliver = useMutation({
    mutationFn: () => client.webhooks.redeliver(d.event_id),
    onSuccess: () => {
      onRedelivered();
      void queryClient.invalidateQueries({ queryKey: ["webhooks", "deliveries", d.endpoint_id] });
    },
  });
  return (
    <tr>
      <td class="nowrap">{formatInstant(d.created_at)}</td>
      <td>
        <code>{d.event_id}</code>
        <div class="small muted">{d.event_type}</div>
      </td>
      <td class="num">{d.attempt}</td>
      <td>
        <span class={`badge badge-delivery-${d.status}`}>{d.status === "succeeded" ? "Delivered" : "Failed"}</span>
      </td>
      <td>
        {d.response_status ?? "No answer"}
        {d.duration_ms !== null ? <span class="small muted"> in {d.duration_ms} ms</span> : null}
        {d.error ? <div class="small muted wrap-anywhere">{d.error}</div> : null}
      </td>
      <td class="nowrap">{d.next_attempt_at ? formatInstant(d.next_attempt_at) : "—"}</td>
      <td>
        <button type="button" onClick={() => redeliver.mutate()} disabled={redeliver.isPending}>
          {redeliver.isPending ? "Sending…" : redeliver.isSuccess ? "Queued again" : "Redeliver"}
          <span class="visually-hidden"> {d.event_id}</span>
        </button>
        {redeliver.isError ? (
          <p class="small notice error" role="alert">
            {errorMessage(redeliver.error)}
          </p>
        ) : null}
      </td>
    </tr>
  );
}
