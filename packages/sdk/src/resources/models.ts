import type { Core, RequestOptions } from "../core.js";
import type { ModelList } from "../types.js";

export class Models {
  constructor(private readonly core: Core) {}

  /** GET /api/v1/models: the public catalog (no API key needed). */
  async list(options?: RequestOptions): Promise<ModelList> {
    const { data } = await this.core.request<ModelList>({
      method: "GET",
      path: "/api/v1/models",
      retry: "idempotent",
      options,
    });
    return data;
  }
}
