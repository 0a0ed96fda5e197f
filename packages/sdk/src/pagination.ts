/**
 * Cursor pagination (`limit`, `starting_after`, `has_more`). A list call returns a PagePromise:
 * await it for the first page, or iterate it with `for await` to walk every item of every page.
 */
import type { ListResponse } from "./types.js";

type FetchPage<T> = (startingAfter: string | undefined) => Promise<ListResponse<T>>;

/** One page of a list, itself async-iterable over all items from this page on. */
export class Page<T extends { id: string }> implements ListResponse<T>, AsyncIterable<T> {
  readonly object = "list" as const;
  readonly data: T[];
  readonly has_more: boolean;
  readonly #fetchPage: FetchPage<T>;

  constructor(body: ListResponse<T>, fetchPage: FetchPage<T>) {
    this.data = body.data;
    this.has_more = body.has_more;
    this.#fetchPage = fetchPage;
  }

  hasNextPage(): boolean {
    return this.has_more && this.data.length > 0;
  }

  /** The page after this one (starting after its last item); throws when there is none. */
  async getNextPage(): Promise<Page<T>> {
    const last = this.data[this.data.length - 1];
    if (!this.hasNextPage() || !last) throw new Error("No next page: check hasNextPage() first.");
    return new Page(await this.#fetchPage(last.id), this.#fetchPage);
  }

  /** This page and every page after it. */
  async *iterPages(): AsyncGenerator<Page<T>, void, undefined> {
    let page: Page<T> = this;
    yield page;
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.iterPages()) yield* page.data;
  }
}

/**
 * The first page, loaded lazily (on the first `await`/`then` or iteration, once): a PromiseLike
 * of the Page and an AsyncIterable over every item across all pages.
 */
export class PagePromise<T extends { id: string }> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  #promise: Promise<Page<T>> | undefined;
  readonly #fetchPage: FetchPage<T>;
  readonly #startingAfter: string | undefined;

  constructor(fetchPage: FetchPage<T>, startingAfter?: string) {
    this.#fetchPage = fetchPage;
    this.#startingAfter = startingAfter;
  }

  #load(): Promise<Page<T>> {
    this.#promise ??= this.#fetchPage(this.#startingAfter).then((body) => new Page(body, this.#fetchPage));
    return this.#promise;
  }

  // biome-ignore lint/suspicious/noThenProperty: a PagePromise is awaitable by design
  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#load().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<Page<T> | R> {
    return this.#load().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<Page<T>> {
    return this.#load().finally(onfinally);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    yield* await this.#load();
  }
}
