/**
 * The account's API keys (GET/POST/DELETE /api/v1/keys, scope keys:manage): the list, a form that
 * makes a key (name, scopes, optional expiry) whose secret is shown once, and revocation behind a
 * confirmation. Revoking the key this session signed in with ends the session, and says so first.
 */
import { type ApiKey, type ApiKeyScope, type CreatedApiKey, PermissionDeniedError } from "@framegate/sdk";
import { useMutation, useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { client, errorMessage } from "../api.js";
import { formatInstant } from "../format.js";
import { LoadMore, loadedItems, useCursorPages } from "../paging.js";
import { Card, Empty, ErrorState, Loading } from "../ui.js";
import { SCOPE_NAMES, SCOPES } from "../vocabulary.js";
import { ConfirmAction, MissingScope, SecretOnce, useEndSession, useSession } from "./account-ui.js";
import "./account.css";

const PAGE_SIZE = 50;
const KEYS = ["keys"] as const;

export function ApiKeys() {
  const session = useSession();
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const canManage = session?.scopes.includes("keys:manage") ?? false;
  return (
    <>
      <h1>API keys</h1>
      {!canManage ? (
        <MissingScope scope="keys:manage" what="list, create or revoke the account's keys" />
      ) : (
        <>
          {created ? (
            <SecretOnce
              title={`New key${created.name ? ` “${created.name}”` : ""}`}
              label="API key"
              secret={created.key}
              onDone={() => setCreated(null)}
            >
              <p>
                Send it as <code>Authorization: Bearer …</code>. Its prefix <code>{created.prefix}</code> is how it is
                listed below from now on.
              </p>
            </SecretOnce>
          ) : (
            <CreateKeyForm sessionScopes={session?.scopes ?? []} onCreated={setCreated} />
          )}
          <KeyList ownKeyId={session?.key_id ?? null} />
        </>
      )}
    </>
  );
}

function CreateKeyForm({
  sessionScopes,
  onCreated,
}: {
  sessionScopes: string[];
  onCreated: (key: CreatedApiKey) => void;
}) {
  const queryClient = useQueryClient();
  const held = (scope: ApiKeyScope) => sessionScopes.includes(scope);
  // The API's own default: the caller's scopes without keys:manage.
  const [scopes, setScopes] = useState<ApiKeyScope[]>(() => SCOPE_NAMES.filter((s) => held(s) && s !== "keys:manage"));
  const create = useMutation({
    mutationFn: (body: { name: string | null; scopes: ApiKeyScope[]; expires_at?: string }) => client.keys.create(body),
    onSuccess: (key) => {
      void queryClient.invalidateQueries({ queryKey: KEYS });
      onCreated(key);
    },
  });
  const [localError, setLocalError] = useState<string | null>(null);

  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = String(form.get("name") ?? "").trim();
    const expires = String(form.get("expires") ?? "");
    if (scopes.length === 0) {
      setLocalError("Choose at least one scope.");
      return;
    }
    setLocalError(null);
    create.mutate({
      name: name || null,
      scopes,
      // The chosen day's end, UTC: a key "valid until the 31st" works all of the 31st.
      ...(expires ? { expires_at: `${expires}T23:59:59Z` } : {}),
    });
  };
  const toggle = (scope: ApiKeyScope, on: boolean) =>
    setScopes((current) => SCOPE_NAMES.filter((s) => (s === scope ? on : current.includes(s))));

  return (
    <Card title="Create a key" id="create-key-heading">
      <form class="stack" onSubmit={onSubmit}>
        <div>
          <label for="key-name">Name</label>
          <input id="key-name" name="name" type="text" maxLength={200} placeholder="e.g. CI pipeline" />
        </div>
        <fieldset class="checks">
          <legend>Scopes</legend>
          {SCOPE_NAMES.map((scope) => (
            <div key={scope} class="check">
              <input
                id={`scope-${scope}`}
                type="checkbox"
                checked={scopes.includes(scope)}
                disabled={!held(scope)}
                onChange={(e) => toggle(scope, (e.currentTarget as HTMLInputElement).checked)}
                aria-describedby={`scope-${scope}-help`}
              />
              <label for={`scope-${scope}`}>
                <code>{scope}</code>
              </label>
              <span id={`scope-${scope}-help`} class="small muted">
                {SCOPES[scope]}
                {held(scope) ? "" : " (this session's key does not hold it, so it cannot hand it out)"}
              </span>
            </div>
          ))}
        </fieldset>
        <div>
          <label for="key-expires">Expires (optional, end of the day, UTC)</label>
          <input id="key-expires" name="expires" type="date" aria-describedby="key-expires-help" />
          <p id="key-expires-help" class="small muted">
            Left empty, the new key expires when this session's key does (never, if it does not expire).
          </p>
        </div>
        <div>
          <button type="submit" class="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create key"}
          </button>
        </div>
        {localError || create.isError ? (
          <p class="notice error" role="alert">
            {localError ?? `The key was not created: ${errorMessage(create.error)}`}
          </p>
        ) : null}
      </form>
    </Card>
  );
}

function KeyList({ ownKeyId }: { ownKeyId: string | null }) {
  const list = useCursorPages<ApiKey>({
    queryKey: [...KEYS, "list"],
    fetchPage: (startingAfter) => client.keys.list({ limit: PAGE_SIZE, startingAfter }),
  });

  if (list.isPending) return <Loading label="Loading the keys…" />;
  if (list.isError) {
    if (list.error instanceof PermissionDeniedError) {
      return <MissingScope scope="keys:manage" what="list, create or revoke the account's keys" />;
    }
    return <ErrorState error={list.error} onRetry={() => list.refetch()} />;
  }
  const keys = loadedItems(list.data.pages);
  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">The account's keys</h2>
      {keys.length === 0 ? (
        <Empty>No keys yet.</Empty>
      ) : (
        <ul class="item-list">
          {keys.map((key) => (
            <KeyItem key={key.id} apiKey={key} own={key.id === ownKeyId} />
          ))}
        </ul>
      )}
      <LoadMore list={list} />
    </section>
  );
}

function keyState(key: ApiKey, now = Date.now()): "revoked" | "expired" | "active" {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && Date.parse(key.expires_at) <= now) return "expired";
  return "active";
}

function KeyItem({ apiKey: key, own }: { apiKey: ApiKey; own: boolean }) {
  const queryClient = useQueryClient();
  const endSession = useEndSession();
  const revoke = useMutation({
    mutationFn: () => client.keys.revoke(key.id),
    onSuccess: () => {
      // This session's own key: the server has ended the session with it.
      if (own) endSession();
      else void queryClient.invalidateQueries({ queryKey: KEYS });
    },
  });
  const state = keyState(key);
  const headingId = `key-${key.id}`;
  return (
    <li class="card item">
      <div class="item-head">
        <h3 id={headingId}>{key.name ?? <span class="muted">Unnamed key</span>}</h3>
        <span class={`badge badge-key-${state}`}>
          {state === "active" ? "Active" : state === "revoked" ? "Revoked" : "Expired"}
        </span>
        {own ? <span class="badge">This session's key</span> : null}
      </div>
      <dl>
        <dt>Prefix</dt>
        <dd>
          <code>{key.prefix}…</code>
        </dd>
        <dt>Scopes</dt>
        <dd class="scopes">
          {key.scopes.map((s) => (
            <code key={s}>{s}</code>
          ))}
        </dd>
        <dt>Created</dt>
        <dd>{formatInstant(key.created_at)}</dd>
        <dt>Expires</dt>
        <dd>{key.expires_at ? formatInstant(key.expires_at) : "Never"}</dd>
        {key.revoked_at ? (
          <>
            <dt>Revoked</dt>
            <dd>{formatInstant(key.revoked_at)}</dd>
          </>
        ) : null}
        <dt>ID</dt>
        <dd>
          <code>{key.id}</code>
        </dd>
      </dl>
      {state === "active" ? (
        <ConfirmAction
          label="Revoke…"
          question={`Revoke ${key.name ? `“${key.name}”` : key.prefix}?`}
          confirmLabel="Revoke key"
          pending={revoke.isPending}
          error={revoke.isError ? revoke.error : null}
          onConfirm={() => revoke.mutate()}
        >
          <p>Every request with it is refused at once, on every server process. This cannot be undone.</p>
          {own ? (
            <p class="notice warning">
              This console session signed in with this key: revoking it signs you out, and you will need another key to
              sign in again.
            </p>
          ) : null}
        </ConfirmAction>
      ) : null}
    </li>
  );
}
