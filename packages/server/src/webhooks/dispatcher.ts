/**
 * Delivers one event to one endpoint per job: a signed POST (Standard Webhooks), 10 s timeout,
 * no redirects, 2xx = success. Every attempt is logged in webhook_deliveries. A failure is retried
 * on the configured schedule (with jitter) by rescheduling the same job; an endpoint that has only
 * failed for the auto-disable period is disabled.
 *
 * Each attempt holds a delivery slot (inflight.ts): when its endpoint or account already has its
 * share of deliveries in flight, the job does not attempt and logs nothing: it parks until this
 * process gives back a slot it may use, which makes it due at once (slot-waiters.ts), or at the
 * latest until a safety-net retry some seconds later (slots freed by another process, or
 * expired). That is not an attempt: it neither counts towards the retry schedule nor appears in
 * the delivery log. Every path (events, `test`, redelivery) goes through here.
 */
import type { Logger } from "pino";
import { GuardedPool, OutboundError, type OutboundErrorKind, readSnippet, safeFetch } from "../net/safe-fetch.js";
import type { GuardOptions, LookupFn } from "../net/url-guard.js";
import type { Metrics, WebhookOutcome } from "../observability/metrics.js";
import { annotateActiveSpan } from "../observability/tracing.js";
import type { JobHandler, JobResult, Queue } from "../queue/queue.js";
import type { Db } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { PreparedQuery } from "../store/prepared.js";
import type { WebhookEndpointsTable, WebhookEventsTable } from "../store/schema.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import { deliveryJobKey } from "./events.js";
import { DeliverySlots, SLOT_MARGIN_MS } from "./inflight.js";
import type { WebhookService } from "./service.js";
import { signatureHeaders } from "./signing.js";
import { HeldSlots, SlotWaiters } from "./slot-waiters.js";

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

/**
 * A delivery that found no free slot is woken when this process frees one; this only bounds the
 * wait for slots freed elsewhere (another process, an expired slot) or a missed wake. Spread, so
 * parked deliveries do not come back together; long enough that a backlog of them is not retried
 * many times a second (each retry is a claim and a release of its job).
 */
const SLOT_WAIT_MS = [3000, 9000] as const;

export class WebhookDispatcher {
  private readonly slots: DeliverySlots;
  private readonly held = new HeldSlots();
  private readonly waiters = new SlotWaiters();
  /** Kept-alive connections to endpoints, shared by every delivery (each checked when opened). */
  private readonly pool: GuardedPool;

  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      log: Logger;
      webhooks: WebhookService;
      queue: Queue;
      /** Where attempts and their durations are counted. */
      metrics?: Metrics;
    },
    private readonly opts: DispatcherOptions,
  ) {
    this.slots = new DeliverySlots(deps.db, deps.clock, {
      ...opts.maxInFlight,
      holdMs: opts.timeoutMs + SLOT_MARGIN_MS,
    });
    this.pool = new GuardedPool({
      ...opts.guard,
      timeoutMs: opts.timeoutMs,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
  }

  /** Closes the kept-alive connections (after the queue stopped: no delivery is running). */
  close(): Promise<void> {
    return this.pool.close();
  }

  handler(): JobHandler {
    return {
      run: (payload) =>
        this.deliver(
          String(payload.eventId),
          String(payload.endpointId),
          typeof payload.since === "string" ? payload.since : undefined,
          // Jobs queued before the payload named their generation cannot be woken: they use the safety net.
          typeof payload.generation === "number"
            ? deliveryJobKey(String(payload.eventId), String(payload.endpointId), payload.generation)
            : undefined,
        ),
    };
  }

  /**
   * One delivery job: an attempt inside a delivery slot, or (no slot free) parked until a slot is
   * given back. `jobKey` is this delivery's job, for the wake.
   */
  async deliver(eventId: string, endpointId: string, since?: string, jobKey?: string): Promise<JobResult> {
    const { db, log } = this.deps;
    if (jobKey !== undefined) this.waiters.remove(jobKey);
    const { perEndpoint, perAccount } = this.opts.maxInFlight;
    // This process alone holds the endpoint's share: no slot can be free, the store need not be asked.
    if (this.held.byEndpoint(endpointId) >= perEndpoint) return this.park(jobKey, endpointId, undefined);
    const event = await eventById.first(db, eventId);
    const endpoint = await endpointById.first(db, endpointId);
    if (!event || !endpoint || endpoint.account_id !== event.account_id) return;
    if (endpoint.revoked_at || endpoint.status !== "active") {
      log.info({ eventId, endpointId, status: endpoint.status }, "webhook delivery skipped: endpoint not active");
      return;
    }
    const accountId = endpoint.account_id;
    const slot =
      this.held.byAccount(accountId) >= perAccount ? undefined : await this.slots.acquire(accountId, endpointId);
    if (slot === undefined) return this.park(jobKey, endpointId, accountId);
    this.held.take(accountId, endpointId);
    // The attempt's own transaction gives the slot back with the record of the attempt; when the
    // attempt did not get that far, it is given back here.
    let released = false;
    try {
      const result = await this.attempt(event, endpoint, since, slot);
      released = true;
      return result;
    } finally {
      if (!released) {
        released = await this.slots.release(slot).then(
          () => true,
          (error) => {
            // It expires on its own (holdMs); until then it counts against the endpoint's share.
            log.warn({ err: error, endpointId }, "could not release a webhook delivery slot");
            return false;
          },
        );
      }
      this.held.give(accountId, endpointId);
      if (released) await this.wakeNext(accountId, endpointId);
    }
  }

  /** No slot free: the job comes back on the safety net, or sooner when this process frees a slot. */
  private park(jobKey: string | undefined, endpointId: string, accountId: string | undefined): JobResult {
    this.deps.log.debug({ endpointId, jobKey }, "webhook delivery waits: endpoint or account at its in-flight limit");
    if (jobKey !== undefined) this.waiters.park({ key: jobKey, endpointId, accountId });
    const [min, max] = SLOT_WAIT_MS;
    return { retryAt: addMs(this.deps.clock.now(), Math.round(min + Math.random() * (max - min))) };
  }

  /**
   * Hands the slot just given back to the longest-parked delivery that may use it, by making its
   * job due now. A wake that comes while that job is still being parked is kept by the queue
   * (runNow on a running job), so it is not lost between the park and the job's release.
   */
  private async wakeNext(accountId: string, endpointId: string): Promise<void> {
    const perEndpoint = this.opts.maxInFlight.perEndpoint;
    const next = this.waiters.takeNext(accountId, endpointId, (id) => this.held.byEndpoint(id) >= perEndpoint);
    if (!next) return;
    try {
      await this.deps.queue.runNow(this.deps.db, next.key);
    } catch (error) {
      // Its safety-net retry still comes.
      this.deps.log.warn({ err: error, jobKey: next.key }, "could not wake a webhook delivery waiting for a slot");
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
    slot: string,
  ): Promise<JobResult> {
    const { db, clock, log } = this.deps;
    const eventId = event.id;
    const endpointId = endpoint.id;
    // Both counts in one look: every earlier attempt, and those since this job was queued.
    // Without `since`, every attempt counts: the empty string is before any time.
    const previous = (await earlierAttempts.first(db, since ?? "", eventId, endpointId)) ?? { n: 0, since: 0 };
    const attempt = Number(previous.n) + 1;
    const inThisRun = since ? Number(previous.since ?? 0) + 1 : attempt;

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
    let outcome: WebhookOutcome = "succeeded";
    // Real elapsed time for the metric (the injectable clock may stand still in tests).
    const sentAt = performance.now();
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
        pool: this.pool,
      });
      status = response.status;
      body = await readSnippet(response, RESPONSE_SNIPPET_BYTES);
      if (status < 200 || status > 299) {
        const redirect = status >= 300 && status < 400;
        error = redirect ? `redirect (HTTP ${status}) not followed` : `HTTP ${status}`;
        outcome = redirect ? "redirect" : "http_error";
      }
    } catch (failure) {
      error = failure instanceof OutboundError ? `${failure.kind}: ${failure.message}` : "delivery failed";
      outcome = failure instanceof OutboundError ? OUTCOME_OF_FAILURE[failure.kind] : "error";
    }
    const durationMs = clock.now().getTime() - started.getTime();
    this.deps.metrics?.recordWebhookDelivery(outcome, (performance.now() - sentAt) / 1000);
    // What this attempt got, on the delivery job's span (tracing on).
    annotateActiveSpan({
      "framegate.webhook.attempt": attempt,
      "framegate.webhook.outcome": outcome,
      ...(status === null ? {} : { "http.response.status_code": status }),
    });
    const succeeded = error === null;
    const nowIso = clock.now().toISOString();

    const nextAttemptAt = await writeTransaction(db, async (trx) => {
      // The failure window as it is now, not as it was before the request: a success committed
      // meanwhile (another delivery to this endpoint) has closed the old one. The row stays locked
      // until commit, so concurrent deliveries to this endpoint update the window one at a time.
      const current = await failingSinceLocked.first(trx, endpointId);
      const failingSince = current?.failing_since ?? nowIso;
      const disable = !succeeded && Date.parse(nowIso) - Date.parse(failingSince) >= this.opts.autoDisableAfterMs;
      // An attempt that disables the endpoint schedules (and logs) no further attempt.
      const retryDelay = succeeded || disable ? undefined : this.opts.retryScheduleMs[inThisRun - 1];
      const next = retryDelay === undefined ? null : addMs(new Date(nowIso), jitter(retryDelay));
      await insertAttempt.execute(
        trx,
        newId("whdel"),
        eventId,
        endpointId,
        attempt,
        succeeded ? "succeeded" : "failed",
        status,
        durationMs,
        error,
        body,
        next?.toISOString() ?? null,
        nowIso,
      );
      await this.slots.release(slot, trx);
      if (succeeded) {
        await endpointSucceeded.execute(trx, nowIso, endpointId);
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

/** The metrics outcome of a delivery that got no usable answer. */
const OUTCOME_OF_FAILURE: Record<OutboundErrorKind, WebhookOutcome> = {
  blocked: "blocked",
  timeout: "timeout",
  too_large: "too_large",
  http: "http_error",
  network: "network",
  redirects: "redirect",
};

/** ±10 % so retries of many deliveries that failed together do not arrive together. */
function jitter(ms: number): number {
  return Math.max(0, Math.round(ms * (0.9 + Math.random() * 0.2)));
}

// Every delivery runs these: compiled once (store/prepared.ts).

const eventById = new PreparedQuery(
  (db, id: string) => db.selectFrom("webhook_events").selectAll().where("id", "=", id),
  1,
);

const endpointById = new PreparedQuery(
  (db, id: string) => db.selectFrom("webhook_endpoints").selectAll().where("id", "=", id),
  1,
);

/** Every earlier attempt of this event at this endpoint, and those made since `since`. */
const earlierAttempts = new PreparedQuery(
  (db, since: string, eventId: string, endpointId: string) =>
    db
      .selectFrom("webhook_deliveries")
      .select((eb) => [
        eb.fn.countAll<number>().as("n"),
        eb.fn
          .sum<number | string | null>(eb.case().when("created_at", ">=", since).then(eb.lit(1)).else(eb.lit(0)).end())
          .as("since"),
      ])
      .where("event_id", "=", eventId)
      .where("endpoint_id", "=", endpointId),
  3,
);

const failingSinceLocked = new PreparedQuery(
  (db, id: string) => db.selectFrom("webhook_endpoints").select("failing_since").where("id", "=", id).forUpdate(),
  1,
);

const insertAttempt = new PreparedQuery(
  (
    db,
    id: string,
    eventId: string,
    endpointId: string,
    attempt: number,
    status: "succeeded" | "failed",
    responseStatus: number | null,
    durationMs: number,
    error: string | null,
    responseBody: string | null,
    nextAttemptAt: string | null,
    createdAt: string,
  ) =>
    db.insertInto("webhook_deliveries").values({
      id,
      event_id: eventId,
      endpoint_id: endpointId,
      attempt,
      status,
      response_status: responseStatus,
      duration_ms: durationMs,
      error,
      response_body: responseBody,
      next_attempt_at: nextAttemptAt,
      created_at: createdAt,
    }),
  11,
);

const endpointSucceeded = new PreparedQuery(
  (db, now: string, id: string) =>
    db
      .updateTable("webhook_endpoints")
      .set({ last_success_at: now, failure_count: 0, failing_since: null })
      .where("id", "=", id),
  2,
);
