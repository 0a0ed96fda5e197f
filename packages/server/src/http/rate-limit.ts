/**
 * Per-key rate limits with rate-limiter-flexible, and the IETF RateLimit-Policy / RateLimit
 * header fields on every response.
 *
 * The counters live in this process (embedded default) or, so that several API processes share
 * one budget, in PostgreSQL or Redis. A shared store that is down never fails a request: each
 * shared limiter has an in-memory insurance limiter that answers instead (per-process limits
 * until the store is back).
 */
import type { MiddlewareHandler } from "hono";
import { Redis } from "ioredis";
import type pg from "pg";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import { ApiError } from "../errors.js";
import type { AppEnv } from "./context.js";

/** `write`: requests that change webhook state or make deliveries (a redeliver fans out to every endpoint). */
export type LimitName = "create" | "upload" | "read" | "write";

export type RateLimitBackend =
  | { kind: "memory" }
  | { kind: "postgres"; pool: pg.Pool }
  | { kind: "redis"; url: string };

/** What a backend needs to build the limiter of one bucket. */
export interface LimiterOptions {
  keyPrefix: LimitName;
  points: number;
  duration: number;
}

/** Where connection trouble of a shared store is reported (a pino logger fits). */
export interface RateLimitLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const WINDOW_SECONDS = 60;
/** One table for every bucket on PostgreSQL: keys are prefixed with the bucket name. */
export const RATE_LIMIT_TABLE = "rate_limits";
const REDIS_KEY_PREFIX = "framegate:rate-limit:";
/** A Redis that accepts connections but does not answer must not hold requests for long. */
const REDIS_COMMAND_TIMEOUT_MS = 1000;

const memoryLimiter = (opts: LimiterOptions): RateLimiterAbstract => new RateLimiterMemory(opts);

export class RateLimits {
  private readonly limiters = new Map<LimitName, { limiter: RateLimiterAbstract; points: number }>();
  /** Told of every request refused with rate_limited, by bucket (metrics; server.ts sets it). */
  onLimited: ((bucket: LimitName) => void) | undefined;

  /**
   * In-memory limits by default; createRateLimits passes a shared store's limiter and the
   * function that releases its connection.
   */
  constructor(
    perMinute: Record<LimitName, number>,
    makeLimiter: (opts: LimiterOptions) => RateLimiterAbstract = memoryLimiter,
    private readonly release: () => Promise<void> = async () => {},
  ) {
    for (const [name, points] of Object.entries(perMinute) as [LimitName, number][]) {
      if (points > 0) {
        this.limiters.set(name, {
          limiter: makeLimiter({ keyPrefix: name, points, duration: WINDOW_SECONDS }),
          points,
        });
      }
    }
  }

  /**
   * Charges one point of `name` to `subject`. Returns the headers to send, or throws
   * rate_limited (with Retry-After) when the budget is spent. Unlimited buckets return {}.
   */
  async consume(name: LimitName, subject: string): Promise<Record<string, string>> {
    const entry = this.limiters.get(name);
    if (!entry) return {};
    try {
      const res = await entry.limiter.consume(subject);
      return headers(name, entry.points, res.remainingPoints, secondsUntil(res));
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      this.onLimited?.(name);
      throw limitExceeded(name, entry.points, rejection);
    }
  }

  /**
   * Throws rate_limited (with Retry-After) when `subject` has spent its budget of `name`,
   * without charging anything: for requests that only pay when they fail (admin auth).
   */
  async assertAvailable(name: LimitName, subject: string): Promise<void> {
    const entry = this.limiters.get(name);
    if (!entry) return;
    const res = await entry.limiter.get(subject);
    if (res && res.consumedPoints >= entry.points) {
      this.onLimited?.(name);
      throw limitExceeded(name, entry.points, res);
    }
  }

  /**
   * The headers of `subject`'s budget of `name` without charging it: for answers given before a
   * request is identified (unknown path, wrong method, public API switched off), which api-contract
   * §8 still has carry the RateLimit fields but which should not spend anyone's budget.
   */
  async peek(name: LimitName, subject: string): Promise<Record<string, string>> {
    const entry = this.limiters.get(name);
    if (!entry) return {};
    // A store that cannot answer leaves the fields out: an unknown path stays a 404, not a 500.
    const res = await entry.limiter.get(subject).catch(() => undefined);
    if (res === undefined) return {};
    if (!res) return headers(name, entry.points, entry.points, WINDOW_SECONDS);
    return headers(name, entry.points, entry.points - res.consumedPoints, secondsUntil(res));
  }

  /**
   * The middleware charging one point to `name` for the caller (API key, or client address), as a
   * list to spread into a route: empty for a bucket that is off, which charges nothing and adds no
   * headers, so such a route does not pay for a layer that only passes the request on.
   */
  middleware(
    name: LimitName,
    clientAddress: (c: Parameters<MiddlewareHandler<AppEnv>>[0]) => string,
  ): MiddlewareHandler<AppEnv>[] {
    if (!this.limiters.has(name)) return [];
    return [
      async (c, next) => {
        const subject = c.get("auth")?.keyId ?? `ip:${clientAddress(c)}`;
        const limitHeaders = await this.consume(name, subject);
        await next();
        for (const [k, v] of Object.entries(limitHeaders)) c.header(k, v);
      },
    ];
  }

  /** Releases the shared store's connection (the Redis client); a no-op otherwise. */
  close(): Promise<void> {
    return this.release();
  }
}

/**
 * Rate limits on `backend`. PostgreSQL uses the store's pool (left open: the store owns it) and
 * its table exists when this resolves. Redis gets its own client; an unreachable Redis does not
 * stop the start, the insurance limiters answer until it is reachable.
 */
export async function createRateLimits(
  perMinute: Record<LimitName, number>,
  backend: RateLimitBackend,
  log?: RateLimitLog,
): Promise<RateLimits> {
  switch (backend.kind) {
    case "memory":
      return new RateLimits(perMinute);
    case "postgres": {
      await createRateLimitTable(backend.pool);
      return new RateLimits(
        perMinute,
        (opts) =>
          new RateLimiterPostgres({
            ...opts,
            storeClient: backend.pool,
            tableName: RATE_LIMIT_TABLE,
            tableCreated: true,
            insuranceLimiter: new RateLimiterMemory(opts),
          }),
      );
    }
    case "redis": {
      const client = await connectRedis(backend.url, log);
      return new RateLimits(
        perMinute,
        (opts) =>
          new RateLimiterRedis({
            ...opts,
            // The Redis may serve other applications too: keys are namespaced.
            keyPrefix: `${REDIS_KEY_PREFIX}${opts.keyPrefix}`,
            storeClient: client,
            insuranceLimiter: new RateLimiterMemory(opts),
          }),
        async () => {
          // QUIT needs a live connection; otherwise just stop reconnecting.
          if (client.status === "ready") await client.quit().catch(() => client.disconnect());
          else client.disconnect();
        },
      );
    }
  }
}

/**
 * duplicate_table; or, when two sessions create it at once, the unique index of pg_type/pg_class
 * (unique_violation) or the table's row type (duplicate_object: `type "rate_limits" already exists`).
 */
const TABLE_EXISTS = ["42P07", "23505", "42710"];

/**
 * Creates the limiter table here rather than in RateLimiterPostgres, which starts the creation
 * in its constructor without a promise to await, once per bucket, and takes only the unique
 * violation of a concurrent create as success. The columns are the ones it reads and writes.
 */
async function createRateLimitTable(pool: pg.Pool): Promise<void> {
  try {
    await pool.query(`create table if not exists "${RATE_LIMIT_TABLE}" (
      key varchar(255) primary key,
      points integer not null default 0,
      expire bigint
    )`);
  } catch (error) {
    // Another API process starting at the same moment created it.
    if (!TABLE_EXISTS.includes((error as { code?: string }).code ?? "")) throw error;
  }
}

/**
 * A Redis client that fails commands at once while disconnected (no offline queue, as
 * rate-limiter-flexible recommends) and reconnects in the background. Connection trouble is
 * logged once per outage, by error code only: the URL may hold a password.
 */
async function connectRedis(url: string, log?: RateLimitLog): Promise<Redis> {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    lazyConnect: true,
  });
  let reachable = true;
  // Without an error listener ioredis prints every failed reconnect to stderr.
  client.on("error", (error: Error & { code?: string }) => {
    if (!reachable) return;
    reachable = false;
    log?.warn(
      { store: "redis", reason: error.code ?? error.name },
      "rate limit store unreachable: per-process limits until it is back",
    );
  });
  client.on("ready", () => {
    if (reachable) return;
    reachable = true;
    log?.info({ store: "redis" }, "rate limit store reachable again: limits are shared");
  });
  // A failed first connect was reported by the error listener; ioredis keeps retrying.
  await client.connect().catch(() => {});
  return client;
}

function limitExceeded(name: LimitName, points: number, res: RateLimiterRes): ApiError {
  const reset = secondsUntil(res);
  return new ApiError("rate_limited", `Rate limit of ${points} requests per minute exceeded; retry in ${reset} s.`, {
    headers: { ...headers(name, points, 0, reset), "Retry-After": String(reset) },
  });
}

function secondsUntil(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

function headers(name: LimitName, quota: number, remaining: number, resetSeconds: number): Record<string, string> {
  return {
    "RateLimit-Policy": `"${name}";q=${quota};w=${WINDOW_SECONDS}`,
    RateLimit: `"${name}";r=${Math.max(0, remaining)};t=${resetSeconds}`,
  };
}
