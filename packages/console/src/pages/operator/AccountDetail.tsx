/**
 * One account for the operator: its balance and ledger totals, a grant or debit of credits, its
 * limits, its API keys and its usage over the last 30 days. Every change goes to /admin/v1 and
 * the page reads the account again from the server afterwards (nothing is computed locally).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { type Account, type AccountDeletion, type ApiKeyInfo, admin, type LimitChanges } from "../../admin-api.js";
import { errorMessage } from "../../api.js";
import { formatBytes, formatCredits, formatInstant } from "../../format.js";
import { parseCreditAmount, parseLimit } from "../../operator-filters.js";
import { href } from "../../routes.js";
import { Card, Empty, ErrorState, Loading } from "../../ui.js";
import { ConfirmAction } from "../account-ui.js";
import "../account.css";
import "./operator.css";
import { ScrollTable } from "./ScrollTable.js";

export function AccountDetail({ id }: { id: string }) {
  const account = useQuery({ queryKey: ["admin", "account", id], queryFn: () => admin.accounts.get(id) });
  if (account.isPending) return <Loading label="Loading the account…" />;
  if (account.isError) {
    return (
      <>
        <h1>Account</h1>
        <ErrorState error={account.error} onRetry={() => account.refetch()} />
        <p>
          <a href={href("/accounts")}>All accounts</a>
        </p>
      </>
    );
  }
  const a = account.data;
  return (
    <>
      <h1>{a.name}</h1>
      <p class="muted">
        <code>{a.id}</code> · created {formatInstant(a.created_at)} ·{" "}
        <a href={href("/tasks", { account_id: a.id })}>Tasks of this account</a>
      </p>
      {a.deleted_at ? (
        <p class="notice warning">
          Deleted on {formatInstant(a.deleted_at)}: its keys, sessions and webhook endpoints are revoked and its files
          and results removed. The account and its ledger stay for the accounts; it takes no new key or credits.
        </p>
      ) : null}
      <div class="grid">
        <Card title="Balance" id="balance">
          <p class="balance" aria-live="polite">
            {formatCredits(a.credits)}
          </p>
          <dl class="small">
            <dt>Ledger sum</dt>
            <dd>
              {formatCredits(a.ledger.ledger_sum)}
              {a.ledger.ledger_sum === a.ledger.balance ? " (matches)" : " (does not match the balance!)"}
            </dd>
            <dt>Granted</dt>
            <dd>{formatCredits(a.ledger.granted)}</dd>
            <dt>Reserved</dt>
            <dd>{formatCredits(a.ledger.reserved)}</dd>
            <dt>Refunded</dt>
            <dd>{formatCredits(a.ledger.refunded)}</dd>
            <dt>Entries</dt>
            <dd>{a.ledger.entries}</dd>
          </dl>
        </Card>
        {a.deleted_at ? null : <CreditsForm account={a} />}
      </div>
      {a.deleted_at ? null : <LimitsForm account={a} />}
      {a.deleted_at ? null : <Keys accountId={a.id} />}
      <Usage accountId={a.id} />
      <ExportAndDelete account={a} />
    </>
  );
}

function useAccountRefresh(id: string) {
  const queryClient = useQueryClient();
  return () =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: ["admin", "account", id] }),
      queryClient.invalidateQueries({ queryKey: ["admin", "accounts"] }),
      queryClient.invalidateQueries({ queryKey: ["admin", "usage", id] }),
    ]);
}

function CreditsForm({ account }: { account: Account }) {
  const refresh = useAccountRefresh(account.id);
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const change = useMutation({
    mutationFn: (body: { amount: number; reason?: string }) => admin.accounts.credit(account.id, body),
    onSuccess: async (result, body) => {
      setDone(
        `${body.amount > 0 ? "Granted" : "Debited"} ${formatCredits(Math.abs(body.amount))}; the balance is ${formatCredits(result.credits)}.`,
      );
      await refresh();
    },
  });
  const submit = (sign: 1 | -1) => (event: Event) => {
    const form = (event.currentTarget as HTMLButtonElement).form as HTMLFormElement;
    const data = new FormData(form);
    const amount = parseCreditAmount(String(data.get("amount") ?? ""));
    const reason = String(data.get("reason") ?? "").trim();
    setDone(null);
    if (amount === null) {
      setProblem("The amount must be a whole number of credits from 1 to 1,000,000,000.");
      return;
    }
    setProblem(null);
    change.mutate({ amount: sign * amount, ...(reason ? { reason } : {}) });
  };
  return (
    <Card title="Grant or debit credits" id="credits">
      <form class="op-form" onSubmit={(e) => e.preventDefault()}>
        <div>
          <label for="credit-amount">Amount (credits)</label>
          <input id="credit-amount" name="amount" type="text" inputMode="numeric" autoComplete="off" />
        </div>
        <div>
          <label for="credit-reason">Reason</label>
          <input id="credit-reason" name="reason" type="text" maxLength={500} autoComplete="off" />
        </div>
        <div class="op-buttons">
          <button type="submit" class="primary" onClick={submit(1)} disabled={change.isPending}>
            Grant
          </button>
          <button type="button" onClick={submit(-1)} disabled={change.isPending}>
            Debit
          </button>
        </div>
        <p class="hint muted small">
          A debit never takes the balance below 0: the server refuses it and nothing changes.
        </p>
      </form>
      {problem ? (
        <p class="notice error" role="alert">
          {problem}
        </p>
      ) : null}
      {change.isError ? (
        <p class="notice error" role="alert">
          Refused: {errorMessage(change.error)}
        </p>
      ) : null}
      {done && !change.isError ? (
        <p class="notice" role="status">
          {done}
        </p>
      ) : null}
    </Card>
  );
}

const LIMITS: { field: keyof LimitChanges; label: string; max: number; show: (n: number) => string }[] = [
  { field: "max_running_tasks", label: "Running tasks", max: 10_000, show: String },
  { field: "max_webhook_endpoints", label: "Webhook endpoints", max: 10_000, show: String },
  { field: "max_files", label: "Stored files", max: 10_000_000, show: String },
  { field: "max_file_bytes", label: "Stored bytes", max: 2 ** 50, show: formatBytes },
];

function LimitsForm({ account }: { account: Account }) {
  const refresh = useAccountRefresh(account.id);
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const update = useMutation({
    mutationFn: (body: LimitChanges) => admin.accounts.updateLimits(account.id, body),
    onSuccess: async () => {
      setSaved(true);
      await refresh();
    },
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const body: LimitChanges = {};
    for (const limit of LIMITS) {
      const value = parseLimit(String(data.get(limit.field) ?? ""), limit.max);
      if (value === undefined) {
        setProblem(
          `${limit.label}: a whole number from 1 to ${limit.max.toLocaleString("en-US")}, or empty for the default.`,
        );
        setSaved(false);
        return;
      }
      body[limit.field] = value;
    }
    setProblem(null);
    setSaved(false);
    update.mutate(body);
  };
  const effective = (field: keyof LimitChanges) =>
    account[`effective_${field}` as `effective_${keyof LimitChanges}`] as number;
  return (
    <Card title="Limits" id="limits">
      {/* Keyed by the stored values, so the fields show what the server saved. */}
      <form class="op-form" onSubmit={onSubmit} key={LIMITS.map((l) => account[l.field]).join(",")}>
        {LIMITS.map((limit) => (
          <div key={limit.field}>
            <label for={`limit-${limit.field}`}>{limit.label}</label>
            <input
              id={`limit-${limit.field}`}
              name={limit.field}
              type="text"
              inputMode="numeric"
              autoComplete="off"
              // Uncontrolled, so a refetch while typing keeps what was typed; the form's key
              // remounts it with the stored values after a save.
              defaultValue={account[limit.field] === null ? "" : String(account[limit.field])}
              aria-describedby={`limit-${limit.field}-now`}
            />
            <div id={`limit-${limit.field}-now`} class="muted small">
              In force: {limit.show(effective(limit.field))}
              {account[limit.field] === null ? " (server default)" : ""}
            </div>
          </div>
        ))}
        <div>
          <button type="submit" class="primary" disabled={update.isPending}>
            {update.isPending ? "Saving…" : "Save limits"}
          </button>
        </div>
        <p class="hint muted small">Leave a field empty to use the server's default.</p>
      </form>
      {problem ? (
        <p class="notice error" role="alert">
          {problem}
        </p>
      ) : null}
      {update.isError ? (
        <p class="notice error" role="alert">
          Not saved: {errorMessage(update.error)}
        </p>
      ) : null}
      {saved && !update.isError ? (
        <p class="notice" role="status">
          Limits saved.
        </p>
      ) : null}
    </Card>
  );
}

function Keys({ accountId }: { accountId: string }) {
  const queryClient = useQueryClient();
  const keys = useQuery({ queryKey: ["admin", "keys", accountId], queryFn: () => admin.keys.list(accountId) });
  const [created, setCreated] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (name: string) => admin.keys.create(accountId, name ? { name } : {}),
    onSuccess: async (key) => {
      setCreated(key.key);
      await queryClient.invalidateQueries({ queryKey: ["admin", "keys", accountId] });
    },
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const name = String(new FormData(form).get("name") ?? "").trim();
    setCreated(null);
    create.mutate(name);
    form.reset();
  };
  return (
    <Card title="API keys" id="keys">
      <form class="op-form" onSubmit={onSubmit}>
        <div>
          <label for="key-name">Name (optional)</label>
          <input id="key-name" name="name" type="text" maxLength={200} autoComplete="off" />
        </div>
        <div>
          <button type="submit" class="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create key"}
          </button>
        </div>
      </form>
      {create.isError ? (
        <p class="notice error" role="alert">
          No key was created: {errorMessage(create.error)}
        </p>
      ) : null}
      {created ? (
        <div class="notice" role="status">
          <p>New key, shown only now (give it to the account's owner; it is not stored readable):</p>
          <p class="secret">{created}</p>
        </div>
      ) : null}
      {keys.isPending ? (
        <Loading label="Loading keys…" />
      ) : keys.isError ? (
        <ErrorState error={keys.error} onRetry={() => keys.refetch()} />
      ) : keys.data.data.length === 0 ? (
        <Empty>This account has no API keys.</Empty>
      ) : (
        <ScrollTable label="API keys of this account">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Name</th>
              <th scope="col">Scopes</th>
              <th scope="col">Created</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {keys.data.data.map((key) => (
              <KeyRow key={key.id} apiKey={key} accountId={accountId} />
            ))}
          </tbody>
        </ScrollTable>
      )}
    </Card>
  );
}

function KeyRow({ apiKey, accountId }: { apiKey: ApiKeyInfo; accountId: string }) {
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const revoke = useMutation({
    mutationFn: () => admin.keys.revoke(apiKey.id),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["admin", "keys", accountId] }),
  });
  const expired = apiKey.expires_at !== null && Date.parse(apiKey.expires_at) <= Date.now();
  return (
    <tr>
      <th scope="row">
        <code>{apiKey.prefix}…</code>
      </th>
      <td>{apiKey.name ?? "—"}</td>
      <td>{apiKey.scopes.length}</td>
      <td>{formatInstant(apiKey.created_at)}</td>
      <td>
        {apiKey.revoked_at ? (
          `Revoked ${formatInstant(apiKey.revoked_at)}`
        ) : expired ? (
          `Expired ${formatInstant(apiKey.expires_at)}`
        ) : confirming ? (
          <span class="op-buttons">
            <button type="button" class="primary" onClick={() => revoke.mutate()} disabled={revoke.isPending}>
              Confirm revoking {apiKey.prefix}…
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </span>
        ) : (
          <button type="button" onClick={() => setConfirming(true)} aria-label={`Revoke key ${apiKey.prefix}…`}>
            Revoke
          </button>
        )}
        {revoke.isError ? (
          <p class="notice error" role="alert">
            {errorMessage(revoke.error)}
          </p>
        ) : null}
      </td>
    </tr>
  );
}

function Usage({ accountId }: { accountId: string }) {
  const usage = useQuery({ queryKey: ["admin", "usage", accountId], queryFn: () => admin.accounts.usage(accountId) });
  return (
    <Card title="Usage, last 30 days" id="usage">
      {usage.isPending ? (
        <Loading label="Loading usage…" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} onRetry={() => usage.refetch()} />
      ) : (
        <dl>
          <dt>Tasks created</dt>
          <dd>{usage.data.totals.tasks_created}</dd>
          <dt>Succeeded</dt>
          <dd>{usage.data.totals.tasks_succeeded}</dd>
          <dt>Failed</dt>
          <dd>{usage.data.totals.tasks_failed}</dd>
          <dt>Canceled</dt>
          <dd>{usage.data.totals.tasks_canceled}</dd>
          <dt>Charged</dt>
          <dd>{formatCredits(usage.data.totals.credits_charged)}</dd>
          <dt>Refunded</dt>
          <dd>{formatCredits(usage.data.totals.credits_refunded)}</dd>
          <dt>Granted</dt>
          <dd>{formatCredits(usage.data.totals.credits_granted)}</dd>
        </dl>
      )}
    </Card>
  );
}

/** The account's data as one JSON file, and its deletion (asked first; what it did is shown). */
function ExportAndDelete({ account }: { account: Account }) {
  const refresh = useAccountRefresh(account.id);
  const remove = useMutation({ mutationFn: () => admin.accounts.remove(account.id), onSuccess: () => refresh() });
  return (
    <Card title="Export and delete" id="close-heading">
      <p>
        <a href={admin.accounts.exportUrl(account.id)} download>
          Export the account's data
        </a>{" "}
        <span class="small muted">
          (JSON: the account, its keys without secrets, ledger, tasks, files and webhook endpoints)
        </span>
      </p>
      {remove.data ? <DeletionSummary result={remove.data} /> : null}
      {account.deleted_at || remove.data ? null : (
        <ConfirmAction
          label="Delete the account…"
          question={`Delete ${account.name}? This cannot be undone.`}
          confirmLabel="Delete the account"
          pending={remove.isPending}
          error={remove.isError ? remove.error : null}
          onConfirm={() => remove.mutate()}
        >
          <p class="small">
            Its keys and sessions stop working at once, its running tasks are canceled (and refunded), its files and
            results are removed. The ledger stays.
          </p>
        </ConfirmAction>
      )}
    </Card>
  );
}

function DeletionSummary({ result }: { result: AccountDeletion }) {
  return (
    <p class="notice" role="status">
      Deleted: {result.keys_revoked} keys and {result.webhook_endpoints_revoked} webhook endpoints revoked,{" "}
      {result.tasks_canceled} tasks canceled, {result.files_removed} files and {result.results_removed} results removed
      {result.pending_tasks.length
        ? `; ${result.pending_tasks.length} tasks still run at their provider and are cleaned up when they end`
        : ""}
      . The ledger keeps {formatCredits(result.credits)}.
    </p>
  );
}
