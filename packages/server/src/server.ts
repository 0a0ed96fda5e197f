/**
 * Wires the embedded deployment: store, storage, provider, queue, worker and HTTP server in one
 * process. The CLI's `serve` calls startServer; tests do the same on an ephemeral port.
 */
import { createHmac, randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import ffmpegInstaller from "@ffmpeg-installer/ffmpeg";
import { type ServerType, serve } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { sql } from "kysely";
import type { Logger } from "pino";
import { AccountService } from "./accounts/service.js";
import { buildApp } from "./app.js";
import type { Config } from "./config.js";
import { FileReferenceResolver } from "./files/references.js";
import { FileService } from "./files/service.js";
import { DurationTokens } from "./files/tokens.js";
import { purgeExpiredResults } from "./generations/retention.js";
import { serializeTask } from "./generations/serialize.js";
import { GenerationService } from "./generations/service.js";
import { GenerationWorker } from "./generations/worker.js";
import { IdempotencyStore } from "./http/idempotency.js";
import { RateLimits } from "./http/rate-limit.js";
import { createLogger } from "./logger.js";
import { INSECURE, type LookupFn, STRICT } from "./net/url-guard.js";
import { buildProviders, providerCaps } from "./providers/build.js";
import { CallbackTokens, KLING_CALLBACK_PREFIX } from "./providers/callbacks.js";
import { ProviderRouter } from "./providers/router.js";
import { TableQueue } from "./queue/table-queue.js";
import { openStorage } from "./storage/build.js";
import { LocalObjectCache } from "./storage/local-cache.js";
import { UrlSigner } from "./storage/signed-urls.js";
import { migrateToLatest, openPostgres, openSqlite, type StoreHandle } from "./store/db.js";
import { setSettingOnce } from "./store/settings.js";
import { type Clock, systemClock } from "./util/clock.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";
import { DELIVER_JOB, recordTaskEvent } from "./webhooks/events.js";
import { WebhookService } from "./webhooks/service.js";
import { SecretBox } from "./webhooks/signing.js";

export interface RunningServer {
  url: string;
  port: number;
  log: Logger;
  store: StoreHandle;
  accounts: AccountService;
  worker: GenerationWorker | undefined;
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
export async function openStore(config: Config, opts: { migrate?: boolean } = {}): Promise<StoreHandle> {
  const store = config.databaseUrl ? openPostgres(config.databaseUrl) : openSqlite(sqlitePath(config));
  try {
    if (opts.migrate !== false) await migrateToLatest(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

export async function startServer(
  config: Config,
  opts: {
    clock?: Clock;
    log?: Logger;
    /** DNS used for outbound URL checks (tests map made-up names to addresses). */
    lookup?: LookupFn;
  } = {},
): Promise<RunningServer> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true });
  const store = await openStore(config);
  const { db } = store;

  // Signing secret: from the environment, or generated once and kept in the database.
  const signingSecret =
    config.signingSecret ?? (await setSettingOnce(db, "signing_secret", randomBytes(32).toString("base64url")));

  let baseUrl = config.publicBaseUrl ?? `http://${config.host}:${config.port}`;
  const storage = await openStorage(config);
  const localFiles = new LocalObjectCache(storage, join(config.dataDir, "cache", "storage"));
  const signer = new UrlSigner(signingSecret, () => baseUrl);
  const queue = new TableQueue(db, clock, log.child({ component: "queue" }), {
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
  });
  const idempotency = new IdempotencyStore(db, clock);
  const accounts = new AccountService(db, clock);
  const generations = new GenerationService({ db, clock, queue, signer, idempotency });
  const ffmpegPath = config.simulator.ffmpegPath ?? ffmpegInstaller.path;
  const callbackTokens = new CallbackTokens(
    createHmac("sha256", signingSecret).update("callbacks").digest("base64url"),
  );
  const providers = buildProviders(config, {
    clock,
    ffmpegPath,
    klingCallbackUrl: (taskId) => `${baseUrl}${KLING_CALLBACK_PREFIX}${callbackTokens.issue(taskId)}`,
  });
  const router = new ProviderRouter(db, {
    chain: config.providers,
    providers,
    maxConcurrency: providerCaps(config),
    breaker: config.circuitBreaker,
    now: () => clock.now().getTime(),
  });
  const tokens = new DurationTokens(createHmac("sha256", signingSecret).update("duration-tokens").digest("base64url"));
  const files = new FileService({
    db,
    clock,
    storage,
    signer,
    tokens,
    ffmpegPath,
    retentionMs: config.fileRetentionMs,
    log: log.child({ component: "files" }),
  });
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
  });
  const dispatcher = new WebhookDispatcher(
    { db, clock, log: log.child({ component: "webhooks" }), webhooks },
    {
      retryScheduleMs: config.webhooks.retryScheduleMs,
      autoDisableAfterMs: config.webhooks.autoDisableAfterMs,
      timeoutMs: config.webhooks.timeoutMs,
      guard: webhookGuard,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    },
  );

  let worker: GenerationWorker | undefined;
  if (config.worker.concurrency > 0) {
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
      },
      onTerminal: (trx, row) =>
        recordTaskEvent(trx, { clock, queue }, row.account_id, serializeTask(row, signer, clock.now())),
    });
    queue.start({ ...worker.handlers(), [DELIVER_JOB]: dispatcher.handler() }, config.worker.concurrency);
  }

  let shuttingDown = false;
  const app = buildApp({
    db,
    clock,
    log,
    accounts,
    generations,
    files,
    webhooks,
    callbacks: {
      tokens: callbackTokens,
      // The body of a callback is never trusted: it only makes the task's poll due now.
      onHint: (taskId: string) => queue.runNow(db, `poll:${taskId}`),
    },
    idempotency,
    references,
    storage,
    ...(config.storage.driver === "s3" ? { mediaDelivery: config.storage.mediaDelivery } : {}),
    signer,
    rateLimits: new RateLimits({
      create: config.rateLimits.createPerMin,
      upload: config.rateLimits.uploadPerMin,
      read: config.rateLimits.readPerMin,
    }),
    adminToken: config.adminToken,
    publicApiEnabled: config.publicApiEnabled,
    modelNotices: config.providers.includes("simulated")
      ? ["This server runs the Framegate simulator: results are locally rendered placeholder videos, not Kling output."]
      : [],
    baseUrl: () => baseUrl,
    clientAddress: (c) => {
      try {
        return getConnInfo(c as never).remote.address ?? "unknown";
      } catch {
        return "unknown";
      }
    },
    isReady: async () => {
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
      checks.shutdown = shuttingDown ? "in progress" : "no";
      return { ok: !shuttingDown && checks.database === "ok" && checks.storage === "ok", checks };
    },
  });

  // Housekeeping: expired idempotency records and result media past their retention.
  const runMaintenance = async () => {
    const idempotencyPurged = await idempotency.purgeExpired();
    const resultsPurged = await purgeExpiredResults({ db, storage, clock, log });
    const filesPurged = await files.collectGarbage();
    // Local copies of S3 references: kept while a task may still render from them.
    await localFiles.sweep(config.worker.taskDeadlineMs + 3600_000);
    return { idempotencyPurged, resultsPurged, filesPurged };
  };
  const maintenance = setInterval(() => {
    runMaintenance().catch((error) => log.error({ err: error }, "maintenance failed"));
  }, MAINTENANCE_INTERVAL_MS);
  maintenance.unref();

  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  if (!config.publicBaseUrl) baseUrl = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url: baseUrl, providers: config.providers, workers: config.worker.concurrency }, "framegate listening");

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      clearInterval(maintenance);
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      await queue.stop(config.shutdownGraceMs);
      await Promise.all([...providers.values()].map((p) => p.close?.()));
      await Promise.race([httpClosed, new Promise((r) => setTimeout(r, config.shutdownGraceMs).unref())]);
      await store.close();
      storage.close?.();
      log.info("framegate stopped");
    })();
    return closing;
  };

  return { url: baseUrl, port, log, store, accounts, worker, runMaintenance, close };
}
