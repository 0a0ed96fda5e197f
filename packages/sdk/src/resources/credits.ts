import type { Core, RequestOptions } from "../core.js";
import { PagePromise } from "../pagination.js";
import type { Credits as CreditsObject, LedgerEntry, LedgerEntryType, ListResponse, Usage } from "../types.js";

/** An instant: a Date, or an ISO 8601 string (a date-time with Z or an offset, or a date). */
export type Instant = Date | string;

export interface LedgerListParams {
  limit?: number;
  startingAfter?: string;
  /** One type or several. */
  type?: LedgerEntryType | LedgerEntryType[];
  /** Entries created at or after this instant. */
  createdAfter?: Instant;
  /** Entries created before this instant. */
  createdBefore?: Instant;
}

export interface UsageParams {
  /** Bucket size, UTC (server default: day). */
  granularity?: "day" | "hour";
  /** Server default: 30 days (24 hours) before `end`. At most 31 day or 168 hour buckets. */
  start?: Instant;
  /** Exclusive; server default: the end of the current bucket. */
  end?: Instant;
}

const instant = (value: Instant | undefined) => (value instanceof Date ? value.toISOString() : value);

export class Credits {
  constructor(private readonly core: Core) {}

  /** GET /api/v1/credits: the available balance (reservations already deducted). */
  async retrieve(options?: RequestOptions): Promise<CreditsObject> {
    const { data } = await this.core.request<CreditsObject>({
      method: "GET",
      path: "/api/v1/credits",
      retry: "idempotent",
      options,
    });
    return data;
  }

  /**
   * GET /api/v1/credits/ledger: every credit movement, newest first, each with the balance right
   * after it. Await it for the first page, or `for await` it to walk every entry of every page.
   */
  ledger(params: LedgerListParams = {}, options?: RequestOptions): PagePromise<LedgerEntry> {
    const type = Array.isArray(params.type) ? params.type.join(",") : params.type;
    return new PagePromise<LedgerEntry>(async (startingAfter) => {
      const { data } = await this.core.request<ListResponse<LedgerEntry>>({
        method: "GET",
        path: "/api/v1/credits/ledger",
        query: {
          limit: params.limit,
          starting_after: startingAfter,
          type: type || undefined,
          created_after: instant(params.createdAfter),
          created_before: instant(params.createdBefore),
        },
        retry: "idempotent",
        options,
      });
      return data;
    }, params.startingAfter);
  }

  /** GET /api/v1/usage: tasks and credits per UTC day or hour over a range, empty buckets included. */
  async usage(params: UsageParams = {}, options?: RequestOptions): Promise<Usage> {
    const { data } = await this.core.request<Usage>({
      method: "GET",
      path: "/api/v1/usage",
      query: { granularity: params.granularity, start: instant(params.start), end: instant(params.end) },
      retry: "idempotent",
      options,
    });
    return data;
  }
}
