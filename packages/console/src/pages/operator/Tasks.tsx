/**
 * Every account's tasks (GET /admin/v1/tasks): filters in the URL, sent to the server (account,
 * status, model, provider, creation days), 25 at a time with "Load more", and the refunds of
 * everything the filters match.
 */
import { type AdminTaskPage, admin } from "../../admin-api.js";
import { STATUSES } from "../../filters.js";
import { formatCredits, formatInstant, statusLabel } from "../../format.js";
import {
  type OperatorTaskFilters,
  operatorFiltersToQuery,
  parseOperatorFilters,
  toAdminQuery,
} from "../../operator-filters.js";
import { LoadMore, loadedItems, useCursorPages } from "../../paging.js";
import { navigate } from "../../router.js";
import { href } from "../../routes.js";
import { Empty, ErrorState, Loading, StatusBadge } from "../../ui.js";
import "./operator.css";
import { ScrollTable } from "./ScrollTable.js";

const PAGE_SIZE = 25;

export function Tasks({ query }: { query: URLSearchParams }) {
  const filters = parseOperatorFilters(query);
  const adminQuery = toAdminQuery(filters);
  const list = useCursorPages<AdminTaskPage["data"][number], AdminTaskPage>({
    queryKey: ["admin", "tasks", adminQuery ?? null],
    enabled: adminQuery !== undefined,
    fetchPage: (startingAfter) =>
      admin.tasks.list({
        ...adminQuery,
        limit: PAGE_SIZE,
        ...(startingAfter ? { starting_after: startingAfter } : {}),
      }),
    cursorOf: (item) => item.task.id,
  });
  const items = loadedItems(list.data?.pages);
  // Every page answers the same totals (the whole filtered set): the first page's are shown.
  const refunds = list.data?.pages[0]?.refunds;
  const filtered = Object.values(operatorFiltersToQuery(filters)).some(Boolean);

  return (
    <>
      <h1>Tasks</h1>
      <FilterForm filters={filters} />
      {adminQuery === undefined ? (
        <p class="notice error" role="alert">
          The "created to" day is before the "created from" day: no task can match.
        </p>
      ) : list.isPending ? (
        <Loading label="Loading tasks…" />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => list.refetch()} />
      ) : (
        <>
          {refunds ? (
            <p class="notice" role="status">
              Refunds {filtered ? "for these filters" : "over all tasks"}: {refunds.count} task
              {refunds.count === 1 ? "" : "s"}, {formatCredits(refunds.credits)}.
            </p>
          ) : null}
          {items.length === 0 ? (
            <Empty>{filtered ? "No task matches these filters." : "No tasks yet."}</Empty>
          ) : (
            <ScrollTable label="Tasks">
              <thead>
                <tr>
                  <th scope="col">Task</th>
                  <th scope="col">Status</th>
                  <th scope="col">Account</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Credits</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {items.map(({ task, account_id, provider }) => (
                  <tr key={task.id}>
                    <th scope="row">
                      <a href={href(`/tasks/${encodeURIComponent(task.id)}`)}>{task.id}</a>
                    </th>
                    <td>
                      <StatusBadge task={task} />
                    </td>
                    <td>
                      <a href={href(`/accounts/${encodeURIComponent(account_id)}`)}>{account_id}</a>
                    </td>
                    <td>{provider ?? "—"}</td>
                    <td>{formatCredits(task.status === "succeeded" ? task.final_credits : task.reserved_credits)}</td>
                    <td>{formatInstant(task.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </ScrollTable>
          )}
          <LoadMore list={list} />
        </>
      )}
    </>
  );
}

function FilterForm({ filters }: { filters: OperatorTaskFilters }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const next = parseOperatorFilters(new URLSearchParams(form as unknown as Record<string, string>));
    navigate(href("/tasks", operatorFiltersToQuery(next)));
  };
  // Keyed by the URL's filters so the fields show them again after back/forward navigation.
  return (
    <form class="filters" aria-label="Filter tasks" onSubmit={onSubmit} key={JSON.stringify(filters)}>
      <div>
        <label for="t-account">Account ID</label>
        <input id="t-account" name="account_id" type="text" maxLength={64} value={filters.accountId ?? ""} />
      </div>
      <div>
        <label for="t-status">Status</label>
        <select id="t-status" name="status" value={filters.status ?? ""}>
          <option value="">Any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
      </div>
      <div>
        <label for="t-model">Model</label>
        <input id="t-model" name="model" type="text" maxLength={64} value={filters.model ?? ""} />
      </div>
      <div>
        <label for="t-provider">Provider</label>
        <input id="t-provider" name="provider" type="text" maxLength={64} value={filters.provider ?? ""} />
      </div>
      <div>
        <label for="t-from">Created from</label>
        <input id="t-from" name="from" type="date" value={filters.from ?? ""} />
      </div>
      <div>
        <label for="t-to">Created to</label>
        <input id="t-to" name="to" type="date" value={filters.to ?? ""} />
      </div>
      <div class="filter-actions">
        <button type="submit" class="primary">
          Apply filters
        </button>
        <a href={href("/tasks")}>Clear</a>
      </div>
    </form>
  );
}
