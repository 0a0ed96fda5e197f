/** Builds the Hono app from its dependencies; nothing here opens files or sockets. */
import { buildOpenApiDocument, CATALOG, type ModelEntry } from "@framegate/contract";
import { type Context, Hono } from "hono";
import type { Logger } from "pino";
import { mountAdminRoutes } from "./accounts/admin-routes.js";
import { KEY_PATHS, mountKeyRoutes } from "./accounts/key-routes.js";
import { mountAccountLifecycleRoutes } from "./accounts/lifecycle-routes.js";
import type { AccountService } from "./accounts/service.js";
import { redirectMediaOrigin } from "./console/media-origin.js";
import {
  type ConsoleSessionConfig,
  customerSessionAuth,
  mountConsoleSessionRoutes,
  operatorSessionAuth,
} from "./console/session-routes.js";
import { mountConsoleStaticRoutes } from "./console/static-routes.js";
import { mountDocsRoutes } from "./docs/routes.js";
import { ApiError } from "./errors.js";
import { mountFileRoutes } from "./files/routes.js";
import type { FileService } from "./files/service.js";
import { mountTaskAdminRoutes } from "./generations/admin-routes.js";
import type { CancelService } from "./generations/cancel.js";
import { EVENTS_PATH, mountLiveRoutes } from "./generations/live/events-route.js";
import type { LiveStatus } from "./generations/live/live-status.js";
import type { ReferenceResolver } from "./generations/references.js";
import { mountGenerationRoutes } from "./generations/routes.js";
import type { GenerationService } from "./generations/service.js";
import { authenticate, authOf, requireScope } from "./http/auth.js";
import type { AppEnv } from "./http/context.js";
import { requestEnvelope } from "./http/envelope.js";
import { errorResponse, onError } from "./http/error-handler.js";
import { jsonAnswer } from "./http/json-answer.js";
import { mountMediaRoutes } from "./http/media-routes.js";
import type { LimitName, RateLimits } from "./http/rate-limit.js";
import { creditsAnswer } from "./ledger/ledger.js";
import { markUnmatched, mountMetricsRoute } from "./observability/http.js";
import { httpTracing } from "./observability/http-tracing.js";
import type { Metrics } from "./observability/metrics.js";
import type { Tracing } from "./observability/tracing.js";
import { ADMIN_STATS_PATH, mountStatsAdminRoutes } from "./ops/admin-routes.js";
import type { StatsDeps } from "./ops/stats.js";
import { type CallbackTokens, mountCallbackRoutes } from "./providers/callbacks.js";
import type { UrlSigner } from "./storage/signed-urls.js";
import type { Storage } from "./storage/storage.js";
import type { Db } from "./store/db.js";
import type { RowCache } from "./store/row-cache.js";
import { mountUsageAdminRoutes } from "./usage/admin-routes.js";
import { mountUsageRoutes, USAGE_PATHS } from "./usage/routes.js";
import type { Clock } from "./util/clock.js";
import { mountWebhookRoutes, WEBHOOK_PATHS } from "./webhooks/routes.js";
import type { WebhookService } from "./webhooks/service.js";

export interface AppDeps {
  db: Db;
  /** SQLite: GET /api/v1/credits answers kept while the account's row is unchanged (store/row-cache.ts). */
  balances?: RowCache | undefined;
  clock: Clock;
  log: Logger;
  accounts: AccountService;
  generations: GenerationService;
  /** SSE streams and `Prefer: wait` holds (generations/live). */
  live: LiveStatus;
  cancels: CancelService;
  files: FileService;
  webhooks: WebhookService;
  callbacks: { tokens: CallbackTokens; onHint: (taskId: string) => Promise<void> };
  references: ReferenceResolver;
  storage: Storage;
  /** How /media/ serves a storage that can presign (S3): 302 to the bucket, or streamed through. */
  mediaDelivery?: "redirect" | "proxy";
  signer: UrlSigner;
  rateLimits: RateLimits;
  adminToken: string | undefined;
  /** The web console's sign-in sessions (console/); absent: no session routes, cookies ignored. */
  consoleSessions?: ConsoleSessionConfig;
  /** This process's metrics: request durations are observed and GET /metrics serves them. */
  metrics?: Metrics;
  /** Bearer token of GET /metrics (METRICS_TOKEN, else ADMIN_TOKEN); undefined: /metrics is 404. */
  metricsToken?: string | undefined;
  /** OpenTelemetry, when on: a span per request (observability/http-tracing.ts). */
  tracing?: Tracing | undefined;
  /** What GET /admin/v1/stats reads (ops/stats.ts). */
  stats: StatsDeps;
  publicApiEnabled: boolean;
  /** The built web console served at /console (CONSOLE_DIST_DIR); undefined: packages/console/dist. */
  consoleDistDir?: string | undefined;
  /** Notices appended to every model entry (e.g. that the simulator is running). */
  modelNotices: string[];
  baseUrl: () => string;
  /** Readiness checks beyond the database (storage, shutdown state). */
  isReady: () => Promise<{ ok: boolean; checks: Record<string, string> }>;
  clientAddress: (c: { env: unknown; req: { header(name: string): string | undefined } }) => string;
}

/**
 * Every keyed public route with the rate-limit bucket it draws from. Routes are mounted by their
 * domains; this table adds authentication and limits in front of them, and a 405 (not a 404) for
 * a wrong method on a known path.
 */
const KEYED_ROUTES: [string, string, LimitName][] = [
  ["POST", "/api/v1/generations", "create"],
  ["GET", "/api/v1/generations", "read"],
  ["GET", "/api/v1/generations/:id", "read"],
  ["GET", EVENTS_PATH, "read"],
  // A cancel may call an upstream: it spends the write budget, not the read one.
  ["POST", "/api/v1/generations/:id/cancel", "write"],
  ["GET", "/api/v1/credits", "read"],
  ["POST", "/api/v1/files", "upload"],
  ["GET", "/api/v1/files", "read"],
  ["GET", "/api/v1/files/:id", "read"],
  ["DELETE", "/api/v1/files/:id", "write"],
  ...USAGE_PATHS.map((path): [string, string, LimitName] => ["GET", path, "read"]),
  // Webhook changes, tests and redeliveries spend the smaller write budget: a redeliver sends a
  // request to every subscribed endpoint, so it must not ride on the generous read budget.
  ...WEBHOOK_PATHS.flatMap(([path, methods]) =>
    methods.map((m): [string, string, LimitName] => [m, path, m === "GET" ? "read" : "write"]),
  ),
  // The account's keys (accounts/key-routes.ts): creating and revoking spend the write budget.
  ...KEY_PATHS.flatMap(([path, methods]) =>
    methods.map((m): [string, string, LimitName] => [m, path, m === "GET" ? "read" : "write"]),
  ),
];

const OTHER_PATHS: [string, string[]][] = [
  ["/api/v1/models", ["GET"]],
  ["/api/v1/openapi.json", ["GET"]],
  ["/docs", ["GET"]],
  ["/docs/assets/:name", ["GET"]],
  ["/admin/v1/accounts", ["GET", "POST"]],
  ["/admin/v1/accounts/:id", ["GET", "PATCH", "DELETE"]],
  ["/admin/v1/accounts/:id/export", ["GET"]],
  ["/admin/v1/accounts/:id/keys", ["GET", "POST"]],
  ["/admin/v1/accounts/:id/credits", ["POST"]],
  ["/admin/v1/keys/:keyId", ["DELETE"]],
  ["/admin/v1/tasks", ["GET"]],
  ["/admin/v1/tasks/:id", ["GET"]],
  ["/admin/v1/usage", ["GET"]],
  [ADMIN_STATS_PATH, ["GET"]],
  ["/healthz", ["GET"]],
  ["/readyz", ["GET"]],
];

const isAdminPath = (path: string) => path.startsWith("/admin/");
const PUBLIC_API_PATH = /^\/api\/v1(\/|$)/;

function knownPaths(surface: Surface): Map<string, string[]> {
  const paths = new Map<string, string[]>(OTHER_PATHS);
  for (const [method, path] of KEYED_ROUTES) paths.set(path, [...(paths.get(path) ?? []), method]);
  // A listener that does not serve a surface answers 404 for its paths, as for any unknown path.
  for (const path of paths.keys()) {
    if (surface === "public" ? isAdminPath(path) : surface === "admin" && !isAdminPath(path)) paths.delete(path);
  }
  return paths;
}

export function publicModels(notices: string[], catalog: readonly ModelEntry[] = CATALOG): ModelEntry[] {
  return catalog.map((m) => ({ ...m, notices: [...m.notices, ...notices] }));
}

/**
 * What one listener serves: everything (the default, one listener), or, when the admin API has
 * a listener of its own (ADMIN_PORT), the public surface on one and /admin/v1 on the other.
 */
export type Surface = "all" | "public" | "admin";

export function buildApp(deps: AppDeps, surface: Surface = "all"): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // First, so everything after it (and the request's log line) runs inside the request's span.
  if (deps.tracing) app.use("*", httpTracing(deps.tracing));
  // Its id, its duration in the metrics and its log line: one layer (http/envelope.ts).
  app.use("*", requestEnvelope(deps));

  /**
   * api-contract §8: every public API answer carries the RateLimit fields, also those given before
   * the request is identified (unknown path, wrong method, public API off). They show the client
   * address's read budget, and charge nothing: a mistyped path costs no one a request.
   */
  const limitState = (c: Context<AppEnv>): Promise<Record<string, string>> =>
    PUBLIC_API_PATH.test(c.req.path)
      ? deps.rateLimits.peek("read", `ip:${deps.clientAddress(c)}`)
      : Promise.resolve({});

  if (surface !== "admin") mountPublicSurface(app, deps, limitState);
  if (surface !== "public") {
    const operatorSession = deps.consoleSessions && operatorSessionAuth(deps.consoleSessions);
    mountAdminRoutes(app, operatorSession ? { ...deps, operatorSession } : deps);
    mountTaskAdminRoutes(app, deps);
    mountUsageAdminRoutes(app, deps);
    mountStatsAdminRoutes(app, deps);
    mountAccountLifecycleRoutes(app, deps);
  }

  // Both listeners: with ADMIN_PORT, Prometheus can scrape the private one (README, "Metrics").
  if (deps.metrics) mountMetricsRoute(app, { metrics: deps.metrics, token: deps.metricsToken });

  for (const [path, methods] of knownPaths(surface)) {
    app.all(path, async (c) => {
      throw new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}.`, {
        headers: { Allow: methods.join(", "), ...(await limitState(c)) },
      });
    });
  }

  app.notFound(async (c) => {
    markUnmatched(c);
    return errorResponse(
      c,
      new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}.`, { headers: await limitState(c) }),
    );
  });
  app.onError(onError);
  return app;
}

/** Health, the public API under /api/v1, provider callbacks and media downloads. */
function mountPublicSurface(
  app: Hono<AppEnv>,
  deps: AppDeps,
  limitState: (c: Context<AppEnv>) => Promise<Record<string, string>>,
) {
  const clientAddress = (c: Parameters<AppDeps["clientAddress"]>[0]) => deps.clientAddress(c);
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const { ok, checks } = await deps.isReady();
    return c.json({ status: ok ? "ready" : "not_ready", checks }, ok ? 200 : 503);
  });

  // Switched off by the operator (PUBLIC_API_ENABLED, read at start): only then a layer of its own.
  if (!deps.publicApiEnabled) {
    app.use("/api/v1/*", async (c) => {
      throw new ApiError("public_api_disabled", "The public API is temporarily disabled by the operator.", {
        headers: await limitState(c),
      });
    });
  }

  // Public, keyless routes: limited per client address.
  const [readLimit] = deps.rateLimits.middleware("read", clientAddress);
  if (readLimit) for (const path of ["/api/v1/models", "/api/v1/openapi.json"]) app.get(path, readLimit);
  app.get("/api/v1/models", (c) => c.json({ object: "list", data: publicModels(deps.modelNotices) }));
  app.get("/api/v1/openapi.json", (c) => c.json(buildOpenApiDocument({ serverUrl: deps.baseUrl() })));

  // Everything else under /api/v1 needs a key; limits then count per key.
  const auth = authenticate(
    deps.accounts,
    (c) => deps.rateLimits.consume("read", `ip:${clientAddress(c)}`),
    deps.consoleSessions && customerSessionAuth(deps.consoleSessions),
  );
  for (const [method, path, bucket] of KEYED_ROUTES) {
    app.on(method, path, auth, ...deps.rateLimits.middleware(bucket, clientAddress));
  }

  mountGenerationRoutes(app, deps);
  mountLiveRoutes(app, deps);
  mountFileRoutes(app, deps);
  mountWebhookRoutes(app, deps);
  mountKeyRoutes(app, deps);
  mountUsageRoutes(app, deps);
  mountDocsRoutes(app, deps);
  mountConsoleStaticRoutes(app, {
    distDir: deps.consoleDistDir,
    prefix: () => new URL(deps.baseUrl()).pathname.replace(/\/+$/, ""),
    mediaOrigin: redirectMediaOrigin(deps),
  });

  // Not async: on SQLite the balance is sent without an await (ledger.ts, creditsAnswer).
  app.get("/api/v1/credits", requireScope("credits:read"), (c): Response | Promise<Response> => {
    return jsonAnswer(c, creditsAnswer(deps.db, deps.balances, authOf(c).accountId));
  });

  // The console shares the public origin, so its sign-in lives on the public listener.
  if (deps.consoleSessions) {
    mountConsoleSessionRoutes(app, { ...deps.consoleSessions, rateLimits: deps.rateLimits, clientAddress });
  }

  mountCallbackRoutes(app, deps.callbacks);
  mountMediaRoutes(app, deps);
}
