import type { Core, RequestOptions } from "../core.js";
import { PagePromise } from "../pagination.js";
import type { ApiKey, ApiKeyCreateParams, CreatedApiKey, ListResponse } from "../types.js";
import type { PageParams } from "./webhooks.js";

/**
 * The account's API keys (scope `keys:manage`). A created key's secret is in the create answer
 * only; the server keeps its hash.
 */
export class Keys {
  constructor(private readonly core: Core) {}

  /** GET /api/v1/keys (newest first, revoked and expired keys too); `for await` walks every page. */
  list(params: PageParams = {}, options?: RequestOptions): PagePromise<ApiKey> {
    return new PagePromise<ApiKey>(async (startingAfter) => {
      const { data } = await this.core.request<ListResponse<ApiKey>>({
        method: "GET",
        path: "/api/v1/keys",
        query: { limit: params.limit, starting_after: startingAfter },
        retry: "idempotent",
        options,
      });
      return data;
    }, params.startingAfter);
  }

  /**
   * POST /api/v1/keys → the key with its secret in `key` (store it now). Scopes must be ones the
   * calling key holds (default: its own without keys:manage); the expiry no later than its own.
   * Retried only when the server provably did nothing: a retry after a lost answer would make a
   * second key whose secret nobody saw.
   */
  async create(body: ApiKeyCreateParams = {}, options?: RequestOptions): Promise<CreatedApiKey> {
    const { data } = await this.core.request<CreatedApiKey>({
      method: "POST",
      path: "/api/v1/keys",
      json: body,
      retry: "unsafe",
      options,
    });
    return data;
  }

  /** DELETE /api/v1/keys/{id} → the key with `revoked_at` set; it stops working at once. Idempotent. */
  async revoke(id: string, options?: RequestOptions): Promise<ApiKey> {
    const { data } = await this.core.request<ApiKey>({
      method: "DELETE",
      path: `/api/v1/keys/${encodeURIComponent(id)}`,
      retry: "idempotent",
      options,
    });
    return data;
  }
}
