/**
 * The first layer of every request (after the tracing span, when tracing is on): the request's
 * id (X-Request-Id, c.var.requestId), its duration in the metrics and its log line at info.
 *
 * One middleware for the three, each of which was a layer of its own: on a keyed GET the work
 * around the handler (id, metric, key check) cost more than the handler's own (issue 13), and
 * every layer adds an async frame. No per-request child logger either: the request's fields go
 * on its one line (and on an unhandled error's), and nothing is built when info is off.
 */
import type { ServerResponse } from "node:http";
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import { observeRequest } from "../observability/http.js";
import type { Metrics } from "../observability/metrics.js";
import { newId } from "../util/ids.js";
import type { AppEnv } from "./context.js";

export function requestEnvelope(deps: { log: Logger; metrics?: Metrics | undefined }): MiddlewareHandler<AppEnv> {
  const { log, metrics } = deps;
  const logRequests = log.isLevelEnabled("info");
  return async (c, next) => {
    const started = performance.now();
    const requestId = newId("req");
    c.set("requestId", requestId);
    c.set("log", log);
    // Served by node:http, the header goes straight on Node's response, which merges it into
    // whatever the handler answers (errors included): through c.header every response would
    // carry a WHATWG Headers object, which costs more to build and write than a plain record.
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (outgoing) outgoing.setHeader("X-Request-Id", requestId);
    else c.header("X-Request-Id", requestId);
    await next();
    // Not served through node:http (tests' app.request): an error's response is built anew.
    if (!outgoing && c.error && !c.res.headers.has("X-Request-Id")) c.res.headers.set("X-Request-Id", requestId);
    const ms = performance.now() - started;
    if (metrics) observeRequest(metrics, c, ms / 1000);
    if (logRequests) logRequest(log, c, requestId, ms);
  };
}

function logRequest(log: Logger, c: Context<AppEnv>, requestId: string, ms: number): void {
  const auth = c.get("auth");
  log.info(
    {
      requestId,
      ...(auth ? { accountId: auth.accountId, keyId: auth.keyId } : {}),
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(ms * 10) / 10,
      ...(c.get("clientGone") ? { clientGone: c.get("clientGone") } : {}),
    },
    "request",
  );
}
