import type { Core, RequestOptions } from "../core.js";
import { PagePromise } from "../pagination.js";
import type {
  ListResponse,
  Redelivery,
  TestEvent,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointCreateParams,
  WebhookEndpointUpdateParams,
  WebhookEvent,
  WebhookEventType,
} from "../types.js";
import { type VerifyOptions, verifyWebhook, type WebhookHeaders } from "../webhook-verify.js";

/** An endpoint as create and rotate-secret return it: with its signing secret (shown only then). */
export type WebhookEndpointWithSecret = WebhookEndpoint & { signing_secret: string };

export interface PageParams {
  limit?: number;
  startingAfter?: string;
}

export interface DeliveryListParams extends PageParams {
  status?: "succeeded" | "failed";
}

export interface EventListParams extends PageParams {
  type?: WebhookEventType | "webhook.test";
}

export class Webhooks {
  constructor(private readonly core: Core) {}

  private get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.core.request<T>({ method: "GET", path, retry: "idempotent", options }).then((r) => r.data);
  }

  private post<T>(path: string, json: unknown, options?: RequestOptions): Promise<T> {
    return this.core.request<T>({ method: "POST", path, json, retry: "unsafe", options }).then((r) => r.data);
  }

  private list_<T extends { id: string }>(
    path: string,
    params: PageParams,
    filters: Record<string, string | undefined>,
    options?: RequestOptions,
  ): PagePromise<T> {
    return new PagePromise<T>(async (startingAfter) => {
      const { data } = await this.core.request<ListResponse<T>>({
        method: "GET",
        path,
        query: { limit: params.limit, starting_after: startingAfter, ...filters },
        retry: "idempotent",
        options,
      });
      return data;
    }, params.startingAfter);
  }

  /** POST /api/v1/webhooks → the endpoint with its `signing_secret` (keep it: it is shown only here). */
  create(body: WebhookEndpointCreateParams, options?: RequestOptions): Promise<WebhookEndpointWithSecret> {
    return this.post("/api/v1/webhooks", body, options);
  }

  /** GET /api/v1/webhooks (newest first); `for await` walks every page. */
  list(params: PageParams = {}, options?: RequestOptions): PagePromise<WebhookEndpoint> {
    return this.list_("/api/v1/webhooks", params, {}, options);
  }

  /** GET /api/v1/webhooks/{id}. */
  retrieve(id: string, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.get(`/api/v1/webhooks/${encodeURIComponent(id)}`, options);
  }

  /** PATCH /api/v1/webhooks/{id}: name, url, event_types, status (`active` re-enables). */
  async update(id: string, body: WebhookEndpointUpdateParams, options?: RequestOptions): Promise<WebhookEndpoint> {
    const { data } = await this.core.request<WebhookEndpoint>({
      method: "PATCH",
      path: `/api/v1/webhooks/${encodeURIComponent(id)}`,
      json: body,
      retry: "idempotent",
      options,
    });
    return data;
  }

  /** DELETE /api/v1/webhooks/{id} → the endpoint as deleted (`revoked_at` set). */
  async delete(id: string, options?: RequestOptions): Promise<WebhookEndpoint> {
    const { data } = await this.core.request<WebhookEndpoint>({
      method: "DELETE",
      path: `/api/v1/webhooks/${encodeURIComponent(id)}`,
      retry: "idempotent",
      options,
    });
    return data;
  }

  /** POST /api/v1/webhooks/{id}/rotate-secret → a new `signing_secret`; the old one keeps signing for 24 h. */
  rotateSecret(id: string, options?: RequestOptions): Promise<WebhookEndpointWithSecret> {
    return this.post(`/api/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`, undefined, options);
  }

  /** POST /api/v1/webhooks/{id}/test → the `webhook.test` event queued for this endpoint. */
  test(id: string, options?: RequestOptions): Promise<TestEvent> {
    return this.post(`/api/v1/webhooks/${encodeURIComponent(id)}/test`, undefined, options);
  }

  /** GET /api/v1/webhooks/{id}/deliveries: every delivery attempt, newest first. */
  deliveries(id: string, params: DeliveryListParams = {}, options?: RequestOptions): PagePromise<WebhookDelivery> {
    return this.list_(
      `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries`,
      params,
      { status: params.status },
      options,
    );
  }

  /** GET /api/v1/webhook-events: the account's events, newest first. */
  events(params: EventListParams = {}, options?: RequestOptions): PagePromise<WebhookEvent> {
    return this.list_("/api/v1/webhook-events", params, { type: params.type }, options);
  }

  /** POST /api/v1/webhook-events/{id}/redeliver (Framegate extra): sends the event again. */
  redeliver(eventId: string, options?: RequestOptions): Promise<Redelivery> {
    return this.post(`/api/v1/webhook-events/${encodeURIComponent(eventId)}/redeliver`, undefined, options);
  }

  /**
   * Verifies a delivery (Standard Webhooks, WebCrypto HMAC-SHA256) and returns its event. Pass the
   * raw body exactly as received. Throws WebhookVerificationError. Needs no client or API key:
   * `verifyWebhook` is the same function, standalone.
   */
  verify(
    rawBody: string | ArrayBuffer | ArrayBufferView,
    headers: WebhookHeaders,
    secret: string | readonly string[],
    options?: VerifyOptions,
  ): Promise<WebhookEvent> {
    return verifyWebhook(rawBody, headers, secret, options);
  }
}
