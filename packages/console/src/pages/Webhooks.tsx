/**
 * The account's webhook endpoints (GET/POST /api/v1/webhooks, scope webhooks:manage): the list,
 * each linking to its page, and a form that registers one; the new endpoint's signing secret is
 * shown once.
 */
import { PermissionDeniedError, type WebhookEndpoint, type WebhookEventType } from "@framegate/sdk";
import { useMutation, useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { client, errorMessage } from "../api.js";
import { formatInstant } from "../format.js";
import { LoadMore, loadedItems, useCursorPages } from "../paging.js";
import { href } from "../routes.js";
import { Card, Empty, ErrorState, Loading } from "../ui.js";
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENT_NAMES, WEBHOOK_EVENTS } from "../vocabulary.js";
import { disabledExplanation } from "../webhook-status.js";
import { MissingScope, SecretOnce, useSession } from "./account-ui.js";
import "./account.css";

const PAGE_SIZE = 50;

export function Webhooks() {
  const session = useSession();
  const [created, setCreated] = useState<{ id: string; secret: string } | null>(null);
  const canManage = session?.scopes.includes("webhooks:manage") ?? false;
  return (
    <>
      <h1>Webhooks</h1>
      {!canManage ? (
        <MissingScope scope="webhooks:manage" what="list or register webhook endpoints" />
      ) : (
        <>
          {created ? (
            <SecretOnce
              title="Endpoint registered"
              label="Signing secret"
              secret={created.secret}
              onDone={() => setCreated(null)}
            >
              <p>
                Verify each delivery's <code>webhook-signature</code> with it (Standard Webhooks). Its{" "}
                <a href={href(`/webhooks/${encodeURIComponent(created.id)}`)}>endpoint page</a> can send a test event.
              </p>
            </SecretOnce>
          ) : (
            <CreateEndpointForm onCreated={(id, secret) => setCreated({ id, secret })} />
          )}
          <EndpointList />
        </>
      )}
    </>
  );
}

/** The event checkboxes of the create form and the endpoint page's edit form. */
export function EventChoices({
  chosen,
  onChange,
  idPrefix,
}: {
  chosen: WebhookEventType[];
  onChange: (next: WebhookEventType[]) => void;
  idPrefix: string;
}) {
  return (
    <fieldset class="checks">
      <legend>Events</legend>
      {WEBHOOK_EVENT_NAMES.map((type) => (
        <div key={type} class="check">
          <input
            id={`${idPrefix}-${type}`}
            type="checkbox"
            checked={chosen.includes(type)}
            onChange={(e) => {
              const on = (e.currentTarget as HTMLInputElement).checked;
              onChange(WEBHOOK_EVENT_NAMES.filter((t) => (t === type ? on : chosen.includes(t))));
            }}
            aria-describedby={`${idPrefix}-${type}-help`}
          />
          <label for={`${idPrefix}-${type}`}>
            <code>{type}</code>
          </label>
          <span id={`${idPrefix}-${type}-help`} class="small muted">
            {WEBHOOK_EVENTS[type]}
          </span>
        </div>
      ))}
    </fieldset>
  );
}

function CreateEndpointForm({ onCreated }: { onCreated: (id: string, secret: string) => void }) {
  const queryClient = useQueryClient();
  const [events, setEvents] = useState<WebhookEventType[]>([...DEFAULT_WEBHOOK_EVENTS]);
  const [localError, setLocalError] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: { name: string | null; url: string; event_types: WebhookEventType[] }) =>
      client.webhooks.create(body),
    onSuccess: (endpoint) => {
      void queryClient.invalidateQueries({ queryKey: ["webhooks"] });
      onCreated(endpoint.id, endpoint.signing_secret);
    },
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = String(form.get("name") ?? "").trim();
    const url = String(form.get("url") ?? "").trim();
    if (!url) return setLocalError("Enter the URL to deliver events to.");
    if (events.length === 0) return setLocalError("Choose at least one event.");
    setLocalError(null);
    create.mutate({ name: name || null, url, event_types: events });
  };
  return (
    <Card title="Register an endpoint" id="create-endpoint-heading">
      <form class="stack" onSubmit={onSubmit} noValidate>
        <div>
          <label for="endpoint-url">URL</label>
          <input
            id="endpoint-url"
            name="url"
            type="url"
            required
            maxLength={2048}
            placeholder="https://example.com/webhooks/framegate"
            aria-describedby="endpoint-url-help"
          />
          <p id="endpoint-url-help" class="small muted">
            https, reachable from the server, not a private or loopback address.
          </p>
        </div>
        <div>
          <label for="endpoint-name">Name (optional)</label>
          <input id="endpoint-name" name="name" type="text" maxLength={200} />
        </div>
        <EventChoices chosen={events} onChange={setEvents} idPrefix="new-event" />
        <div>
          <button type="submit" class="primary" disabled={create.isPending}>
            {create.isPending ? "Registering…" : "Register endpoint"}
          </button>
        </div>
        {localError || create.isError ? (
          <p class="notice error" role="alert">
            {localError ?? `The endpoint was not registered: ${errorMessage(create.error)}`}
          </p>
        ) : null}
      </form>
    </Card>
  );
}

function EndpointList() {
  const list = useCursorPages<WebhookEndpoint>({
    queryKey: ["webhooks", "list"],
    fetchPage: (startingAfter) => client.webhooks.list({ limit: PAGE_SIZE, startingAfter }),
  });
  if (list.isPending) return <Loading label="Loading the endpoints…" />;
  if (list.isError) {
    if (list.error instanceof PermissionDeniedError) {
      return <MissingScope scope="webhooks:manage" what="list or register webhook endpoints" />;
    }
    return <ErrorState error={list.error} onRetry={() => list.refetch()} />;
  }
  const endpoints = loadedItems(list.data.pages);
  return (
    <section aria-labelledby="endpoints-heading">
      <h2 id="endpoints-heading">Endpoints</h2>
      {endpoints.length === 0 ? (
        <Empty>No endpoints yet: register one above to hear when generations finish.</Empty>
      ) : (
        <ul class="item-list">
          {endpoints.map((e) => {
            const disabled = disabledExplanation(e);
            return (
              <li key={e.id} class="card item">
                <div class="item-head">
                  <h3>
                    <a href={href(`/webhooks/${encodeURIComponent(e.id)}`)}>{e.name ?? e.url}</a>
                  </h3>
                  <span class={`badge badge-endpoint-${e.status}`}>
                    {e.status === "active" ? "Active" : "Disabled"}
                  </span>
                </div>
                {e.name ? <p class="wrap-anywhere">{e.url}</p> : null}
                <p class="small muted">
                  {e.event_types.join(", ")} · created {formatInstant(e.created_at)}
                  {e.last_success_at ? ` · last delivered ${formatInstant(e.last_success_at)}` : ""}
                </p>
                {disabled ? <p class="notice warning">{disabled}</p> : null}
              </li>
            );
          })}
        </ul>
      )}
      <LoadMore list={list} />
    </section>
  );
}
