/**
 * generations.stream(id): the task's status changes from GET /api/v1/generations/{id}/events
 * (Server-Sent Events) as an async iterator of tasks. A dropped connection (or a server that
 * ended the stream before the terminal event, as one that shuts down does) is resumed with
 * Last-Event-ID, so no state is given twice and none is skipped; the iterator ends after the
 * terminal task. A stream silent for longer than three heartbeats counts as dropped.
 */
import type { Core, RequestOptions } from "../core.js";
import { APIConnectionError, errorFromResponse, FramegateError, RateLimitedError } from "../errors.js";
import { abortReason, anySignal, sleep } from "../internal.js";
import type { Task } from "../types.js";

export interface StreamOptions extends Pick<RequestOptions, "signal" | "headers"> {
  /**
   * Reconnects in a row that may fail (no answer, 429, 5xx) before the iterator throws the last
   * error; an event received resets the count. Default 10.
   */
  maxReconnects?: number;
  /** Milliseconds without a byte (heartbeats included) after which the connection is redone. Default 45 000. */
  idleTimeout?: number;
}

const DEFAULT_MAX_RECONNECTS = 10;
/** The server sends a heartbeat at least every 15 s: three missed ones mean the connection is gone. */
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
const RECONNECT_MS = { first: 500, max: 10_000 };

interface SseEvent {
  id: string | undefined;
  data: string;
}

const isTerminal = (task: Task) => task.status === "succeeded" || task.status === "failed";

export async function* streamTask(core: Core, id: string, options: StreamOptions = {}): AsyncGenerator<Task, void> {
  const maxReconnects = options.maxReconnects ?? DEFAULT_MAX_RECONNECTS;
  const idleTimeout = options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS;
  const path = `/api/v1/generations/${encodeURIComponent(id)}/events`;
  let lastEventId: string | undefined;
  let failures = 0;
  let delay = RECONNECT_MS.first;

  for (;;) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const connection = new AbortController();
    const { signal, cleanup } = anySignal([options.signal, connection.signal]);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new Error("idle")), idleTimeout);
    };
    let failure: FramegateError | undefined;
    try {
      touch();
      const headers = core.headers({
        method: "GET",
        path,
        retry: "idempotent",
        headers: {
          accept: "text/event-stream",
          ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}),
          ...options.headers,
        },
      });
      const init: RequestInit = { headers, signal };
      if (core.opts.credentials) init.credentials = core.opts.credentials;
      const response = await core.opts.fetch.call(globalThis, core.buildUrl(path), init);
      // The terminal event was the last one received: nothing more will come.
      if (response.status === 204) return;
      if (!response.ok || !response.body) {
        const error = errorFromResponse(response.status, response.headers, await response.text());
        if (!(error instanceof RateLimitedError) && response.status < 500) throw error;
        failure = error;
      } else {
        for await (const event of readEvents(response.body, touch)) {
          if (event.id !== undefined) lastEventId = event.id;
          const task = JSON.parse(event.data) as Task;
          failures = 0;
          delay = RECONNECT_MS.first;
          yield task;
          if (isTerminal(task)) return;
        }
        // Ended before the terminal event (a restart, a proxy's time limit): resume.
      }
    } catch (error) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      if (error instanceof FramegateError && !(error instanceof APIConnectionError)) throw error;
      if (error instanceof SyntaxError) {
        throw new FramegateError("The event stream sent malformed JSON.", { code: "invalid_response", cause: error });
      }
      failure = new APIConnectionError("The event stream was interrupted.", { cause: error });
    } finally {
      clearTimeout(idle);
      connection.abort();
      cleanup();
    }
    if (failure && ++failures > maxReconnects) throw failure;
    const retryAfter = failure instanceof RateLimitedError ? (failure.retryAfter ?? 0) * 1000 : 0;
    await sleep(Math.max(delay, retryAfter), options.signal);
    delay = Math.min(delay * 2, RECONNECT_MS.max);
  }
}

/** The events of an SSE body (comments and `retry:` only keep the connection alive). */
async function* readEvents(body: ReadableStream<Uint8Array>, onBytes: () => void): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onBytes();
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const event = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

function parseBlock(block: string): SseEvent | undefined {
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { id, data: data.join("\n") } : undefined;
}
