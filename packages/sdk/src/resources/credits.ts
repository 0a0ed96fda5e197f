import type { Core, RequestOptions } from "../core.js";
import type { Credits as CreditsObject } from "../types.js";

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
}
