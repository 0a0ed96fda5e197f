/**
 * GET /api/v1/generations/{id}/events: the task's status changes as Server-Sent Events.
 *
 *   retry: 2000                       (once, at the start)
 *   id: 2                             (the status's place: 1 queued, 2 processing, 3 terminal)
 *   data: {…the task, as GET returns it…}
 *   : keep-alive                      (a comment every SSE_HEARTBEAT_MS, at most 15 s)
 *
 * The first event is the current state; then one per change; the stream ends after the terminal
 * event. A reconnect with `Last-Event-ID: n` gets the current state only when it is newer than
 * n, and a reconnect after the terminal event gets 204, which tells EventSource to stop.
 * Authentication, tenant isolation (another account's task is 404) and the stream limits are
 * all decided before the stream starts, so every refusal is a normal JSON error.
 */
import type { Task } from "@framegate/contract";
import type { Hono } from "hono";
import type { Logger } from "pino";
import { ApiError } from "../../errors.js";
import { authOf, requireScope } from "../../http/auth.js";
import type { AppEnv } from "../../http/context.js";
import { GENERATIONS_PATH } from "../routes.js";
import type { GenerationService } from "../service.js";
import { isTerminal, type LiveStatus, sequenceOf, TaskFollower, TERMINAL_SEQUENCE } from "./live-status.js";

export const EVENTS_PATH = `${GENERATIONS_PATH}/:id/events`;
const RECONNECT_DELAY_MS = 2000;

/** Last-Event-ID as one of our sequence numbers; anything else is ignored (a fresh start). */
export function parseLastEventId(header: string | undefined): number | undefined {
  const value = header?.trim();
  if (!value || !/^\d{1,3}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= TERMINAL_SEQUENCE ? n : undefined;
}

export function mountLiveRoutes(
  app: Hono<AppEnv>,
  deps: { generations: Pick<GenerationService, "get">; live: LiveStatus; log: Logger },
) {
  const { live } = deps;
  app.get(EVENTS_PATH, requireScope("generations:read"), async (c) => {
    const { accountId } = authOf(c);
    const id = c.req.param("id");
    const read = () => deps.generations.get(accountId, id);
    const first = await read();
    const lastSeen = parseLastEventId(c.req.header("last-event-id"));
    if (lastSeen === TERMINAL_SEQUENCE && isTerminal(first)) return c.body(null, 204);

    let end = () => {};
    const slot = live.openStream(accountId, () => end());
    if (!slot.ok) throw refusal(slot.reason, live);

    const encoder = new TextEncoder();
    let follower: TaskFollower | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    let ended = false;
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const write = (text: string) => {
      if (!ended) controller?.enqueue(encoder.encode(text));
    };
    end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      follower?.stop();
      slot.done();
      try {
        controller?.close();
      } catch {
        // Already closed or cancelled by the client.
      }
    };
    const send = (task: Task) => {
      write(`id: ${sequenceOf(task)}\ndata: ${JSON.stringify(task)}\n\n`);
      if (isTerminal(task)) end();
    };

    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        controller = ctrl;
        write(`retry: ${RECONNECT_DELAY_MS}\n\n`);
        if (lastSeen === undefined || sequenceOf(first) > lastSeen) send(first);
        if (ended) return;
        follower = new TaskFollower(live.watcher, first, read, send, deps.log);
        heartbeat = setInterval(() => write(": keep-alive\n\n"), live.limits.heartbeatMs);
      },
      // The client went away (node-server cancels the body when the socket closes).
      cancel: () => end(),
    });
    c.req.raw.signal.addEventListener("abort", () => end(), { once: true });
    return c.body(body, 200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      // Proxies such as nginx would otherwise buffer the stream and deliver events late.
      "X-Accel-Buffering": "no",
    });
  });
}

function refusal(reason: "closed" | "total" | "account", live: LiveStatus): ApiError {
  switch (reason) {
    case "closed":
      return new ApiError("service_unavailable", "The server is shutting down; reconnect to another instance.", {
        headers: { "Retry-After": "1" },
      });
    case "total":
      return new ApiError(
        "service_unavailable",
        `This server has its maximum of ${live.limits.maxStreams} event streams open (SSE_MAX_STREAMS); retry later or poll the task.`,
        { headers: { "Retry-After": "5" } },
      );
    case "account":
      return new ApiError(
        "rate_limited",
        `This account has its maximum of ${live.limits.maxStreamsPerAccount} event streams open (SSE_MAX_STREAMS_PER_ACCOUNT); close one or poll the task.`,
        { headers: { "Retry-After": "5" } },
      );
  }
}
