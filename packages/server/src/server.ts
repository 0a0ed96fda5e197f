/**
 * Wires a Framegate process: store, storage, providers, queue, job runners and HTTP server.
 * The role decides which of them run: `all` (the embedded default, `framegate serve`), `api`
 * (HTTP only; jobs are added for the workers) or `worker` (job runners and housekeeping, with
 * optional health endpoints on HEALTH_PORT). Tests start it the same way on ephemeral ports.
 */
import { createHmac } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import ffmpegInstaller from "@ffmpeg-installer/ffmpeg";
import type { ServerType } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { TracerProvider } from "@opentelemetry/api";
import { Hono } from "hono";
import { sql } from "kysely";
import type { Logger } from "pino";
import { KeyCache } from "./accounts/key-cache.js";
import { RevocationListener } from "./accounts/key-revocations.js";
import { finishDeletedAccounts } from "./accounts/lifecycle.js";
import { AccountService } from "./accounts/service.js";
import { type AppDeps, buildApp } from "./app.js";
import { BackupScheduler } from "./backup/schedule.js";
import { type Config, ConfigError } from "./config.js";
import { ConsoleSessions } from "./console/sessions.js";
import { InspectionPool } from "./files/inspect/pool.js";
import { PURGE_FILE_JOB, purgeFileJob, queuePurgesAfter } from "./files/purge-job.js";
import { FileReferenceResolver } from "./files/references.js";
import { FileService } from "./files/service.js";
import { DurationTokens } from "./files/tokens.js";
import { CancelService } from "./generations/cancel.js";
import { FairShare } from "./generations/fair-share.js";
import { type LiveStatus, startLiveStatus } from "./generations/live/index.js";
import { PosterMaker } from "./generations/poster.js";
import { purgeExpiredResults } from "./generations/retention.js";
import { serializeTask } from "./generations/serialize.js";
import { GenerationService } from "./generations/service.js";
import { GenerationWorker } from "./generations/worker.js";
import { parseTrustedProxies, resolveClientAddress } from "./http/client-address.js";
import type { AppEnv } from "./http/context.js";
import { onError } from "./http/error-handler.js";
import { IdempotencyStore } from "./http/idempotency.js";
import { closeListener, dialableUrl, type Listener, listen, wildcardHostWarning } from "./http/listen.js";
import { createRateLimits, type RateLimits } from "./http/rate-limit.js";
import { createLogger } from "./logger.js";
import { INSECURE, type LookupFn, STRICT } from "./net/url-guard.js";
import { mountMetricsRoute } from "./observability/http.js";
import { Metrics } from "./observability/metrics.js";
import { instrumentProviders } from "./observability/provider-metrics.js";
import { traceProviders } from "./observability/provider-tracing.js";
import { queueJobCounts } from "./observability/sources.js";
import { startTracing, traceJobClasses, traceQueue } from "./observability/tracing.js";
import { JOB_CLASSES } from "./ops/stats.js";
import { buildProviders, providerCaps } from "./providers/build.js";
import { CallbackTokens, KLING_CALLBACK_PREFIX } from "./providers/callbacks.js";
import { ProviderRouter } from "./providers/router.js";
import { GraphileQueue, migrateGraphileWorker } from "./queue/graphile-queue.js";
import type { JobClass, Queue } from "./queue/queue.js";
import { TableQueue } from "./queue/table-queue.js";
import { resolveSigningSecret } from "./secrets/signing-secret.js";
import { openStorage } from "./storage/build.js";
import { LocalObjectCache } from "./storage/local-cache.js";
import { UrlSigner } from "./storage/signed-urls.js";
import type { Storage } from "./storage/storage.js";
import { migrateToLatest, openPostgres, openSqlite, type StoreHandle } from "./store/db.js";
import { RowCache } from "./store/row-cache.js";
import { type Clock, systemClock } from "./util/clock.js";
import { newId } from "./util/ids.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";
import { DELIVER_JOB, recordProcessingEvent, recordTaskEvent } from "./webhooks/events.js";
import { WebhookService } from "./webhooks/service.js";
import { SecretBox } from "./webhooks/signing.js";

export type ProcessRole = "all" | "api" | "worker";

export interface RunningServer {
  role: ProcessRole;
  /** The API's base URL; for a worker, its health endpoints' (empty without HEALTH_PORT). */
  url: string;
  port: number;
  /** The main listener's HTTP server (undefined for a worker without HEALTH_PORT): for observers such as the test suite's conformance check. */
  httpServer: ServerType | undefined;
  /** Where /admin/v1 answers: the admin listener (ADMIN_PORT), else `url`; empty for a worker. */
  adminUrl: string;
  config: Config;
  log: Logger;
  store: StoreHandle;
  storage: Storage;
  accounts: AccountService;
  worker: GenerationWorker | undefined;
  /** This process's metrics (served at /metrics): tests read them in process too. */
  metrics: Metrics;
  /** Held `Prefer: wait` requests and SSE streams of this process; undefined for a worker. */
  live: LiveStatus | undefined;
  /** Runs the periodic housekeeping now (it also runs every 10 minutes). */
  runMaintenance(): Promise<{ idempotencyPurged: number; resultsPurged: number; filesPurged: number }>;
  /** Graceful stop: no new requests, running jobs finish or are released, DB closed. */
  close(): Promise<void>;
}

const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

export function sqlitePath(config: Config): string {
  return join(config.dataDir, "framegate.db");
}

/**
 * Opens the store (PostgreSQL when DATABASE_URL is set, else SQLite in DATA_DIR) and applies
 * pending migrations (unless `migrate: false`, for `framegate migrate`).
 */
export async function openStore(config: Config, opts: { migrate?: boolean; log?: Logger } = {}): Promise<StoreHandle> {
  const store = config.databaseUrl
    ? openPostgres(config.databaseUrl, {
        maxConnections: config.databasePool.size,
        connectTimeoutMs: config.databasePool.connectTimeoutMs,
      })
    : openSqlite(sqlitePath(config), {
        ...config.sqlite,
        onCheckpointerFailure: (error) =>
          opts.log?.error(
            { err: error },
            "WAL checkpointer thread failed; SQLite checkpoints inside commits from now on",
          ),
      });
  try {
    if (opts.migrate !== false) await applyMigrations(config, store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/**
 * Applies Framegate's pending migrations and, when the queue is graphile-worker, creates or
 * updates its schema. Returns the names of the migrations applied now.
 */
export async function applyMigrations(config: Config, store: StoreHandle): Promise<string[]> {
  const applied = await migrateToLatest(store);
  if (config.queueDriver === "graphile" && store.pgPool) await migrateGraphileWorker(store.pgPool);
  return applied;
}

export async function startServer(
  config: Config,
  opts: {
    clock?: Clock;
    log?: Logger;
    /** DNS used for outbound URL checks (tests map made-up names to addresses). */
    lookup?: LookupFn;
    /** Which parts run in this process (default: all). */
    role?: ProcessRole;
    /**
     * Tracing with this provider (tests: an in-memory exporter), whatever the environment says;
     * without it, tracing is on only when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
     */
    tracerProvider?: TracerProvider;
  } = {},
): Promise<RunningServer> {
  const role = opts.role ?? "all";
  if (role === "worker" && !config.publicBaseUrl) {
    throw new ConfigError(
      "Invalid configuration:\n  PUBLIC_BASE_URL: required by `framegate worker` (task URLs and upstream callbacks point at the API)",
    );
  }
  if (role !== "all" && config.signingSecret === undefined) {
    // A generated secret lives in one machine's DATA_DIR; processes elsewhere would make their own.
    throw new ConfigError(
      `Invalid configuration:\n  SIGNING_SECRET: required by \`framegate ${role}\`: every process must sign and check with the same secret (make one with \`openssl rand -base64 32\`; an install that let \`framegate serve\` generate one keeps it in DATA_DIR/secrets/signing_secret, or, when an older version generated it, in the database's settings table under the key signing_secret)`,
    );
  }
  if (role === "worker" && config.worker.concurrency === 0) {
    throw new ConfigError("Invalid configuration:\n  WORKER_CONCURRENCY: must be at least 1 for `framegate worker`");
  }
  const runJobs = role !== "api" && config.worker.concurrency > 0;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger(config.logLevel, process.stdout, config.logFormat);
  if (role !== "all" && config.storage.driver === "fs") {
    log.warn(
      "STORAGE_DRIVER=fs with separate api/worker processes: they must share DATA_DIR (one volume), or use STORAGE_DRIVER=s3",
    );
  }
  // Off (undefined) unless an OTLP endpoint is set: then nothing below is wrapped (observability/tracing.ts).
  const tracing = await startTracing({
    role,
    ...(opts.tracerProvider ? { provider: opts.tracerProvider } : {}),
    onExportError: (error) =>
      log.warn({ err: error }, "tracing: could not export spans (repeats are not logged for a minute)"),
  });
  await mkdir(config.dataDir, { recursive: true });
  const store = await openStore(config, { log });
  const { db } = store;

  // Signing secret: SIGNING_SECRET, or generated once into a file under DATA_DIR, never the database.
  const signingSecret = await resolveSigningSecret({
    envSecret: config.signingSecret,
    dataDir: config.dataDir,
    db,
    log: log.child({ component: "secrets" }),
  });
  if (config.signingSecret === undefined && config.databaseUrl) {
    log.warn(
      "SIGNING_SECRET is unset: the generated one is in this machine's DATA_DIR; every process on this database needs the same secret, so set SIGNING_SECRET before adding one",
    );
  }

  let baseUrl = config.publicBaseUrl ?? dialableUrl(config.host, config.port);
  const storage = await openStorage(config);
  const localFiles = new LocalObjectCache(storage, join(config.dataDir, "cache", "storage"));
  const signer = new UrlSigner(signingSecret, () => baseUrl);
  const openedQueue = openQueue(config, store, clock, log.child({ component: "queue" }));
  // Traced, every job added carries the trace context of the span that added it.
  const queue = tracing ? traceQueue(openedQueue) : openedQueue;
  // One registry per process, never prom-client's global one: tests run several servers in one process.
  const metrics = new Metrics();
  metrics.attach({
    queue: queueJobCounts(db, config.queueDriver, clock),
    jobClasses: JOB_CLASSES,
    onQueueStatsError: (error) => log.warn({ err: error }, "metrics scrape: could not read the queue's depth"),
  });
  const idempotency = new IdempotencyStore(db, clock);
  // Per-account caps and fair hand-out of provider slots (generations/fair-share.ts).
  const fairShare = new FairShare(queue, config.worker.accountMaxRunningTasks);
  // API-key lookups cached per process; on PostgreSQL revocations reach every process by NOTIFY.
  const keyCache = new KeyCache({ ttlMs: config.apiKeyCacheMs, maxEntries: 10_000, now: () => Date.now() });
  const revocations =
    keyCache.enabled && config.databaseUrl && role !== "worker"
      ? new RevocationListener(config.databaseUrl, keyCache, log.child({ component: "key-cache" }))
      : undefined;
  const accounts = new AccountService(
    db,
    clock,
    {
      defaultMaxRunningTasks: config.worker.accountMaxRunningTasks,
      quotas: config.quotas,
      changed: (accountId) => fairShare.wakeAccount(db, accountId),
      granted: (amount) => metrics.recordGrant(amount),
    },
    keyCache,
  );
  // Answers of polled GETs kept while their row is unchanged: only where the API is served, and
  // only on SQLite (undefined otherwise).
  const answerCache = (table: string) =>
    role === "worker" ? Promise.resolve(undefined) : RowCache.open(db, table, config.answerCacheEntries);
  const answers = await answerCache("tasks");
  const balances = await answerCache("accounts");
  metrics.attach({
    answerCaches: () => ({
      ...(answers ? { generation: answers.stats() } : {}),
      ...(balances ? { credits: balances.stats() } : {}),
    }),
  });
  const generations = new GenerationService({
    db,
    clock,
    queue,
    signer,
    idempotency,
    metrics,
    ...(answers ? { answers } : {}),
  });
  const consoleSessions = new ConsoleSessions({
    db,
    clock,
    accounts,
    adminToken: config.adminToken,
    ttlMs: config.consoleSessionTtlMs,
  });
  const ffmpegPath = config.simulator.ffmpegPath ?? ffmpegInstaller.path;
  const callbackTokens = new CallbackTokens(
    createHmac("sha256", signingSecret).update("callbacks").digest("base64url"),
  );
  // Wrapped once here, so every call (the worker's, the API's cancels) is counted and timed.
  const measuredProviders = instrumentProviders(
    buildProviders(config, {
      clock,
      ffmpegPath,
      // The simulator publishes its tasks here, so any worker process can finish them.
      storage,
      klingCallbackUrl: (taskId) => `${baseUrl}${KLING_CALLBACK_PREFIX}${callbackTokens.issue(taskId)}`,
    }),
    metrics,
  );
  // Traced, each call has a span, and the Kling and fal adapters send its traceparent upstream.
  const providers = tracing ? traceProviders(measuredProviders, tracing) : measuredProviders;
  const router = new ProviderRouter(db, {
    chain: config.providers,
    providers,
    maxConcurrency: providerCaps(config),
    breaker: config.circuitBreaker,
    now: () => clock.now().getTime(),
  });
  metrics.attach({
    circuits: () => router.chain.map((name) => ({ provider: name, open: router.breaker(name).state() !== "closed" })),
  });
  const tokens = new DurationTokens(createHmac("sha256", signingSecret).update("duration-tokens").digest("base64url"));
  // One pool per server: uploads and fetched references are inspected off the event loop.
  const inspector = new InspectionPool({
    concurrency: config.inspection.concurrency,
    timeoutMs: config.inspection.timeoutMs,
    limits: { maxImageSide: config.inspection.maxImageSide, maxImagePixels: config.inspection.maxImagePixels },
  });
  // Each inspection thread keeps one libuv threadpool slot busy while it reads or decodes (sharp
  // runs there), and this thread's file I/O needs that pool too; its size is only read at start.
  const uvThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  if (config.inspection.concurrency >= uvThreads) {
    log.warn(
      { inspectConcurrency: config.inspection.concurrency, uvThreadpoolSize: uvThreads },
      "INSPECT_CONCURRENCY is not below UV_THREADPOOL_SIZE: inspections can stall file I/O; start the process with UV_THREADPOOL_SIZE set to INSPECT_CONCURRENCY + 4",
    );
  }
  const files = new FileService({
    db,
    clock,
    storage,
    signer,
    tokens,
    ffmpegPath,
    inspector,
    retentionMs: config.fileRetentionMs,
    quotas: config.quotas,
    log: log.child({ component: "files" }),
    metrics,
  });
  // Uploads a killed process left half-received or uninspected (housekeeping repeats this).
  await files.sweepStagedUploads();
  const references = new FileReferenceResolver({ files, signer, tokens, clock, fetch: config.referenceFetch });
  if (config.referenceFetch.enabled && config.referenceFetch.allowInsecure) {
    log.warn(
      "REFERENCE_URL_ALLOW_INSECURE is on: reference URLs may use http and private addresses (development only)",
    );
  }

  if (config.providerAllowInsecureUrls) {
    log.warn(
      "PROVIDER_ALLOW_INSECURE_URLS is on: results may be fetched from http and private addresses (development only)",
    );
  }
  const webhookGuard = config.webhooks.allowInsecureUrls ? INSECURE : STRICT;
  if (config.webhooks.allowInsecureUrls) {
    log.warn("WEBHOOK_ALLOW_INSECURE_URLS is on: webhooks may target http and private addresses (development only)");
  }
  const webhooks = new WebhookService({
    db,
    clock,
    queue,
    box: new SecretBox(signingSecret),
    guard: webhookGuard,
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
    quotas: config.quotas,
  });
  const dispatcher = new WebhookDispatcher(
    { db, clock, log: log.child({ component: "webhooks" }), webhooks, queue, metrics },
    {
      retryScheduleMs: config.webhooks.retryScheduleMs,
      autoDisableAfterMs: config.webhooks.autoDisableAfterMs,
      timeoutMs: config.webhooks.timeoutMs,
      maxInFlight: config.webhooks.maxInFlight,
      guard: webhookGuard,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    },
  );

  let worker: GenerationWorker | undefined;
  if (runJobs) {
    worker = new GenerationWorker({
      db,
      clock,
      queue,
      storage,
      localFiles,
      signer,
      log: log.child({ component: "worker" }),
      router,
      taskDeadlineMs: config.worker.taskDeadlineMs,
      pollIntervalMs: config.pollIntervalMs,
      resultRetentionMs: config.resultRetentionMs,
      mirror: {
        guard: config.providerAllowInsecureUrls ? INSECURE : STRICT,
        maxBytes: config.maxResultBytes,
        timeoutMs: Math.max(120_000, config.providerRequestTimeoutMs),
        ...(config.resultPosters
          ? {
              posters: new PosterMaker(
                ffmpegPath,
                join(config.dataDir, "cache", "posters"),
                log.child({ component: "posters" }),
              ),
            }
          : {}),
      },
      fairShare,
      metrics,
      onProcessing: (trx, { taskId, accountId }) =>
        // The row is read only when an endpoint of the account subscribes.
        recordProcessingEvent(trx, { clock, queue }, accountId, async () => {
          const row = await trx.selectFrom("tasks").selectAll().where("id", "=", taskId).executeTakeFirstOrThrow();
          return serializeTask(row, signer, clock.now());
        }),
      onTerminal: async (trx, row) => {
        await recordTaskEvent(trx, { clock, queue }, row.account_id, serializeTask(row, signer, clock.now()));
        // Deleted files whose bytes waited for this task (files/purge-job.ts).
        await queuePurgesAfter(trx, { queue, files }, row);
      },
    });
    try {
      // Separate runners per class, so deliveries to slow or dead endpoints never hold the
      // generation runners (and the reverse). Housekeeping is no queue job: it runs on its own
      // timer below (runMaintenance), so it takes no runner of either class.
      const classes: JobClass[] = [
        {
          name: "generation",
          concurrency: config.worker.concurrency,
          handlers: { ...worker.handlers(), [PURGE_FILE_JOB]: purgeFileJob(files) },
        },
        {
          name: "webhook",
          concurrency: config.webhooks.concurrency,
          handlers: { [DELIVER_JOB]: dispatcher.handler() },
        },
      ];
      // Traced, each job runs in a span that continues the trace it was added in.
      await queue.start(tracing ? traceJobClasses(classes, tracing) : classes);
    } catch (error) {
      await queue.stop(0).catch(() => {});
      await store.close();
      throw error;
    }
  }

  const trustedProxies = config.trustedProxies.length ? parseTrustedProxies(config.trustedProxies) : undefined;
  // Per-key limits: shared by every API process through PostgreSQL or Redis, or per process.
  const rateLimits = role === "worker" ? undefined : await openRateLimits(config, store, log);
  if (rateLimits) rateLimits.onLimited = (bucket) => metrics.recordRateLimited(bucket);
  // Status changes for SSE and `Prefer: wait`; across processes by NOTIFY on PostgreSQL.
  const live = await startLiveStatus({
    config,
    db,
    servesApi: role !== "worker",
    log: log.child({ component: "live" }),
  });
  // Scheduled backups run where the SQLite file is owned: the embedded process.
  const backups =
    config.backups && role === "all"
      ? new BackupScheduler(config, config.backups, { log: log.child({ component: "backup" }), metrics })
      : undefined;
  if (config.backups && role !== "all") {
    log.warn(`BACKUP_DIR is ignored by \`framegate ${role}\`: scheduled backups run in \`framegate serve\``);
  }
  backups?.start();
  let shuttingDown = false;
  const isReady = async () => {
    const checks: Record<string, string> = {};
    try {
      await sql`select 1`.execute(db);
      checks.database = "ok";
    } catch (error) {
      checks.database = `error: ${(error as Error).message}`;
    }
    try {
      await storage.checkReady();
      checks.storage = "ok";
    } catch (error) {
      // The error's code or name only (EACCES, NoSuchBucket, …): no paths or endpoints.
      const { code, name } = error as { code?: string; name?: string };
      checks.storage = `error: ${code ?? name ?? "unavailable"}`;
    }
    const queueProblem = runJobs ? queue.problem?.() : undefined;
    if (queueProblem) checks.queue = `error: ${queueProblem}`;
    // Informational: a failed backup is the operator's to fix, not a reason to stop serving.
    if (backups) checks.backup = backups.status();
    checks.shutdown = shuttingDown ? "in progress" : "no";
    return { ok: !shuttingDown && !queueProblem && checks.database === "ok" && checks.storage === "ok", checks };
  };
  const cancels = new CancelService({
    db,
    clock,
    signer,
    queue,
    router,
    fairShare,
    metrics,
    log: log.child({ component: "cancel" }),
    onTerminal: async (trx, row) => {
      await recordTaskEvent(trx, { clock, queue }, row.account_id, serializeTask(row, signer, clock.now()));
      // A cancelled task may be the last one holding a deleted file's bytes (files/purge-job.ts).
      await queuePurgesAfter(trx, { queue, files }, row);
    },
  });
  const appDeps: AppDeps | undefined =
    role === "worker"
      ? undefined
      : {
          db,
          balances,
          clock,
          log,
          accounts,
          generations,
          live: live.status as LiveStatus,
          cancels,
          files,
          webhooks,
          callbacks: {
            tokens: callbackTokens,
            // The body of a callback is never trusted: it only makes the task's poll due now.
            onHint: (taskId: string) => queue.runNow(db, `poll:${taskId}`),
          },
          references,
          storage,
          ...(config.storage.driver === "s3" ? { mediaDelivery: config.storage.mediaDelivery } : {}),
          signer,
          rateLimits: rateLimits as RateLimits,
          adminToken: config.adminToken,
          consoleSessions: { sessions: consoleSessions, publicBaseUrl: config.publicBaseUrl },
          metrics,
          metricsToken: config.metricsToken,
          tracing,
          stats: {
            db,
            clock,
            queueDriver: config.queueDriver,
            providers: config.providers,
            maxConcurrency: providerCaps(config),
            // An API-only process submits nothing: its breakers never see a call, so it shows none.
            ...(role === "api" ? {} : { circuits: () => router.circuits() }),
          },
          publicApiEnabled: config.publicApiEnabled,
          consoleDistDir: config.consoleDistDir,
          modelNotices: config.providers.includes("simulated")
            ? [
                "This server runs the Framegate simulator: results are locally rendered placeholder videos, not Kling output.",
              ]
            : [],
          baseUrl: () => baseUrl,
          clientAddress: (c) => {
            let peer = "unknown";
            try {
              peer = getConnInfo(c as never).remote.address ?? "unknown";
            } catch {}
            return resolveClientAddress(peer, c.req.header("x-forwarded-for"), trustedProxies);
          },
          isReady,
        };
  // With ADMIN_PORT the admin API gets a listener of its own and the main one serves none of it.
  const app = appDeps
    ? buildApp(appDeps, config.adminListener ? "public" : "all")
    : healthApp(isReady, { metrics, token: config.metricsToken });

  // Housekeeping: expired idempotency records and result media past their retention.
  const runMaintenance = async () => {
    const idempotencyPurged = await idempotency.purgeExpired();
    const resultsPurged = await purgeExpiredResults({ db, storage, clock, log });
    const filesPurged = await files.collectGarbage();
    // Deleted accounts whose tasks were still running at the delete (accounts/lifecycle.ts).
    await finishDeletedAccounts({ db, clock, storage, signer, accounts, files, cancels, log });
    await consoleSessions.pruneExpired();
    // Local copies of S3 references: kept while a task may still render from them.
    await localFiles.sweep(config.worker.taskDeadlineMs + 3600_000);
    return { idempotencyPurged, resultsPurged, filesPurged };
  };
  // Housekeeping runs where jobs run (any number of processes may run it: it is idempotent). An
  // API process still receives uploads, so it sweeps its own staging directory (its spool is local).
  const maintenance = setInterval(() => {
    const run: Promise<unknown> = role === "api" ? files.sweepStagedUploads() : runMaintenance();
    run.catch((error) => log.error({ err: error }, "maintenance failed"));
  }, MAINTENANCE_INTERVAL_MS);
  maintenance.unref();

  let main: Listener | undefined;
  let admin: Listener | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      clearInterval(maintenance);
      await backups?.stop();
      // Held requests are answered and streams ended now, so closing HTTP never waits them out.
      await live.releaseClients();
      const httpClosed = Promise.all([main, admin].map((l) => l && closeListener(l.server)));
      await queue.stop(config.shutdownGraceMs);
      await Promise.all([...providers.values()].map((p) => p.close?.()));
      await dispatcher.close();
      await Promise.race([httpClosed, new Promise((r) => setTimeout(r, config.shutdownGraceMs).unref())]);
      await rateLimits?.close();
      await revocations?.stop();
      await live.close();
      await inspector.close();
      await store.close();
      storage.close?.();
      // Last, so the spans of the jobs and requests that finished above are exported too.
      await tracing?.shutdown().catch((error) => log.warn({ err: error }, "could not flush the last spans"));
      log.info("framegate stopped");
    })();
    return closing;
  };

  // A worker listens only when asked to (HEALTH_PORT), and then serves its health endpoints.
  const listenPort = role === "worker" ? config.healthPort : config.port;
  const listenOpts = { host: config.host, requestTimeoutMs: config.requestTimeoutMs };
  try {
    await revocations?.start();
    if (listenPort !== undefined) {
      const settings = { host: "HOST", port: role === "worker" ? "HEALTH_PORT" : "PORT" };
      main = await listen(app.fetch, { ...listenOpts, port: listenPort, settings });
    }
    if (appDeps && config.adminListener) {
      const settings = { host: "ADMIN_HOST", port: "ADMIN_PORT" };
      admin = await listen(buildApp(appDeps, "admin").fetch, { ...listenOpts, ...config.adminListener, settings });
    }
  } catch (error) {
    // An address that cannot be bound stops the start; nothing already started stays behind.
    await close();
    throw error;
  }
  const port = main?.port ?? 0;
  const listenUrl = main?.url ?? "";
  if (!config.publicBaseUrl) baseUrl = listenUrl;
  // A worker has PUBLIC_BASE_URL (required), so this is the API's warning only.
  const wildcardWarning = wildcardHostWarning(config.host, config.publicBaseUrl, baseUrl);
  if (wildcardWarning) log.warn(wildcardWarning);
  const adminUrl = role === "worker" ? "" : (admin?.url ?? baseUrl);
  log.info(
    {
      role,
      url: role === "worker" ? listenUrl || undefined : baseUrl,
      ...(admin ? { adminUrl: admin.url } : {}),
      providers: config.providers,
      jobRunners: runJobs ? { generation: config.worker.concurrency, webhook: config.webhooks.concurrency } : 0,
      queue: config.queueDriver,
    },
    role === "worker" ? "framegate worker started" : "framegate listening",
  );

  return {
    role,
    url: role === "worker" ? listenUrl : baseUrl,
    port,
    httpServer: main?.server,
    adminUrl,
    config,
    storage,
    log,
    store,
    accounts,
    worker,
    metrics,
    live: live.status,
    runMaintenance,
    close,
  };
}

function openRateLimits(config: Config, store: StoreHandle, log: Logger): Promise<RateLimits> {
  const { store: kind, createPerMin, uploadPerMin, readPerMin, writePerMin } = config.rateLimits;
  const perMinute = { create: createPerMin, upload: uploadPerMin, read: readPerMin, write: writePerMin };
  if (kind === "redis") return createRateLimits(perMinute, { kind: "redis", url: config.redisUrl as string }, log);
  if (kind === "postgres") {
    if (!store.pgPool) throw new ConfigError("Invalid configuration:\n  RATE_LIMIT_STORE=postgres needs DATABASE_URL");
    return createRateLimits(perMinute, { kind: "postgres", pool: store.pgPool }, log);
  }
  return createRateLimits(perMinute, { kind: "memory" }, log);
}

/** The job queue: graphile-worker on PostgreSQL (by default there), else the `jobs` table. */
function openQueue(config: Config, store: StoreHandle, clock: Clock, log: Logger): Queue {
  if (config.queueDriver === "graphile") {
    if (!config.databaseUrl)
      throw new ConfigError("Invalid configuration:\n  QUEUE_DRIVER=graphile needs DATABASE_URL");
    return new GraphileQueue(store.db, clock, log, {
      connectionString: config.databaseUrl,
      leaseMs: config.worker.leaseMs,
      pollIntervalMs: config.worker.pollIntervalMs,
      graceMs: config.shutdownGraceMs,
      connectTimeoutMs: config.databasePool.connectTimeoutMs,
    });
  }
  return new TableQueue(store.db, clock, log, {
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
  });
}

/** A worker's HTTP surface: liveness, readiness and its metrics. */
function healthApp(
  isReady: () => Promise<{ ok: boolean; checks: Record<string, string> }>,
  metrics: { metrics: Metrics; token: string | undefined },
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Error answers (of /metrics) carry a request id, as the API's do.
  app.use("*", (c, next) => {
    const requestId = newId("req");
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    return next();
  });
  app.onError(onError);
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const { ok, checks } = await isReady();
    return c.json({ status: ok ? "ready" : "not_ready", checks }, ok ? 200 : 503);
  });
  mountMetricsRoute(app, metrics);
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: "This is a worker: only /healthz, /readyz and /metrics." } }, 404),
  );
  return app;
}
