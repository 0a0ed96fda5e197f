/** The accounts, newest first, a page at a time, and a form to create one (with its initial credits). */
import { useMutation, useQueryClient } from "@tanstack/preact-query";
import { useState } from "preact/hooks";
import { type Account, admin } from "../../admin-api.js";
import { errorMessage } from "../../api.js";
import { formatCredits, formatInstant } from "../../format.js";
import { parseCreditAmount } from "../../operator-filters.js";
import { LoadMore, loadedItems, useCursorPages } from "../../paging.js";
import { navigate } from "../../router.js";
import { href } from "../../routes.js";
import { Card, Empty, ErrorState, Loading } from "../../ui.js";
import "./operator.css";
import { ScrollTable } from "./ScrollTable.js";

const PAGE_SIZE = 50;

export function Accounts() {
  const accounts = useCursorPages<Account>({
    queryKey: ["admin", "accounts"],
    fetchPage: (startingAfter) =>
      admin.accounts.list({ limit: PAGE_SIZE, ...(startingAfter ? { starting_after: startingAfter } : {}) }),
  });
  const items = loadedItems(accounts.data?.pages);
  return (
    <>
      <h1>Accounts</h1>
      <CreateAccount />
      <Card title="All accounts" id="all-accounts">
        {accounts.isPending ? (
          <Loading label="Loading accounts…" />
        ) : accounts.isError ? (
          <ErrorState error={accounts.error} onRetry={() => accounts.refetch()} />
        ) : items.length === 0 ? (
          <Empty>No accounts yet: create the first one above.</Empty>
        ) : (
          <ScrollTable label="Accounts">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Account</th>
                <th scope="col">Balance</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id}>
                  <th scope="row">
                    <a href={href(`/accounts/${encodeURIComponent(a.id)}`)}>{a.name}</a>
                    {a.deleted_at ? (
                      <>
                        {" "}
                        <span class="badge">Deleted</span>
                      </>
                    ) : null}
                  </th>
                  <td>
                    <code>{a.id}</code>
                  </td>
                  <td>{formatCredits(a.credits)}</td>
                  <td>{formatInstant(a.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </ScrollTable>
        )}
        <LoadMore list={accounts} />
      </Card>
    </>
  );
}

function CreateAccount() {
  const queryClient = useQueryClient();
  const [problem, setProblem] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: admin.accounts.create,
    onSuccess: async (account) => {
      await queryClient.invalidateQueries({ queryKey: ["admin", "accounts"] });
      navigate(href(`/accounts/${encodeURIComponent(account.id)}`));
    },
  });
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = String(form.get("name") ?? "").trim();
    const creditsText = String(form.get("credits") ?? "").trim();
    // Empty or 0 starts the account empty; otherwise a whole number of credits.
    const credits = /^0*$/.test(creditsText) ? 0 : parseCreditAmount(creditsText);
    if (!name || name.length > 200) {
      setProblem("Give the account a name (1 to 200 characters).");
      return;
    }
    if (credits === null) {
      setProblem("Initial credits must be a whole number from 0 to 1,000,000,000.");
      return;
    }
    setProblem(null);
    create.mutate({ name, credits });
  };
  return (
    <Card title="Create an account" id="create-account">
      <form class="op-form" onSubmit={onSubmit} aria-describedby={problem ? "create-problem" : undefined}>
        <div>
          <label for="acct-name">Name</label>
          <input id="acct-name" name="name" type="text" maxLength={200} required autoComplete="off" />
        </div>
        <div>
          <label for="acct-credits">Initial credits</label>
          <input id="acct-credits" name="credits" type="text" inputMode="numeric" placeholder="0" />
        </div>
        <div>
          <button type="submit" class="primary" disabled={create.isPending}>
            {create.isPending ? "Creating…" : "Create account"}
          </button>
        </div>
      </form>
      {problem ? (
        <p id="create-problem" class="notice error" role="alert">
          {problem}
        </p>
      ) : null}
      {create.isError ? (
        <p class="notice error" role="alert">
          The account was not created: {errorMessage(create.error)}
        </p>
      ) : null}
    </Card>
  );
}
