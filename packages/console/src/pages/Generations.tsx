/** The generations list: filters in the URL, 20 per page, "Load more" through the API's cursor. */
import type { Task } from "@framegate/sdk";
import { client } from "../api.js";
import { type Filters, filtersToQuery, inDateRange, parseFilters, pastRange, STATUSES } from "../filters.js";
import { statusLabel } from "../format.js";
import { LoadMore, loadedItems, useCursorPages } from "../paging.js";
import { navigate } from "../router.js";
import { href } from "../routes.js";
import { Empty, ErrorState, Loading } from "../ui.js";
import { TaskTable } from "./TaskTable.js";

const PAGE_SIZE = 20;

export function Generations({ query }: { query: URLSearchParams }) {
  const filters = parseFilters(query);
  const list = useCursorPages<Task>({
    queryKey: ["generations", "list", filters.status ?? "", filters.clientRequestId ?? ""],
    fetchPage: (startingAfter) =>
      client.generations.list({
        limit: PAGE_SIZE,
        status: filters.status,
        clientRequestId: filters.clientRequestId,
        startingAfter,
      }),
  });

  const loaded = loadedItems(list.data?.pages);
  const shown = loaded.filter((t) => inDateRange(t.created_at, filters.from, filters.to));
  const oldest = loaded[loaded.length - 1]?.created_at;
  const canLoadMore = list.hasNextPage && !pastRange(oldest, filters.from);
  const filtered = Boolean(filters.status || filters.clientRequestId || filters.from || filters.to);

  return (
    <>
      <h1>Generations</h1>
      <FilterForm filters={filters} />
      {list.isPending ? (
        <Loading label="Loading generations…" />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => list.refetch()} />
      ) : (
        <>
          <p class="muted" role="status">
            {shown.length === 0
              ? ""
              : `Showing ${shown.length} generation${shown.length === 1 ? "" : "s"}${canLoadMore ? "; more below" : ""}.`}
          </p>
          {shown.length === 0 ? (
            <Empty>
              {filtered ? "No generations match these filters" : "No generations yet"}
              {canLoadMore ? " in the pages loaded so far." : "."}
            </Empty>
          ) : (
            <TaskTable tasks={shown} caption="Generations" />
          )}
          <LoadMore list={list} when={canLoadMore} />
        </>
      )}
    </>
  );
}

function FilterForm({ filters }: { filters: Filters }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const next = parseFilters(new URLSearchParams(form as unknown as Record<string, string>));
    navigate(href("/generations", filtersToQuery(next)));
  };
  // Keyed by the URL's filters so the fields show them again after back/forward navigation.
  return (
    <form class="filters" aria-label="Filter generations" onSubmit={onSubmit} key={JSON.stringify(filters)}>
      <div>
        <label for="f-status">Status</label>
        <select id="f-status" name="status" value={filters.status ?? ""}>
          <option value="">Any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
      </div>
      <div>
        <label for="f-crid">Client request ID</label>
        <input id="f-crid" name="client_request_id" type="text" maxLength={128} value={filters.clientRequestId ?? ""} />
      </div>
      <div>
        <label for="f-from">Created from</label>
        <input id="f-from" name="from" type="date" value={filters.from ?? ""} />
      </div>
      <div>
        <label for="f-to">Created to</label>
        <input id="f-to" name="to" type="date" value={filters.to ?? ""} />
      </div>
      <div class="filter-actions">
        <button type="submit" class="primary">
          Apply filters
        </button>
        <a href={href("/generations")}>Clear</a>
      </div>
    </form>
  );
}
