/**
 * The console's lists read the API a page at a time through its cursor (`starting_after` = the
 * last item's id) and offer "Load more"; a failed next page keeps the pages already shown.
 */
import { useInfiniteQuery } from "@tanstack/preact-query";
import { ErrorState } from "./ui.js";

export interface CursorPage<T> {
  data: T[];
  has_more: boolean;
}

export interface CursorPagesOptions<T, P extends CursorPage<T>> {
  queryKey: readonly unknown[];
  /** One page; the SDK's list calls answer a thenable page, awaited here. */
  fetchPage: (startingAfter: string | undefined) => PromiseLike<P>;
  /** The cursor an item gives for the next page; its `id` unless said otherwise. */
  cursorOf?: (item: T) => string;
  enabled?: boolean;
  refetchInterval?: () => number | false;
}

const idOf = (item: unknown) => (item as { id: string }).id;

export function useCursorPages<T, P extends CursorPage<T> = CursorPage<T>>(options: CursorPagesOptions<T, P>) {
  const cursorOf = options.cursorOf ?? idOf;
  return useInfiniteQuery({
    queryKey: options.queryKey,
    enabled: options.enabled,
    refetchInterval: options.refetchInterval,
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }): Promise<P> => await options.fetchPage(pageParam),
    getNextPageParam: (last: P) => {
      const item = last.data[last.data.length - 1];
      return last.has_more && item !== undefined ? cursorOf(item) : undefined;
    },
  });
}

/** Every item of the pages loaded so far. */
export function loadedItems<T>(pages: readonly CursorPage<T>[] | undefined): T[] {
  return pages?.flatMap((page) => page.data) ?? [];
}

/** What "Load more" needs of a paged query. */
interface Paged {
  hasNextPage: boolean;
  isFetchingNextPage: boolean;
  isFetchNextPageError: boolean;
  error: unknown;
  fetchNextPage: () => unknown;
}

/** The "Load more" button (while there is a next page, or `when` says so) and a failed next page's error. */
export function LoadMore({ list, when = list.hasNextPage }: { list: Paged; when?: boolean }) {
  return (
    <>
      {when ? (
        <button type="button" onClick={() => list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          {list.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      ) : null}
      {list.isFetchNextPageError ? <ErrorState error={list.error} /> : null}
    </>
  );
}
