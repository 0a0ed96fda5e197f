/**
 * `framegate webhooks rotate|enable|disable|events|redeliver`: the endpoint's secret and state, and
 * the account's events. (create, list, test, deliveries and delete are in api.ts.)
 */
import type { WebhookEvent } from "@framegate/sdk";
import { type ApiContext, endpointText } from "./api.js";
import { usageError } from "./output.js";
import { collect, formatTable, MAX_PAGE_SIZE, parseLimit } from "./pages.js";
import { WEBHOOK_EVENT_TYPES } from "./params.js";

/** Event types `webhooks events --type` takes: the subscribable ones and `webhook.test`. */
export const EVENT_FILTER_TYPES: readonly string[] = [...WEBHOOK_EVENT_TYPES, "webhook.test"];

export async function webhooksRotate(ctx: ApiContext, id: string): Promise<void> {
  const endpoint = await ctx.client.webhooks.rotateSecret(id, { signal: ctx.signal });
  ctx.out.result(
    endpoint,
    [
      `rotated the signing secret of ${endpoint.id}`,
      "",
      `  new signing secret: ${endpoint.signing_secret}`,
      "",
      "This is the only time the new secret is shown; store it now. Deliveries carry signatures",
      "with both the old and the new secret for 24 hours, so receivers can switch over.",
    ].join("\n"),
  );
}

/**
 * `enable` / `disable` (PATCH status). Enabling also starts a fresh failure window on the server,
 * so an endpoint that was disabled after days of failures is not disabled again by the next one.
 */
export async function webhooksSetStatus(ctx: ApiContext, id: string, status: "active" | "disabled"): Promise<void> {
  const endpoint = await ctx.client.webhooks.update(id, { status }, { signal: ctx.signal });
  ctx.out.result(endpoint, `${status === "active" ? "enabled" : "disabled"} ${endpointText(endpoint)}`);
}

export interface EventsOptions {
  type?: string;
  limit?: string;
}

/** Local checks of `webhooks events`: --type and --limit. */
export function checkEvents(opts: EventsOptions): { limit: number; type: string | undefined } {
  if (opts.type !== undefined && !EVENT_FILTER_TYPES.includes(opts.type)) {
    throw usageError(`--type must be one of ${EVENT_FILTER_TYPES.join(", ")} (got "${opts.type}")`);
  }
  return { limit: parseLimit(opts.limit), type: opts.type };
}

/** What an event is about: the task and its status, or the endpoint a test went to. */
function subjectOf(event: WebhookEvent): string {
  if (event.type === "webhook.test") return `endpoint ${event.data.endpoint_id}`;
  return `${event.data.id} ${event.data.status}`;
}

export async function webhooksEvents(ctx: ApiContext, opts: EventsOptions): Promise<void> {
  const { limit, type } = checkEvents(opts);
  const list = await collect(
    ctx.client.webhooks.events(
      { limit: Math.min(limit, MAX_PAGE_SIZE), ...(type ? { type: type as WebhookEvent["type"] } : {}) },
      { signal: ctx.signal },
    ),
    limit,
  );
  if (list.data.length === 0) {
    ctx.out.result(list, "no webhook events");
    return;
  }
  const rows = list.data.map((e) => [e.id, e.created_at, e.type, subjectOf(e)]);
  const more = list.has_more ? `\n… more than ${limit}: raise --limit` : "";
  ctx.out.result(list, `${formatTable(["ID", "CREATED", "TYPE", "SUBJECT"], rows)}${more}`);
}

export async function webhooksRedeliver(ctx: ApiContext, eventId: string): Promise<void> {
  const queued = await ctx.client.webhooks.redeliver(eventId, { signal: ctx.signal });
  const to = queued.endpoint_ids.length ? queued.endpoint_ids.join(", ") : "no endpoint (none is subscribed to it)";
  ctx.out.result(
    queued,
    `queued ${queued.event_id} again for ${to}\n  follow it with: framegate webhooks deliveries <endpoint id>`,
  );
}
