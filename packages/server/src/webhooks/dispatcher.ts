/**
 * Delivers one event to one endpoint per job: a signed POST (Standard Webhooks), 10 s timeout,
 * no redirects, 2xx = success. Every attempt is logged in webhook_deliveries. A failure is retried
 * on the configured schedule (with jitter) by rescheduling the same job; an endpoint that has only
 * failed for the auto-disable period is disabled.
 *
 * Each attempt holds a delivery slot (inflight.ts): when its endpoint or account already has its
 * share of deliveries in flight, the job does not attempt, logs nothing and runs again a second
 * or so later. That is not an attempt: it neither counts towards the retry schedule nor appears
 * in the delivery log. Every path (events, `test`, redelivery) goes through here.
 */
import type { Logger } from "pino";
import { OutboundError, readSnippet, safeFetch } from "../net/safe-fetch.js";
import type { GuardOptions, LookupFn } from "../net/url-guard.js";
import type { JobHandler, JobResult } from "../queue/queue.js";
import type { Db } from "../store/db.js";
import type { WebhookEndpointsTable, WebhookEventsTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import { DeliverySlots, SLOT_MARGIN_MS } from "./inflight.js";
import type { WebhookService } from "./service.js";
import { signatureHeaders } from "./signing.js";

export interface DispatcherOptions {
  /** Delay before retry n (1-based); its length + 1 is the number of attempts. */
  retryScheduleMs: number[];
  autoDisableAfterMs: number;
  timeoutMs: number;
  guard: GuardOptions;
  lookup?: LookupFn;
  /** Deliveries in flight at once, across every process. */
  maxInFlight: { perEndpoint: number; perAccount: number };
}

const RESPONSE_SNIPPET_BYTES = 1024;
const USER_AGENT = "Framegate-Webhooks/1.0";

/** A delivery that found no free slot looks again after 1–3 s (spread, so waiting jobs do not wake together). */
const SLOT_WAIT_MS = [1000, 3000] as const;

export class WebhookDispatcher {
  private readonly slots: DeliverySlots;

  constructor(
    private readonly deps: { db: Db; clock: Clock; log: Logger; webhooks: WebhookService },
    private readonly opts: DispatcherOptions,
  ) {
    this.slots = new DeliverySlots(deps.db, deps.clock, {
      ...opts.maxInFlight,
      holdMs: opts.timeoutMs + SLOT_MARGIN_MS,
    });
  }

  handler(): JobHandler {
    return {
      run: (payload) =>
        this.deliver(
          String(payload.eventId),
          String(payload.endpointId),
          typeof payload.since === "string" ? payload.since : undefined,
        ),
    };
  }

  /** One delivery job: an attempt inside a delivery slot, or (no slot free) a later look. */
  async deliver(eventId: string, endpointId: string, since?: string): Promise<JobResult> {
    const { db, clock, log } = this.deps;
    const event = await db.selectFrom("webhook_events").selectAll().where("id", "=", eventId).executeTakeFirst();
    const endpoint = await db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "=", endpointId)
      .executeTakeFirst();
    if (!event || !endpoint || endpoint.account_id !== event.account_id) return;
    if (endpoint.revoked_at || endpoint.status !== "active") {
      log.info({ eventId, endpointId, status: endpoint.status }, "webhook delivery skipped: endpoint not active");
      return;
    }
    const slot = await this.slots.acquire(endpoint.account_id, endpointId);
    if (slot === undefined) {
      log.debug({ eventId, endpointId }, "webhook delivery waits: endpoint or account at its in-flight limit");
      const [min, max] = SLOT_WAIT_MS;
      return { retryAt: addMs(clock.now(), Math.round(min + Math.random() * (max - min))) };
    }
    try {
      return await this.attempt(event, endpoint, since);
    } finally {
      await this.slots.release(slot).catch((error) => {
        // It expires on its own (holdMs); until then it counts against the endpoint's share.
        log.warn({ err: error, endpointId }, "could not release a webhook delivery slot");
      });
    }
  }

  /**
   * One attempt. Attempt numbers count every delivery of this event to this endpoint; the retry
   * schedule counts only those since `since` (when this delivery job was queued), so a manual
   * redelivery gets a full schedule of its own.
   */
  private async attempt(
    event: WebhookEventsTable,
    endpoint: WebhookEndpointsTable,
    since: string | undefined,
  ): Promise<JobResult> {
    const { db, clock, log } = this.deps;
    const eventId = event.id;
    const endpointId = endpoint.id;
    const previous = await db
      .selectFrom("webhook_deliveries")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("event_id", "=", eventId)
      .where("endpoint_id", "=", endpointId)
      .executeTakeFirstOrThrow();
    const attempt = Number(previous.n) + 1;
    const inThisRun = since
      ? Number(
          (
            await db
              .selectFrom("webhook_deliveries")
              .select((eb) => eb.fn.countAll<number>().as("n"))
              .where("event_id", "=", eventId)
              .where("endpoint_id", "=", endpointId)
              .where("created_at", ">=", since)
              .executeTakeFirstOrThrow()
          ).n,
        ) + 1
      : attempt;

    const started = clock.now();
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      ...signatureHeaders(
        this.deps.webhooks.signingSecrets(endpoint),
        event.id,
        Math.floor(started.getTime() / 1000),
        event.payload,
      ),
    };
    let status: number | null = null;
    let error: string | null = null;
    let body: string | null = null;
    try {
      const response = await safeFetch(endpoint.url, {
        ...this.opts.guard,
        method: "POST",
        headers,
        body: event.payload,
        maxRedirects: 0,
        // No cap on the declared size: only the first 1 KiB is read (readSnippet), and a 2xx with a
        // large body is still a success (a Content-Length over a cap would make safeFetch throw).
        maxBytes: Number.MAX_SAFE_INTEGER,
        timeoutMs: this.opts.timeoutMs,
        ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}),
      });
      status = response.status;
      body = await readSnippet(response, RESPONSE_SNIPPET_BYTES);
      if (status < 200 || status > 299) {
        error = status >= 300 && status < 400 ? `redirect (HTTP ${status}) not followed` : `HTTP ${status}`;
      }
    } catch (failure) {
      error = failure instanceof OutboundError ? `${failure.kind}: ${failure.message}` : "delivery failed";
    }
    const durationMs = clock.now().getTime() - started.getTime();
    const succeeded = error === null;
    const nowIso = clock.now().toISOString();

    const nextAttemptAt = await db.transaction().execute(async (trx) => {
      // The failure window as it is now, not as it was before the request: a success committed
      // meanwhile (another delivery to this endpoint) has closed the old one. The row stays locked
      // until commit, so concurrent deliveries to this endpoint update the window one at a time.
      const current = await trx
        .selectFrom("webhook_endpoints")
        .select("failing_since")
        .where("id", "=", endpointId)
        .forUpdate()
        .executeTakeFirst();
      const failingSince = current?.failing_since ?? nowIso;
      const disable = !succeeded && Date.parse(nowIso) - Date.parse(failingSince) >= this.opts.autoDisableAfterMs;
      // An attempt that disables the endpoint schedules (and logs) no further attempt.
      const retryDelay = succeeded || disable ? undefined : this.opts.retryScheduleMs[inThisRun - 1];
      const next = retryDelay === undefined ? null : addMs(new Date(nowIso), jitter(retryDelay));
      await trx
        .insertInto("webhook_deliveries")
        .values({
          id: newId("whdel"),
          event_id: eventId,
          endpoint_id: endpointId,
          attempt,
          status: succeeded ? "succeeded" : "failed",
          response_status: status,
          duration_ms: durationMs,
          error,
          response_body: body,
          next_attempt_at: next?.toISOString() ?? null,
          created_at: nowIso,
        })
        .execute();
      if (succeeded) {
        await trx
          .updateTable("webhook_endpoints")
          .set({ last_success_at: nowIso, failure_count: 0, failing_since: null })
          .where("id", "=", endpointId)
          .execute();
        return next;
      }
      await trx
        .updateTable("webhook_endpoints")
        .set({
          last_failure_at: nowIso,
          failure_count: (eb) => eb("failure_count", "+", 1),
          failing_since: failingSince,
          ...(disable ? { status: "disabled" as const, disabled_at: nowIso, updated_at: nowIso } : {}),
        })
        .where("id", "=", endpointId)
        .where("status", "=", "active")
        .execute();
      if (disable)
        log.warn({ endpointId }, "webhook endpoint disabled after failing for the whole auto-disable period");
      return next;
    });
    log.info({ eventId, endpointId, attempt, status, error, durationMs }, "webhook delivery attempt");
    return nextAttemptAt ? { retryAt: nextAttemptAt } : undefined;
  }
}

/** ±10 % so retries of many deliveries that failed together do not arrive together. */
function jitter(ms: number): number {
  return Math.max(0, Math.round(ms * (0.9 + Math.random() * 0.2)));
}
