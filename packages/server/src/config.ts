/**
 * Configuration from the environment, validated once at start-up. A bad value stops the
 * process with a message naming the variable. README's configuration table mirrors this file.
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { parseTrustedProxies } from "./http/client-address.js";

const bool = (defaultValue: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" })
    .default(defaultValue ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");

const int = (defaultValue: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .default(String(defaultValue))
    .refine((v) => /^\d+$/.test(v.trim()), { message: "must be a whole number" })
    .transform((v) => Number.parseInt(v.trim(), 10))
    .refine((n) => n >= min && n <= max, { message: `must be between ${min} and ${max}` });

const size = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .refine((v) => /^\d{2,5}x\d{2,5}$/.test(v), { message: "must look like 1280x720" })
    .transform((v) => {
      const [width, height] = v.split("x").map(Number) as [number, number];
      return { width, height };
    })
    .refine((s) => s.width % 2 === 0 && s.height % 2 === 0, { message: "width and height must be even (H.264)" });

/** "90s", "15m", "2h" or plain seconds → milliseconds. */
const duration = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .refine((v) => /^\d+(\.\d+)?(ms|s|m|h)?$/.test(v.trim()), {
      message: 'must look like "60m", "90s", "2h" or seconds',
    })
    .transform((v) => {
      const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim()) as RegExpExecArray;
      const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
      return Math.round(Number(match[1]) * unit);
    })
    .refine((ms) => ms >= 100, { message: "must be at least 100 ms" });

/** "a, b,,c" → ["a", "b", "c"]. */
const commaList = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((v) =>
      v
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean),
    );

export const PROVIDER_NAMES = ["simulated", "kling", "fal"];

const EnvSchema = z.object({
  PORT: int(8787, 0, 65535),
  HEALTH_PORT: z
    .string()
    .optional()
    .refine((v) => v === undefined || (/^\d+$/.test(v.trim()) && Number(v) <= 65535), {
      message: "must be a port number",
    })
    .transform((v) => (v === undefined ? undefined : Number.parseInt(v.trim(), 10))),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATA_DIR: z.string().min(1).default("./data"),
  // Scheduled backups (backup/schedule.ts): off unless BACKUP_DIR is set.
  BACKUP_DIR: z.string().min(1).optional(),
  BACKUP_INTERVAL: duration("24h").refine((ms) => ms >= 1000, { message: "must be at least 1s" }),
  BACKUP_KEEP: int(7, 1, 10_000),
  PUBLIC_BASE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^https?:\/\/[^/]+/.test(v), { message: "must be an http(s) URL" }),
  ADMIN_TOKEN: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.length === 0 || v.length >= 32, {
      message: "must be at least 32 characters; make one with `openssl rand -hex 32`",
    }),
  // Bearer token of GET /metrics (Prometheus); ADMIN_TOKEN serves when unset, and with neither /metrics is off.
  METRICS_TOKEN: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.length === 0 || v.length >= 32, {
      message: "must be at least 32 characters; make one with `openssl rand -hex 32`",
    }),
  // The admin API on a listener of its own (a private interface), off the public one.
  ADMIN_HOST: z.string().min(1).default("127.0.0.1"),
  ADMIN_PORT: z
    .string()
    .optional()
    .refine((v) => v === undefined || (/^\d+$/.test(v.trim()) && Number(v) <= 65535), {
      message: "must be a port number",
    })
    .transform((v) => (v === undefined ? undefined : Number.parseInt(v.trim(), 10))),
  PUBLIC_API_ENABLED: bool(true),
  TRUSTED_PROXIES: commaList("").superRefine((list, ctx) => {
    try {
      parseTrustedProxies(list);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: `${(error as Error).message} (comma-separated IPs or CIDR ranges)` });
    }
  }),
  RATE_LIMIT_CREATE_PER_MIN: int(60, 0),
  RATE_LIMIT_UPLOAD_PER_MIN: int(60, 0),
  RATE_LIMIT_READ_PER_MIN: int(600, 0),
  RATE_LIMIT_WRITE_PER_MIN: int(60, 0),
  API_KEY_CACHE_SECONDS: int(5, 0, 60),
  // SQLite: answers of polled GETs (a task, the balance) kept while their row is unchanged (store/row-cache.ts); 0: off.
  ANSWER_CACHE_ENTRIES: int(10_000, 0, 1_000_000),
  // How long a web-console sign-in lasts (console/sessions.ts): 1 hour to 30 days.
  CONSOLE_SESSION_TTL_HOURS: int(12, 1, 720),
  // The built web console served at /console (console/static-routes.ts); default: packages/console/dist.
  CONSOLE_DIST_DIR: z.string().min(1).optional(),
  RATE_LIMIT_STORE: z.enum(["auto", "memory", "postgres", "redis"]).default("auto"),
  REDIS_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^rediss?:\/\/\S+$/.test(v), { message: "must be a redis:// or rediss:// URL" }),
  QUEUE_DRIVER: z.enum(["auto", "table", "graphile"]).default("auto"),
  DATABASE_POOL_SIZE: int(10, 1, 1000),
  SQLITE_SYNCHRONOUS: z.enum(["normal", "full"], { message: "must be normal or full" }).default("normal"),
  SQLITE_CHECKPOINT: z
    .enum(["background", "inline"], { message: "must be background or inline" })
    .default("background"),
  DATABASE_CONNECT_TIMEOUT_SECONDS: int(10, 1, 600),
  WORKER_CONCURRENCY: int(4, 0, 256),
  JOB_LEASE_SECONDS: int(30, 1, 3600),
  WORKER_POLL_INTERVAL_MS: int(250, 10, 60_000),
  TASK_DEADLINE: duration("60m"),
  ACCOUNT_MAX_RUNNING_TASKS: int(4, 1, 10_000),
  ACCOUNT_MAX_WEBHOOK_ENDPOINTS: int(20, 1, 10_000),
  ACCOUNT_MAX_FILE_BYTES: int(1024 * 1024 * 1024, 1, 2 ** 50),
  ACCOUNT_MAX_FILES: int(1000, 1, 10_000_000),
  SHUTDOWN_GRACE_SECONDS: int(10, 0, 600),
  REQUEST_TIMEOUT: duration("5m"),
  PROVIDERS: commaList("simulated")
    .refine((list) => list.length > 0 && list.every((p) => PROVIDER_NAMES.includes(p)), {
      message: `must be a comma-separated, ordered list of ${PROVIDER_NAMES.join(", ")}`,
    })
    .refine((list) => new Set(list).size === list.length, { message: "names a provider twice" }),
  KLING_ACCESS_KEY: z.string().optional(),
  KLING_SECRET_KEY: z.string().optional(),
  KLING_BASE_URL: z
    .string()
    .default("https://api-singapore.klingai.com")
    .refine((v) => /^https?:\/\/[^/]+/.test(v), { message: "must be an http(s) URL" }),
  KLING_MODE: z.enum(["std", "pro"]).default("pro"),
  KLING_SEND_IMAGES_AS: z.enum(["url", "base64"]).default("url"),
  KLING_MAX_CONCURRENCY: int(5, 1, 1000),
  FAL_KEY: z.string().optional(),
  FAL_QUEUE_URL: z
    .string()
    .default("https://queue.fal.run")
    .refine((v) => /^https?:\/\/[^/]+/.test(v), { message: "must be an http(s) URL" }),
  FAL_MAX_CONCURRENCY: int(10, 1, 1000),
  PROVIDER_REQUEST_TIMEOUT_SECONDS: int(30, 1, 600),
  POLL_FIRST_DELAY_MS: int(2000, 0, 600_000),
  POLL_MAX_INTERVAL_MS: int(15_000, 10, 600_000),
  PROVIDER_ALLOW_INSECURE_URLS: bool(false),
  CIRCUIT_BREAKER_THRESHOLD: int(5, 1, 1000),
  CIRCUIT_BREAKER_COOLDOWN_SECONDS: int(30, 0, 3600),
  MAX_RESULT_BYTES: int(1024 * 1024 * 1024, 1024),
  RESULT_POSTERS: bool(true),
  WEBHOOK_ALLOW_INSECURE_URLS: bool(false),
  WEBHOOK_RETRY_SCHEDULE_MS: z
    .string()
    .default("5000,300000,1800000,7200000,18000000,36000000,36000000")
    .refine((v) => /^\s*\d+(\s*,\s*\d+)*\s*$/.test(v), { message: "must be a comma-separated list of milliseconds" })
    .transform((v) => v.split(",").map((n) => Number.parseInt(n.trim(), 10))),
  WEBHOOK_AUTO_DISABLE_AFTER_MS: int(5 * 24 * 3600 * 1000, 0),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100, 60_000),
  WEBHOOK_CONCURRENCY: int(8, 1, 256),
  WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT: int(2, 1, 1000),
  WEBHOOK_MAX_INFLIGHT_PER_ACCOUNT: int(4, 1, 1000),
  // Live status (generations/live): held `Prefer: wait` requests, SSE streams, their backstop poll.
  MAX_HELD_REQUESTS: int(1000, 0, 1_000_000),
  SSE_MAX_STREAMS: int(1000, 0, 1_000_000),
  SSE_MAX_STREAMS_PER_ACCOUNT: int(20, 1, 1_000_000),
  SSE_HEARTBEAT_MS: int(15_000, 100, 15_000),
  LIVE_STATUS_POLL_MS: int(1500, 100, 60_000),
  DATABASE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^postgres(ql)?:\/\/\S+$/.test(v), {
      message: "must be a postgres:// or postgresql:// connection string (unset it to use SQLite in DATA_DIR)",
    }),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // auto: readable lines on a terminal, JSON (one object a line) when stdout is a pipe or a file.
  LOG_FORMAT: z.enum(["auto", "pretty", "json"], { message: "must be auto, pretty or json" }).default("auto"),
  SIGNING_SECRET: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.length >= 32, { message: "must be at least 32 characters" }),
  RESULT_RETENTION_DAYS: int(30, 1, 3650),
  FILE_RETENTION_DAYS: int(7, 1, 3650),
  REFERENCE_URL_FETCH: bool(false),
  REFERENCE_URL_ALLOW_INSECURE: bool(false),
  REFERENCE_FETCH_TIMEOUT_SECONDS: int(15, 1, 300),
  // Inspection threads; one core is left to the thread that answers HTTP.
  INSPECT_CONCURRENCY: int(Math.max(1, availableParallelism() - 1), 1, 256),
  INSPECT_TIMEOUT: duration("20s"),
  IMAGE_MAX_SIDE: int(20_000, 1000, 1_000_000),
  // Phones reach 200 MP (16320×12240); the default leaves room for them.
  IMAGE_MAX_PIXELS: int(210_000_000, 1_000_000, 2_000_000_000),
  BOOTSTRAP_DEV_ACCOUNT: bool(true),
  BOOTSTRAP_CREDITS: int(1000, 0),
  FFMPEG_PATH: z.string().optional(),
  SIM_SIZE_1_1: size("720x720"),
  SIM_SIZE_16_9: size("1280x720"),
  SIM_SIZE_9_16: size("720x1280"),
  SIM_FPS: int(24, 1, 60),
  SIM_RENDER_CONCURRENCY: int(1, 1, 16),
  SIMULATOR_RENDER: z.enum(["full", "reuse"], { message: "must be full or reuse" }).default("full"),
  STORAGE_DRIVER: z.enum(["fs", "s3"], { message: "must be fs or s3" }).default("fs"),
  S3_BUCKET: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^[A-Za-z0-9._-]{3,255}$/.test(v), { message: "is not a valid bucket name" }),
  S3_PREFIX: z
    .string()
    .default("")
    .refine((v) => /^[A-Za-z0-9_./-]*$/.test(v) && !v.split("/").includes(".."), {
      message: "may only contain letters, digits and _ . / -",
    }),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_ENDPOINT: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^https?:\/\/[^/]+/.test(v), { message: "must be an http(s) URL" }),
  S3_FORCE_PATH_STYLE: bool(false),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_MEDIA_DELIVERY: z.enum(["redirect", "proxy"], { message: "must be redirect or proxy" }).default("redirect"),
});

export interface S3Config {
  bucket: string;
  prefix: string;
  region: string;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** Both set, or neither (the default AWS credential chain). */
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /** Media downloads: 302 to a presigned bucket URL, or streamed through the server. */
  mediaDelivery: "redirect" | "proxy";
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL connection string; SQLite in dataDir when unset. */
  databaseUrl: string | undefined;
  /** PostgreSQL: connections per process, and how long to wait for one before failing the request. */
  databasePool: { size: number; connectTimeoutMs: number };
  /**
   * SQLite only. synchronous: `normal` (a commit survives the process dying, not a power loss)
   * or `full` (fsync per commit). checkpoint: WAL checkpoints in a background thread, or inside
   * commits (SQLite's auto-checkpoint). See README, "SQLite settings and durability".
   */
  sqlite: { synchronous: "normal" | "full"; checkpoint: "background" | "inline" };
  /** Load balancers whose X-Forwarded-For is believed (IPs and CIDR ranges). */
  trustedProxies: string[];
  /** `framegate worker` serves /healthz and /readyz on this port when set. */
  healthPort: number | undefined;
  /** Base of every URL the API returns, without a trailing slash; when unset, derived from HOST:PORT. */
  publicBaseUrl: string | undefined;
  adminToken: string | undefined;
  /** Bearer token of GET /metrics: METRICS_TOKEN, else ADMIN_TOKEN; undefined = /metrics is off (404). */
  metricsToken: string | undefined;
  /** When set, /admin/v1 is served only on this listener (ADMIN_HOST:ADMIN_PORT), not on HOST:PORT. */
  adminListener: { host: string; port: number } | undefined;
  publicApiEnabled: boolean;
  rateLimits: {
    createPerMin: number;
    uploadPerMin: number;
    readPerMin: number;
    /** Webhook changes, tests and redeliveries (each may send requests to customer endpoints). */
    writePerMin: number;
    /** Where the counters live: this process, the PostgreSQL store, or Redis (shared by every API process). */
    store: "memory" | "postgres" | "redis";
  };
  redisUrl: string | undefined;
  /** The job queue: the portable `jobs` table, or graphile-worker (PostgreSQL only). */
  queueDriver: "table" | "graphile";
  worker: {
    /** Generation jobs this process runs at once; 0 = it runs no jobs of any class (API only). */
    concurrency: number;
    leaseMs: number;
    pollIntervalMs: number;
    /** A task not finished this long after its creation fails with reason timeout. */
    taskDeadlineMs: number;
    /** Running tasks (processing or being submitted) per account, unless the account overrides it. */
    accountMaxRunningTasks: number;
  };
  /** Per-account quotas unless the account overrides them (accounts/quotas.ts): live endpoints, live files. */
  quotas: { maxWebhookEndpoints: number; maxFileBytes: number; maxFiles: number };
  shutdownGraceMs: number;
  /** A request whose headers and body have not all arrived by then is closed (slow clients). */
  requestTimeoutMs: number;
  /** How long a process trusts an API-key lookup it cached (accounts/key-cache.ts); 0: no cache. */
  apiKeyCacheMs: number;
  /** SQLite: how many answers each of the API's row caches keeps (tasks, balances); 0 turns them off. */
  answerCacheEntries: number;
  /** Lifetime of a web-console session from sign-in (console/sessions.ts). */
  consoleSessionTtlMs: number;
  /** The built web console's directory (index.html, assets/); undefined: packages/console/dist. */
  consoleDistDir: string | undefined;
  providers: string[];
  kling: {
    accessKey: string | undefined;
    secretKey: string | undefined;
    baseUrl: string;
    mode: "std" | "pro";
    sendImagesAs: "url" | "base64";
    maxConcurrency: number;
  };
  fal: { key: string | undefined; queueUrl: string; maxConcurrency: number };
  providerRequestTimeoutMs: number;
  /** First poll after an upstream accepted a task, and the longest wait between polls. */
  pollIntervalMs: { first: number; max: number };
  providerAllowInsecureUrls: boolean;
  circuitBreaker: { threshold: number; cooldownMs: number };
  maxResultBytes: number;
  /** RESULT_POSTERS: a JPEG poster frame per result video (`poster_url`). */
  resultPosters: boolean;
  webhooks: {
    allowInsecureUrls: boolean;
    retryScheduleMs: number[];
    autoDisableAfterMs: number;
    timeoutMs: number;
    /** Deliveries this process runs at once, in runners of their own (not the generation runners). */
    concurrency: number;
    /** Deliveries in flight at once across every process, per endpoint and per account. */
    maxInFlight: { perEndpoint: number; perAccount: number };
  };
  /** Live status: `Prefer: wait` holds and SSE streams per process, heartbeat, backstop poll. */
  live: {
    maxHeldRequests: number;
    maxStreams: number;
    maxStreamsPerAccount: number;
    heartbeatMs: number;
    pollMs: number;
  };
  logLevel: string;
  /** LOG_FORMAT; `auto` is decided where the logger is made, by whether stdout is a terminal. */
  logFormat: "auto" | "pretty" | "json";
  signingSecret: string | undefined;
  resultRetentionMs: number;
  fileRetentionMs: number;
  referenceFetch: { enabled: boolean; allowInsecure: boolean; timeoutMs: number };
  /** Uploaded and fetched files are inspected in this many threads, each file within timeoutMs of work. */
  inspection: { concurrency: number; timeoutMs: number; maxImageSide: number; maxImagePixels: number };
  bootstrap: { enabled: boolean; credits: number };
  simulator: {
    ffmpegPath: string | undefined;
    sizes: Record<"1:1" | "16:9" | "9:16", { width: number; height: number }>;
    fps: number;
    renderConcurrency: number;
    /** `reuse`: one render per output shape, linked into later tasks (benchmarks, load tests). */
    render: "full" | "reuse";
  };
  /** Uploads and results: a directory under DATA_DIR, or an S3-compatible bucket. */
  storage: { driver: "fs" } | ({ driver: "s3" } & S3Config);
  /** Scheduled backups into `dir` every `intervalMs`, the newest `keep` kept; undefined: off. */
  backups: { dir: string; intervalMs: number; keep: number } | undefined;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as they do in most .env files.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const missing: string[] = [];
  if (e.PROVIDERS.includes("kling") && !(e.KLING_ACCESS_KEY && e.KLING_SECRET_KEY)) {
    missing.push("  KLING_ACCESS_KEY / KLING_SECRET_KEY: required when PROVIDERS includes kling");
  }
  if (e.PROVIDERS.includes("fal") && !e.FAL_KEY) missing.push("  FAL_KEY: required when PROVIDERS includes fal");
  if (e.STORAGE_DRIVER === "s3" && !e.S3_BUCKET) missing.push("  S3_BUCKET: required when STORAGE_DRIVER is s3");
  if (!e.S3_ACCESS_KEY_ID !== !e.S3_SECRET_ACCESS_KEY) {
    missing.push("  S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: set both, or neither to use the AWS credential chain");
  }
  if (e.RATE_LIMIT_STORE === "redis" && !e.REDIS_URL)
    missing.push("  REDIS_URL: required when RATE_LIMIT_STORE is redis");
  if (e.RATE_LIMIT_STORE === "postgres" && !e.DATABASE_URL) {
    missing.push("  DATABASE_URL: required when RATE_LIMIT_STORE is postgres");
  }
  if (e.QUEUE_DRIVER === "graphile" && !e.DATABASE_URL) {
    missing.push("  DATABASE_URL: required when QUEUE_DRIVER is graphile (graphile-worker runs on PostgreSQL)");
  }
  if (missing.length) throw new ConfigError(`Invalid configuration:\n${missing.join("\n")}`);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    healthPort: e.HEALTH_PORT,
    databasePool: { size: e.DATABASE_POOL_SIZE, connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_SECONDS * 1000 },
    sqlite: { synchronous: e.SQLITE_SYNCHRONOUS, checkpoint: e.SQLITE_CHECKPOINT },
    trustedProxies: e.TRUSTED_PROXIES,
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ""),
    adminToken: e.ADMIN_TOKEN || undefined,
    metricsToken: e.METRICS_TOKEN || e.ADMIN_TOKEN || undefined,
    adminListener: e.ADMIN_PORT === undefined ? undefined : { host: e.ADMIN_HOST, port: e.ADMIN_PORT },
    publicApiEnabled: e.PUBLIC_API_ENABLED,
    rateLimits: {
      createPerMin: e.RATE_LIMIT_CREATE_PER_MIN,
      uploadPerMin: e.RATE_LIMIT_UPLOAD_PER_MIN,
      readPerMin: e.RATE_LIMIT_READ_PER_MIN,
      writePerMin: e.RATE_LIMIT_WRITE_PER_MIN,
      store:
        e.RATE_LIMIT_STORE !== "auto"
          ? e.RATE_LIMIT_STORE
          : e.REDIS_URL
            ? "redis"
            : e.DATABASE_URL
              ? "postgres"
              : "memory",
    },
    redisUrl: e.REDIS_URL,
    queueDriver: e.QUEUE_DRIVER !== "auto" ? e.QUEUE_DRIVER : e.DATABASE_URL ? "graphile" : "table",
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      leaseMs: e.JOB_LEASE_SECONDS * 1000,
      pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
      taskDeadlineMs: e.TASK_DEADLINE,
      accountMaxRunningTasks: e.ACCOUNT_MAX_RUNNING_TASKS,
    },
    quotas: {
      maxWebhookEndpoints: e.ACCOUNT_MAX_WEBHOOK_ENDPOINTS,
      maxFileBytes: e.ACCOUNT_MAX_FILE_BYTES,
      maxFiles: e.ACCOUNT_MAX_FILES,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    requestTimeoutMs: e.REQUEST_TIMEOUT,
    apiKeyCacheMs: e.API_KEY_CACHE_SECONDS * 1000,
    answerCacheEntries: e.ANSWER_CACHE_ENTRIES,
    consoleSessionTtlMs: e.CONSOLE_SESSION_TTL_HOURS * 3600_000,
    consoleDistDir: e.CONSOLE_DIST_DIR ? resolve(e.CONSOLE_DIST_DIR) : undefined,
    providers: e.PROVIDERS,
    kling: {
      accessKey: e.KLING_ACCESS_KEY,
      secretKey: e.KLING_SECRET_KEY,
      baseUrl: e.KLING_BASE_URL.replace(/\/+$/, ""),
      mode: e.KLING_MODE,
      sendImagesAs: e.KLING_SEND_IMAGES_AS,
      maxConcurrency: e.KLING_MAX_CONCURRENCY,
    },
    fal: { key: e.FAL_KEY, queueUrl: e.FAL_QUEUE_URL.replace(/\/+$/, ""), maxConcurrency: e.FAL_MAX_CONCURRENCY },
    providerRequestTimeoutMs: e.PROVIDER_REQUEST_TIMEOUT_SECONDS * 1000,
    pollIntervalMs: { first: e.POLL_FIRST_DELAY_MS, max: e.POLL_MAX_INTERVAL_MS },
    providerAllowInsecureUrls: e.PROVIDER_ALLOW_INSECURE_URLS,
    circuitBreaker: { threshold: e.CIRCUIT_BREAKER_THRESHOLD, cooldownMs: e.CIRCUIT_BREAKER_COOLDOWN_SECONDS * 1000 },
    maxResultBytes: e.MAX_RESULT_BYTES,
    resultPosters: e.RESULT_POSTERS,
    webhooks: {
      allowInsecureUrls: e.WEBHOOK_ALLOW_INSECURE_URLS,
      retryScheduleMs: e.WEBHOOK_RETRY_SCHEDULE_MS,
      autoDisableAfterMs: e.WEBHOOK_AUTO_DISABLE_AFTER_MS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      maxInFlight: { perEndpoint: e.WEBHOOK_MAX_INFLIGHT_PER_ENDPOINT, perAccount: e.WEBHOOK_MAX_INFLIGHT_PER_ACCOUNT },
    },
    live: {
      maxHeldRequests: e.MAX_HELD_REQUESTS,
      maxStreams: e.SSE_MAX_STREAMS,
      maxStreamsPerAccount: e.SSE_MAX_STREAMS_PER_ACCOUNT,
      heartbeatMs: e.SSE_HEARTBEAT_MS,
      pollMs: e.LIVE_STATUS_POLL_MS,
    },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    signingSecret: e.SIGNING_SECRET,
    resultRetentionMs: e.RESULT_RETENTION_DAYS * 24 * 3600 * 1000,
    fileRetentionMs: e.FILE_RETENTION_DAYS * 24 * 3600 * 1000,
    referenceFetch: {
      enabled: e.REFERENCE_URL_FETCH,
      allowInsecure: e.REFERENCE_URL_ALLOW_INSECURE,
      timeoutMs: e.REFERENCE_FETCH_TIMEOUT_SECONDS * 1000,
    },
    inspection: {
      concurrency: e.INSPECT_CONCURRENCY,
      timeoutMs: e.INSPECT_TIMEOUT,
      maxImageSide: e.IMAGE_MAX_SIDE,
      maxImagePixels: e.IMAGE_MAX_PIXELS,
    },
    bootstrap: { enabled: e.BOOTSTRAP_DEV_ACCOUNT, credits: e.BOOTSTRAP_CREDITS },
    simulator: {
      ffmpegPath: e.FFMPEG_PATH,
      sizes: { "1:1": e.SIM_SIZE_1_1, "16:9": e.SIM_SIZE_16_9, "9:16": e.SIM_SIZE_9_16 },
      fps: e.SIM_FPS,
      renderConcurrency: e.SIM_RENDER_CONCURRENCY,
      render: e.SIMULATOR_RENDER,
    },
    storage:
      e.STORAGE_DRIVER === "s3"
        ? {
            driver: "s3",
            bucket: e.S3_BUCKET as string,
            prefix: e.S3_PREFIX,
            region: e.S3_REGION,
            endpoint: e.S3_ENDPOINT?.replace(/\/+$/, ""),
            forcePathStyle: e.S3_FORCE_PATH_STYLE,
            accessKeyId: e.S3_ACCESS_KEY_ID,
            secretAccessKey: e.S3_SECRET_ACCESS_KEY,
            mediaDelivery: e.S3_MEDIA_DELIVERY,
          }
        : { driver: "fs" },
    backups: e.BACKUP_DIR
      ? { dir: resolve(e.BACKUP_DIR), intervalMs: e.BACKUP_INTERVAL, keep: e.BACKUP_KEEP }
      : undefined,
  };
}

/** Names of every environment variable the configuration reads (deploy files are checked against it). */
export const CONFIG_KEYS: readonly string[] = Object.keys(EnvSchema.shape);
