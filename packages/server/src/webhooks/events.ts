/**
 * Webhook events: recorded inside the transaction of the change they announce, together with one
 * delivery job per subscribed endpoint, so an event (and its deliveries) exists exactly when the
 * change committed.
 */
import type { Task } from "@framegate/contract";
import type { Queue } from "../queue/queue.js";
import type { Executor } from "../store/db.js";
import { PreparedQuery } from "../store/prepared.js";
import type { WebhookEventsTable } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";

export const API_VERSION = "2026-05-11";
export const DELIVER_JOB = "webhook.deliver";
/** What an endpoint may subscribe to; `generation.processing` is opt-in (not in the default set). */
export const TASK_EVENT_TYPES = ["generation.succeeded", "generation.failed", "generation.processing"] as const;
/** An endpoint created without `event_types` gets these: the terminal events of Rivya v1. */
export const DEFAULT_TASK_EVENT_TYPES = ["generation.succeeded", "generation.failed"] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];
export type EventType = TaskEventType | "webhook.test";

export interface EventEnvelope {
  id: string;
  object: "event";
  type: EventType;
  api_version: string;
  created_at: string;
  data: unknown;
}

export function deliveryJob(eventId: string, endpointId: string, queuedAt: Date, generation = 0) {
  return {
    kind: DELIVER_JOB,
    // The generation lets the delivery name its own job (deliveryJobKey) to be woken by it.
    payload: { eventId, endpointId, since: queuedAt.toISOString(), generation },
    key: deliveryJobKey(eventId, endpointId, generation),
    maxAttempts: 20,
  };
}

/** One pending delivery per (event, endpoint); a redelivery is a new generation of it. */
export function deliveryJobKey(eventId: string, endpointId: string, generation: number): string {
  return `whdel:${eventId}:${endpointId}:${generation}`;
}

export async function insertEvent(
  db: Executor,
  clock: Clock,
  input: { accountId: string; type: EventType; data: unknown; taskId?: string; endpointId?: string },
): Promise<WebhookEventsTable | undefined> {
  const id = newId("evt");
  const createdAt = clock.now().toISOString();
  const envelope: EventEnvelope = {
    id,
    object: "event",
    type: input.type,
    api_version: API_VERSION,
    created_at: createdAt,
    data: input.data,
  };
  const row: WebhookEventsTable = {
    id,
    account_id: input.accountId,
    type: input.type,
    task_id: input.taskId ?? null,
    endpoint_id: input.endpointId ?? null,
    payload: JSON.stringify(envelope),
    created_at: createdAt,
  };
  const inserted = await insertEventQuery.execute(
    db,
    row.id,
    row.account_id,
    row.type,
    row.task_id,
    row.endpoint_id,
    row.payload,
    row.created_at,
  );
  return inserted.length === 1 ? row : undefined;
}

/** Active endpoints of the account that subscribe to `type`. */
export async function subscribedEndpoints(db: Executor, accountId: string, type: EventType): Promise<string[]> {
  const endpoints = await activeEndpoints.execute(db, accountId);
  return endpoints.filter((e) => (JSON.parse(e.event_types) as string[]).includes(type)).map((e) => e.id);
}

/**
 * Records generation.processing for a task that an upstream just accepted, in the transaction that
 * made it `processing`, when an active endpoint of the account subscribes to it (opt-in: without
 * one, no event is recorded at all, so tasks of accounts that do not want it cost one read).
 */
export async function recordProcessingEvent(
  db: Executor,
  deps: { clock: Clock; queue: Queue },
  accountId: string,
  task: () => Promise<Task>,
): Promise<void> {
  const endpoints = await subscribedEndpoints(db, accountId, "generation.processing");
  if (endpoints.length === 0) return;
  const data = await task();
  const event = await insertEvent(db, deps.clock, { accountId, type: "generation.processing", data, taskId: data.id });
  if (!event) return;
  for (const endpointId of endpoints) await deps.queue.enqueue(db, deliveryJob(event.id, endpointId, deps.clock.now()));
}

/** Records generation.succeeded / generation.failed for a task that just became terminal. */
export async function recordTaskEvent(
  db: Executor,
  deps: { clock: Clock; queue: Queue },
  accountId: string,
  task: Task,
): Promise<void> {
  const type: TaskEventType = task.status === "succeeded" ? "generation.succeeded" : "generation.failed";
  const event = await insertEvent(db, deps.clock, { accountId, type, data: task, taskId: task.id });
  if (!event) return;
  for (const endpointId of await subscribedEndpoints(db, accountId, type)) {
    await deps.queue.enqueue(db, deliveryJob(event.id, endpointId, deps.clock.now()));
  }
}

// Run for every task that ends (and every one that starts): compiled once (store/prepared.ts).

/** Records an event unless the task already has one of its type; returns its id when recorded. */
const insertEventQuery = new PreparedQuery(
  (
    db,
    id: string,
    accountId: string,
    type: string,
    taskId: string | null,
    endpointId: string | null,
    payload: string,
    createdAt: string,
  ) =>
    db
      .insertInto("webhook_events")
      .values({
        id,
        account_id: accountId,
        type,
        task_id: taskId,
        endpoint_id: endpointId,
        payload,
        created_at: createdAt,
      })
      .onConflict((oc) => oc.columns(["task_id", "type"]).doNothing())
      .returning("id"),
  7,
);

const activeEndpoints = new PreparedQuery(
  (db, accountId: string) =>
    db
      .selectFrom("webhook_endpoints")
      .select(["id", "event_types"])
      .where("account_id", "=", accountId)
      .where("status", "=", "active")
      .where("revoked_at", "is", null),
  1,
);
