/**
 * Per-key rate limits with rate-limiter-flexible (in memory for the embedded default), and the
 * IETF RateLimit-Policy / RateLimit header fields on every response.
 */
import type { MiddlewareHandler } from "hono";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { AppEnv } from "./context.js";
import { ApiError } from "./errors.js";

export type LimitName = "create" | "upload" | "read";

const WINDOW_SECONDS = 60;

export class RateLimits {
  private readonly limiters = new Map<LimitName, { limiter: RateLimiterMemory; points: number }>();

  constructor(perMinute: Record<LimitName, number>) {
    for (const [name, points] of Object.entries(perMinute) as [LimitName, number][]) {
      if (points > 0) {
        this.limiters.set(name, {
          limiter: new RateLimiterMemory({ keyPrefix: name, points, duration: WINDOW_SECONDS }),
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
      const reset = secondsUntil(rejection);
      throw new ApiError(
        "rate_limited",
        `Rate limit of ${entry.points} requests per minute exceeded; retry in ${reset} s.`,
        {
          headers: { ...headers(name, entry.points, 0, reset), "Retry-After": String(reset) },
        },
      );
    }
  }

  /** Middleware charging one point to `name` for the caller (API key, or client address). */
  middleware(
    name: LimitName,
    clientAddress: (c: Parameters<MiddlewareHandler<AppEnv>>[0]) => string,
  ): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      const subject = c.get("auth")?.keyId ?? `ip:${clientAddress(c)}`;
      const limitHeaders = await this.consume(name, subject);
      await next();
      for (const [k, v] of Object.entries(limitHeaders)) c.header(k, v);
    };
  }
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
