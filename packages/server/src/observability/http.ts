/**
 * The HTTP side of the metrics: the request-duration middleware, and GET /metrics (the Prometheus
 * text format) behind `Authorization: Bearer <METRICS_TOKEN>` (ADMIN_TOKEN when that is unset;
 * with neither, /metrics answers 404 as if it did not exist).
 */
import type { Context, Env, Hono } from "hono";
import { routePath } from "hono/route";
import { ApiError } from "../errors.js";
import { bearerToken, sameSecret } from "../http/bearer.js";
import { type Metrics, UNMATCHED_ROUTE } from "./metrics.js";

export const METRICS_PATH = "/metrics";

/** Methods Node's parser accepts are a fixed list, but only these are labels; the rest are "other". */
const METHOD_LABELS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Requests answered by the app's notFound handler: no route matched them. */
const unmatched = new WeakSet<Request>();

/** Called by the app's notFound handler, so the request is labelled "unmatched", not by a middleware's pattern. */
export function markUnmatched(c: Context): void {
  unmatched.add(c.req.raw);
}

/** The request's route template (`/api/v1/generations/:id`), or "unmatched": never the raw path. */
export function routeTemplate(c: Context): string {
  return unmatched.has(c.req.raw) ? UNMATCHED_ROUTE : routePath(c, -1) || UNMATCHED_ROUTE;
}

/**
 * Observes a request's duration under its route template (`/api/v1/generations/:id`: the last
 * route that matched, which for a known path is its own template), never the raw path, so ids
 * cannot multiply the series. Scrapes of /metrics are left out: at one every few seconds they
 * would outnumber the real traffic of a quiet server, and Prometheus times them itself
 * (scrape_duration_seconds). Called by the request envelope (http/envelope.ts) once the
 * response is ready.
 */
export function observeRequest(metrics: Metrics, c: Context, seconds: number): void {
  const route = routeTemplate(c);
  if (route === METRICS_PATH) return;
  const method = METHOD_LABELS.has(c.req.method) ? c.req.method : "other";
  metrics.recordHttp(route, method, c.res.status, seconds);
}

/**
 * GET /metrics on `app`. `token` is METRICS_TOKEN, else ADMIN_TOKEN; undefined turns the route
 * off (404). Tokens are compared by digest in constant time, as the admin API does. Errors are
 * thrown as ApiError: the app's error handler renders the envelope.
 */
export function mountMetricsRoute<E extends Env>(
  app: Hono<E>,
  opts: { metrics: Metrics; token: string | undefined },
): void {
  const expected = opts.token;
  app.all(METRICS_PATH, async (c) => {
    if (!expected) {
      throw new ApiError("not_found", "Metrics are off: set METRICS_TOKEN (or ADMIN_TOKEN) to serve /metrics.");
    }
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      throw new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${METRICS_PATH}.`, {
        headers: { Allow: "GET, HEAD" },
      });
    }
    const presented = bearerToken(c.req.header("authorization"));
    if (!presented) {
      throw new ApiError("api_key_missing", "/metrics needs Authorization: Bearer <METRICS_TOKEN>.");
    }
    if (!sameSecret(presented, expected)) {
      throw new ApiError("api_key_invalid", "The metrics token is not valid.");
    }
    const { body, contentType } = await opts.metrics.render();
    const headers = { "Content-Type": contentType, "Cache-Control": "no-store" };
    return c.req.method === "HEAD" ? c.body(null, 200, headers) : c.body(body, 200, headers);
  });
}
