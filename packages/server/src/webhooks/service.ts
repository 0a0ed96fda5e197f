/**
 * Webhook endpoints, events and the delivery log, all scoped to one account: another account's
 * endpoint, event or delivery is not_found.
 */
import type { WebhookDeliverySchema, WebhookEndpointSchema } from "@framegate/contract";
import { z } from "zod";
import { lockQuotas, type Quotas, webhookEndpointQuotaExceeded } from "../accounts/quotas.js";
import { ApiError } from "../errors.js";
import {
  checkUrl,
  type GuardOptions,
  INSECURE,
  type LookupFn,
  REASON_FORBIDDEN_RESOLUTION,
  resolveAndCheck,
} from "../net/url-guard.js";
import type { Queue } from "../queue/queue.js";
import type { Db } from "../store/db.js";
import { newestFirst, resolveCursor } from "../store/pagination.js";
import type { WebhookDeliveriesTable, WebhookEndpointsTable, WebhookEventsTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import {
  DEFAULT_TASK_EVENT_TYPES,
  deliveryJob,
  type EventEnvelope,
  insertEvent,
  subscribedEndpoints,
  TASK_EVENT_TYPES,
} from "./events.js";
import { generateSigningSecret, type SecretBox, secretPreview } from "./signing.js";

/** After a rotation the old secret keeps signing alongside the new one for this long. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

export const CreateEndpointBody = z
  .object({
    name: z.string().trim().max(200).nullable().optional(),
    url: z.string().max(2048),
    event_types: z.array(z.enum(TASK_EVENT_TYPES)).min(1).optional(),
  })
  .strict();

/**
 * The refusal of an endpoint URL. A developer pointing a webhook at a receiver on their own machine
 * (http://localhost:3000/hook) is told the setting that allows it; any other refusal (credentials,
 * a fragment, a name that does not resolve) gets no such hint, since the setting would not help.
 */
function urlRejected(reason: string, insecureSettingWouldAllow: boolean): ApiError {
  const hint = insecureSettingWouldAllow
    ? " For local development, setting WEBHOOK_ALLOW_INSECURE_URLS=true on the server allows http URLs and loopback or private hosts."
    : "";
  return new ApiError("webhook_url_rejected", `The webhook URL is not allowed: ${reason}${hint}`);
}

export const UpdateEndpointBody = z
  .object({
    name: z.string().trim().max(200).nullable().optional(),
    url: z.string().max(2048).optional(),
    event_types: z.array(z.enum(TASK_EVENT_TYPES)).min(1).optional(),
    status: z.enum(["active", "disabled"]).optional(),
  })
  .strict();

/** The wire objects, as the contract package defines them (also for the OpenAPI document). */
export type EndpointObject = z.infer<typeof WebhookEndpointSchema>;
export type DeliveryObject = z.infer<typeof WebhookDeliverySchema>;

export interface Page {
  limit: number;
  startingAfter?: string;
}

export class WebhookService {
  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      queue: Queue;
      box: SecretBox;
      guard: GuardOptions;
      lookup?: LookupFn;
      /** Defaults of the account quotas; here only maxWebhookEndpoints counts. */
      quotas: Quotas;
    },
  ) {}

  private async checkEndpointUrl(raw: string): Promise<string> {
    const syntax = checkUrl(raw, this.deps.guard);
    if (!syntax.ok) {
      // Refused only for being http or local: a URL the development setting would take.
      throw urlRejected(syntax.reason, !this.deps.guard.allowPrivateAddresses && checkUrl(raw, INSECURE).ok);
    }
    const host = syntax.url.hostname.replace(/^\[|\]$/g, "");
    const resolved = await resolveAndCheck(host, this.deps.guard, this.deps.lookup);
    if (!resolved.ok) throw urlRejected(resolved.reason, resolved.reason === REASON_FORBIDDEN_RESOLUTION);
    return syntax.url.toString();
  }

  serialize(row: WebhookEndpointsTable, signingSecret?: string): EndpointObject {
    return {
      id: row.id,
      object: "webhook_endpoint",
      name: row.name,
      url: row.url,
      event_types: JSON.parse(row.event_types) as EndpointObject["event_types"],
      status: row.status,
      secret_preview: row.secret_preview,
      ...(signingSecret ? { signing_secret: signingSecret } : {}),
      last_success_at: row.last_success_at,
      last_failure_at: row.last_failure_at,
      failure_count: row.failure_count,
      created_at: row.created_at,
      updated_at: row.updated_at,
      disabled_at: row.disabled_at,
      revoked_at: row.revoked_at,
    };
  }

  async create(accountId: string, body: z.infer<typeof CreateEndpointBody>): Promise<EndpointObject> {
    const url = await this.checkEndpointUrl(body.url);
    const secret = generateSigningSecret();
    const now = this.deps.clock.now().toISOString();
    const row: WebhookEndpointsTable = {
      id: newId("whend"),
      account_id: accountId,
      name: body.name ?? null,
      url,
      event_types: JSON.stringify([...new Set(body.event_types ?? DEFAULT_TASK_EVENT_TYPES)]),
      status: "active",
      secret_encrypted: this.deps.box.seal(secret),
      secret_preview: secretPreview(secret),
      previous_secret_encrypted: null,
      previous_secret_expires_at: null,
      failure_count: 0,
      failing_since: null,
      last_success_at: null,
      last_failure_at: null,
      created_at: now,
      updated_at: now,
      disabled_at: null,
      revoked_at: null,
    };
    // Counted and inserted under the account's lock, so concurrent creates cannot both take the last place.
    await this.deps.db.transaction().execute(async (trx) => {
      const { maxWebhookEndpoints } = await lockQuotas(trx, accountId, this.deps.quotas);
      const live = await trx
        .selectFrom("webhook_endpoints")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("account_id", "=", accountId)
        .where("revoked_at", "is", null)
        .executeTakeFirstOrThrow();
      const count = Number(live.n);
      if (count >= maxWebhookEndpoints) throw webhookEndpointQuotaExceeded(count, maxWebhookEndpoints);
      await trx.insertInto("webhook_endpoints").values(row).execute();
    });
    return this.serialize(row, secret);
  }

  async find(accountId: string, id: string): Promise<WebhookEndpointsTable> {
    const row = await this.deps.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "=", id)
      .where("account_id", "=", accountId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Webhook endpoint not found.");
    return row;
  }

  async list(accountId: string, page: Page): Promise<{ data: EndpointObject[]; has_more: boolean }> {
    const rows = await this.paginate<WebhookEndpointsTable>(
      this.deps.db
        .selectFrom("webhook_endpoints")
        .selectAll()
        .where("account_id", "=", accountId)
        .where("revoked_at", "is", null),
      "webhook_endpoints",
      accountId,
      page,
    );
    return { data: rows.data.map((r) => this.serialize(r)), has_more: rows.has_more };
  }

  async update(accountId: string, id: string, body: z.infer<typeof UpdateEndpointBody>): Promise<EndpointObject> {
    const row = await this.find(accountId, id);
    const now = this.deps.clock.now().toISOString();
    const changes: Partial<WebhookEndpointsTable> = { updated_at: now };
    if (body.name !== undefined) changes.name = body.name;
    if (body.url !== undefined) changes.url = await this.checkEndpointUrl(body.url);
    if (body.event_types !== undefined) changes.event_types = JSON.stringify([...new Set(body.event_types)]);
    if (body.status === "active" && row.status !== "active") {
      // Re-enabling starts a fresh failure window.
      Object.assign(changes, { status: "active", disabled_at: null, failing_since: null, failure_count: 0 });
    } else if (body.status === "disabled" && row.status !== "disabled") {
      Object.assign(changes, { status: "disabled", disabled_at: now });
    }
    await this.deps.db.updateTable("webhook_endpoints").set(changes).where("id", "=", id).execute();
    return this.serialize({ ...row, ...changes });
  }

  async remove(accountId: string, id: string): Promise<EndpointObject> {
    const row = await this.find(accountId, id);
    const now = this.deps.clock.now().toISOString();
    const changes = {
      revoked_at: now,
      updated_at: now,
      status: "disabled" as const,
      disabled_at: row.disabled_at ?? now,
    };
    await this.deps.db.updateTable("webhook_endpoints").set(changes).where("id", "=", id).execute();
    return this.serialize({ ...row, ...changes });
  }

  async rotateSecret(accountId: string, id: string): Promise<EndpointObject> {
    const row = await this.find(accountId, id);
    const now = this.deps.clock.now();
    const secret = generateSigningSecret();
    const changes = {
      secret_encrypted: this.deps.box.seal(secret),
      secret_preview: secretPreview(secret),
      previous_secret_encrypted: row.secret_encrypted,
      previous_secret_expires_at: addMs(now, ROTATION_OVERLAP_MS).toISOString(),
      updated_at: now.toISOString(),
    };
    await this.deps.db.updateTable("webhook_endpoints").set(changes).where("id", "=", id).execute();
    return this.serialize({ ...row, ...changes }, secret);
  }

  /** Secrets that sign a delivery now: the current one, and the previous one during the overlap. */
  signingSecrets(row: WebhookEndpointsTable): string[] {
    const secrets = [this.deps.box.open(row.secret_encrypted)];
    if (
      row.previous_secret_encrypted &&
      row.previous_secret_expires_at &&
      row.previous_secret_expires_at > this.deps.clock.now().toISOString()
    ) {
      secrets.push(this.deps.box.open(row.previous_secret_encrypted));
    }
    return secrets;
  }

  /** Sends a `webhook.test` event to this endpoint only. */
  async sendTest(accountId: string, id: string): Promise<EventEnvelope> {
    const endpoint = await this.find(accountId, id);
    if (endpoint.status !== "active") {
      throw new ApiError("validation_failed", "This endpoint is disabled; re-enable it (PATCH status active) first.", {
        details: [{ path: "status", issue: "endpoint is disabled" }],
      });
    }
    const { db, clock, queue } = this.deps;
    const envelope = await db.transaction().execute(async (trx) => {
      const event = await insertEvent(trx, clock, {
        accountId,
        type: "webhook.test",
        endpointId: endpoint.id,
        data: { message: "This is a test event from Framegate.", endpoint_id: endpoint.id },
      });
      if (!event) throw new Error("test event not recorded");
      await queue.enqueue(trx, deliveryJob(event.id, endpoint.id, clock.now()));
      return JSON.parse(event.payload) as EventEnvelope;
    });
    queue.notify();
    return envelope;
  }

  async getEvent(accountId: string, id: string): Promise<WebhookEventsTable> {
    const row = await this.deps.db
      .selectFrom("webhook_events")
      .selectAll()
      .where("id", "=", id)
      .where("account_id", "=", accountId)
      .executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Event not found.");
    return row;
  }

  async listEvents(
    accountId: string,
    page: Page & { type?: string },
  ): Promise<{ data: EventEnvelope[]; has_more: boolean }> {
    let q = this.deps.db.selectFrom("webhook_events").selectAll().where("account_id", "=", accountId);
    if (page.type) q = q.where("type", "=", page.type);
    const rows = await this.paginate<WebhookEventsTable>(q, "webhook_events", accountId, page);
    return { data: rows.data.map((r) => JSON.parse(r.payload) as EventEnvelope), has_more: rows.has_more };
  }

  /** Replays an event to the endpoints it concerns now (extra, beyond Rivya). */
  async redeliver(accountId: string, eventId: string): Promise<{ event_id: string; endpoint_ids: string[] }> {
    const event = await this.getEvent(accountId, eventId);
    const { db, queue } = this.deps;
    const endpointIds = event.endpoint_id
      ? (await this.find(accountId, event.endpoint_id)) && [event.endpoint_id]
      : await subscribedEndpoints(db, accountId, event.type as never);
    const now = this.deps.clock.now();
    await db.transaction().execute(async (trx) => {
      for (const endpointId of endpointIds) {
        await queue.enqueue(trx, deliveryJob(event.id, endpointId, now, now.getTime()));
      }
    });
    queue.notify();
    return { event_id: event.id, endpoint_ids: endpointIds };
  }

  async listDeliveries(
    accountId: string,
    endpointId: string,
    page: Page & { status?: "succeeded" | "failed" },
  ): Promise<{ data: DeliveryObject[]; has_more: boolean }> {
    const endpoint = await this.find(accountId, endpointId);
    let q = this.deps.db
      .selectFrom("webhook_deliveries")
      .innerJoin("webhook_events", "webhook_events.id", "webhook_deliveries.event_id")
      .selectAll("webhook_deliveries")
      .select("webhook_events.type as event_type")
      .where("webhook_deliveries.endpoint_id", "=", endpoint.id);
    if (page.status) q = q.where("webhook_deliveries.status", "=", page.status);
    const cursor = await resolveCursor(page.startingAfter, (id) =>
      this.deps.db
        .selectFrom("webhook_deliveries")
        .select(["created_at", "id"])
        .where("id", "=", id)
        .where("endpoint_id", "=", endpoint.id)
        .executeTakeFirst(),
    );
    const rows = await newestFirst<WebhookDeliveriesTable & { event_type: string }>(q, cursor, page.limit, {
      createdAt: "webhook_deliveries.created_at",
      id: "webhook_deliveries.id",
    });
    return { data: rows.data.map((r) => serializeDelivery(r, r.event_type)), has_more: rows.has_more };
  }

  /** Newest first, with a cursor that must belong to the same account. */
  private async paginate<T>(
    // biome-ignore lint/suspicious/noExplicitAny: a select builder over one of the account-scoped tables
    query: any,
    table: "webhook_endpoints" | "webhook_events",
    accountId: string,
    page: Page,
  ): Promise<{ data: T[]; has_more: boolean }> {
    const cursor = await resolveCursor(page.startingAfter, (id) =>
      this.deps.db
        .selectFrom(table)
        .select(["created_at", "id"])
        .where("id", "=", id)
        .where("account_id", "=", accountId)
        .executeTakeFirst(),
    );
    return newestFirst<T>(query, cursor, page.limit);
  }
}

export function serializeDelivery(row: WebhookDeliveriesTable, eventType: string): DeliveryObject {
  return {
    id: row.id,
    object: "webhook_delivery",
    event_id: row.event_id,
    endpoint_id: row.endpoint_id,
    event_type: eventType,
    attempt: row.attempt,
    status: row.status,
    response_status: row.response_status,
    duration_ms: row.duration_ms,
    error: row.error,
    response_body: row.response_body,
    next_attempt_at: row.next_attempt_at,
    created_at: row.created_at,
  };
}
