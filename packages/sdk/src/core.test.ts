import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryDelay, shouldRetry } from "./core.js";
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  AuthenticationError,
  ConflictError,
  errorFromResponse,
  InternalServerError,
  parseRetryAfter,
  RateLimitedError,
  ServiceUnavailableError,
  ValidationError,
} from "./errors.js";
import { Framegate, VERSION } from "./index.js";

const json = (status: number, code: string, headers: Record<string, string> = {}) =>
  errorFromResponse(
    status,
    new Headers(headers),
    JSON.stringify({ error: { code, message: `m ${code}`, requestId: "req_1" } }),
  );

describe("error mapping", () => {
  it("maps by code first, then by status", () => {
    expect(json(401, "api_key_revoked")).toBeInstanceOf(AuthenticationError);
    expect(json(503, "public_api_disabled")).toBeInstanceOf(ServiceUnavailableError);
    expect(json(400, "something_new")).toBeInstanceOf(ValidationError);
    expect(json(502, "bad_gateway")).toBeInstanceOf(InternalServerError);
    expect(json(418, "teapot")).toBeInstanceOf(APIError);
    expect(json(418, "teapot").constructor).toBe(APIError);
    const limited = json(429, "rate_limited", { "retry-after": "7" }) as RateLimitedError;
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect(limited.retryAfter).toBe(7);
    expect(limited.requestId).toBe("req_1");
    expect(limited.name).toBe("RateLimitedError");
  });

  it("parses Retry-After seconds and dates", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter(new Headers({ "retry-after": "0" }))).toBe(0);
    expect(parseRetryAfter(new Headers({ "retry-after": "1.5" }))).toBe(1.5);
    expect(parseRetryAfter(new Headers({ "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" }), now)).toBe(30);
    expect(parseRetryAfter(new Headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfter(new Headers())).toBeUndefined();
  });
});

describe("retry policy", () => {
  const refused = new APIConnectionError("x", {
    cause: new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }),
  });
  const reset = new APIConnectionError("x", {
    cause: new TypeError("fetch failed", { cause: { code: "ECONNRESET" } }),
  });

  it("idempotent requests retry connection errors, timeouts, 408, 429, 5xx and a running 409", () => {
    for (const e of [
      refused,
      reset,
      new APITimeoutError(),
      json(429, "rate_limited"),
      json(500, "internal_error"),
      json(503, "x"),
      json(408, "x"),
    ]) {
      expect(shouldRetry("idempotent", e)).toBe(true);
    }
    expect(shouldRetry("idempotent", json(409, "idempotency_conflict", { "retry-after": "1" }))).toBe(true);
    expect(shouldRetry("idempotent", json(409, "idempotency_conflict"))).toBe(false);
    expect(shouldRetry("idempotent", json(400, "validation_failed"))).toBe(false);
    expect(shouldRetry("idempotent", json(404, "not_found"))).toBe(false);
    expect(json(409, "idempotency_conflict")).toBeInstanceOf(ConflictError);
  });

  it("unsafe requests retry only 429 and connections that were never made", () => {
    expect(shouldRetry("unsafe", json(429, "rate_limited"))).toBe(true);
    expect(shouldRetry("unsafe", refused)).toBe(true);
    expect(shouldRetry("unsafe", reset)).toBe(false);
    expect(shouldRetry("unsafe", new APITimeoutError())).toBe(false);
    expect(shouldRetry("unsafe", json(503, "service_unavailable"))).toBe(false);
    expect(shouldRetry("unsafe", json(500, "internal_error"))).toBe(false);
  });

  it("backs off exponentially with jitter, capped, and follows Retry-After", () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const base = Math.min(500 * 2 ** attempt, 8000);
      const d = retryDelay(attempt, undefined);
      expect(d).toBeGreaterThanOrEqual(base * 0.75);
      expect(d).toBeLessThanOrEqual(base);
    }
    expect(retryDelay(3, 2)).toBe(2000);
  });
});

describe("client configuration", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  function capture() {
    const calls: { url: string; headers: Headers }[] = [];
    const fetchImpl = async (input: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(input), headers: new Headers(init?.headers) });
      return new Response(JSON.stringify({ current_credits: 1 }), { headers: { "content-type": "application/json" } });
    };
    return { calls, fetch: fetchImpl as typeof fetch };
  }

  it("reads FRAMEGATE_API_KEY, then RIVYA_API_KEY, and FRAMEGATE_BASE_URL", async () => {
    const { calls, fetch } = capture();
    vi.stubEnv("FRAMEGATE_API_KEY", "");
    vi.stubEnv("RIVYA_API_KEY", "rvya_sk_rivya");
    vi.stubEnv("FRAMEGATE_BASE_URL", "https://api.example.com/prefix/");
    await new Framegate({ fetch }).credits.retrieve();
    expect(calls[0]?.url).toBe("https://api.example.com/prefix/api/v1/credits");
    expect(calls[0]?.headers.get("authorization")).toBe("Bearer rvya_sk_rivya");

    vi.stubEnv("FRAMEGATE_API_KEY", "rvya_sk_framegate");
    vi.stubEnv("FRAMEGATE_BASE_URL", "");
    const client = new Framegate({ fetch, defaultHeaders: { "x-extra": "1" } });
    expect(client.baseUrl).toBe("http://127.0.0.1:8787");
    await client.credits.retrieve({ headers: { "x-call": "2" } });
    expect(calls[1]?.headers.get("authorization")).toBe("Bearer rvya_sk_framegate");
    expect(calls[1]?.headers.get("x-extra")).toBe("1");
    expect(calls[1]?.headers.get("x-call")).toBe("2");
  });

  it("explicit options win over the environment", async () => {
    const { calls, fetch } = capture();
    vi.stubEnv("FRAMEGATE_API_KEY", "rvya_sk_env");
    await new Framegate({ fetch, apiKey: "rvya_sk_opt", baseUrl: "http://h:1" }).credits.retrieve();
    expect(calls[0]?.url).toBe("http://h:1/api/v1/credits");
    expect(calls[0]?.headers.get("authorization")).toBe("Bearer rvya_sk_opt");
  });

  it("a 2xx that is not JSON is an invalid_response error", async () => {
    const html = (async () => new Response("<html>", { status: 200 })) as typeof fetch;
    await expect(new Framegate({ fetch: html, apiKey: "k" }).credits.retrieve()).rejects.toMatchObject({
      code: "invalid_response",
    });
  });
});

describe("version", () => {
  it("VERSION matches package.json", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../package.json"), "utf8")) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});

describe("portability", () => {
  it("the SDK's sources import no node: module, except the lazy node:fs for file paths (uploads, downloads)", () => {
    const dir = import.meta.dirname;
    const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter(
      (f) => f.endsWith(".ts") && !f.endsWith(".test.ts"),
    );
    expect(files.length).toBeGreaterThan(5);
    const offenders: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(dir, file), "utf8");
      for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)["']([^"']+)["']/g)) {
        const spec = match[1] as string;
        if (spec.startsWith(".")) continue;
        const readsFiles = file === "uploads.ts" || file === "download.ts";
        if (readsFiles && match[0].startsWith("import(") && spec === "node:fs") continue;
        offenders.push(`${file}: ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
