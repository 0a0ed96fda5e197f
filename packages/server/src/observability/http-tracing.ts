/**
 * A server span for each HTTP request, named `<METHOD> <route template>` (never the raw path, so
 * ids cannot multiply span names). An incoming `traceparent` (from a proxy or a client that
 * traces) is continued; without one the request starts a trace. Scrapes and health checks make
 * no span: at one every few seconds they would bury the traffic worth reading.
 */
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context.js";
import { METRICS_PATH, routeTemplate } from "./http.js";
import { UNMATCHED_ROUTE } from "./metrics.js";
import { recordError, type Tracing } from "./tracing.js";

const UNTRACED = new Set([METRICS_PATH, "/healthz", "/readyz"]);

/** A path whose route has a token parameter is recorded as its template: the token is a credential. */
const TOKEN_PARAM = /:token\b/;

export function httpTracing(tracing: Tracing): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (UNTRACED.has(c.req.path)) return next();
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, {
      get: (headers, key) => headers.get(key) ?? undefined,
      keys: (headers) => [...headers.keys()],
    });
    const method = c.req.method;
    await tracing.withSpan(
      method,
      { kind: SpanKind.SERVER, parent, attributes: { "http.request.method": method } },
      async (span) => {
        try {
          await next();
        } finally {
          const route = routeTemplate(c);
          const matched = route !== UNMATCHED_ROUTE;
          span.updateName(matched ? `${method} ${route}` : method);
          const status = c.res.status;
          span.setAttributes({
            "url.path": matched && TOKEN_PARAM.test(route) ? route : c.req.path,
            "http.response.status_code": status,
            ...(matched ? { "http.route": route } : {}),
          });
          const requestId = c.get("requestId");
          if (requestId) span.setAttribute("framegate.request_id", requestId);
          const auth = c.get("auth");
          if (auth) span.setAttribute("framegate.account_id", auth.accountId);
          // Server spans are errors for 5xx only: a 4xx is the client's mistake, answered as designed.
          if (status >= 500) {
            // The error the app's error handler turned into this answer, if one did.
            if (c.error) recordError(span, c.error);
            else span.setStatus({ code: SpanStatusCode.ERROR });
          }
        }
      },
    );
  };
}
