import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBigImage, makeTextFile } from "../../server/test/fixtures/media.js";
import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  AuthenticationError,
  ConflictError,
  FileTooLargeError,
  Framegate,
  FramegateError,
  InsufficientCreditsError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  QuotaExceededError,
  RateLimitedError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "framegate-sdk-errors-"));
  t = await startTestServer();
  ({ client } = await clientFor(t, 1000));
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function caught(promise: Promise<unknown>): Promise<FramegateError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FramegateError);
  return error as FramegateError;
}

function expectRequestId(error: FramegateError) {
  expect(error.requestId).toMatch(/^req_/);
  expect(error.headers?.get("x-request-id")).toBe(error.requestId);
}

describe("API errors map to classes with status, code, message and requestId", () => {
  it("400 validation_failed → ValidationError with details", async () => {
    const error = await caught(
      // @ts-expect-error duration "7" is not an option of kling-2-6 (checked at runtime too)
      client.generations.create({ model: "kling-2-6", prompt: "hi", params: { duration: "7" } }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({
      name: "ValidationError",
      status: 400,
      code: "validation_failed",
      details: [{ path: "params.duration", issue: 'must be one of "5", "10"' }],
    });
    expect(error.message).toMatch(/params\.duration/);
    expectRequestId(error);
  });

  it("401 api_key_* → AuthenticationError", async () => {
    const bad = new Framegate({ baseUrl: t.url, apiKey: "rvya_sk_nope" });
    const error = await caught(bad.credits.retrieve());
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: "api_key_invalid" });
    expectRequestId(error);
    const none = new Framegate({ baseUrl: t.url, apiKey: "" });
    expect(await caught(none.credits.retrieve())).toMatchObject({ code: "api_key_missing", status: 401 });
  });

  it("402 insufficient_credits → InsufficientCreditsError", async () => {
    const { client: poor } = await clientFor(t, 10);
    const error = await caught(poor.generations.create({ model: "kling-2-6", prompt: "too expensive" }));
    expect(error).toBeInstanceOf(InsufficientCreditsError);
    expect(error).toMatchObject({ status: 402, code: "insufficient_credits" });
    expectRequestId(error);
  });

  it("403 api_scope_denied → PermissionDeniedError", async () => {
    const { client: narrow } = await clientFor(t, 100, { scopes: ["generations:read"] });
    const error = await caught(narrow.credits.retrieve());
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ status: 403, code: "api_scope_denied" });
    expectRequestId(error);
  });

  it("403 quota_exceeded → QuotaExceededError (a PermissionDeniedError) naming the limit", async () => {
    const small = await startTestServer({ ACCOUNT_MAX_WEBHOOK_ENDPOINTS: "1", WEBHOOK_ALLOW_INSECURE_URLS: "true" });
    try {
      const { client: c } = await clientFor(small, 0, { maxRetries: 0 });
      await c.webhooks.create({ url: "http://127.0.0.1:9/first" });
      const error = await caught(c.webhooks.create({ url: "http://127.0.0.1:9/second" }));
      expect(error).toBeInstanceOf(QuotaExceededError);
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect(error).toMatchObject({ status: 403, code: "quota_exceeded" });
      expect(error.message).toContain("limit 1");
      expectRequestId(error);
    } finally {
      await small.close();
    }
  });

  it("404 not_found → NotFoundError", async () => {
    const error = await caught(client.generations.retrieve("task_doesnotexist"));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: "not_found" });
    expectRequestId(error);
    expect(await caught(client.files.retrieve("file_nope"))).toBeInstanceOf(NotFoundError);
  });

  it("409 idempotency_conflict (same key, another body) → ConflictError, not retried", async () => {
    let posts = 0;
    const { key } = await clientFor(t, 1000);
    const counting = new Framegate({
      baseUrl: t.url,
      apiKey: key,
      fetch: (input, init) => {
        if (init?.method === "POST") posts++;
        return fetch(input, init);
      },
    });
    await counting.generations.create({ model: "kling-2-6", prompt: "first" }, { idempotencyKey: "conflict-1" });
    posts = 0;
    const error = await caught(
      counting.generations.create({ model: "kling-2-6", prompt: "second" }, { idempotencyKey: "conflict-1" }),
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, code: "idempotency_conflict" });
    expectRequestId(error);
    expect(posts).toBe(1);
  });

  it("413 payload_too_large → PayloadTooLargeError", async () => {
    const error = await caught(client.generations.create({ model: "kling-2-6", prompt: "x".repeat(70 * 1024) }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).not.toBeInstanceOf(FileTooLargeError);
    expect(error).toMatchObject({ status: 413, code: "payload_too_large" });
    expectRequestId(error);
  });

  it("413 file_too_large → FileTooLargeError (a PayloadTooLargeError)", async () => {
    const big = await makeBigImage(dir, 11 * 1024 * 1024);
    const error = await caught(client.files.upload(big, { kind: "image", model: "kling-2-6" }));
    expect(error).toBeInstanceOf(FileTooLargeError);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ status: 413, code: "file_too_large" });
    expectRequestId(error);
  });

  it("415 unsupported_media_type → UnsupportedMediaTypeError", async () => {
    const text = await makeTextFile(dir);
    const error = await caught(client.files.upload(text, { kind: "image" }));
    expect(error).toBeInstanceOf(UnsupportedMediaTypeError);
    expect(error).toMatchObject({ status: 415, code: "unsupported_media_type" });
    expectRequestId(error);
  });

  it("429 rate_limited → RateLimitedError with retryAfter (after the retries ran out)", async () => {
    const limited = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "2" });
    try {
      const { client: c } = await clientFor(limited, 100, { maxRetries: 0 });
      await c.credits.retrieve();
      await c.credits.retrieve();
      const error = await caught(c.credits.retrieve());
      expect(error).toBeInstanceOf(RateLimitedError);
      expect(error).toMatchObject({ status: 429, code: "rate_limited" });
      expect((error as RateLimitedError).retryAfter).toBeGreaterThan(0);
      expect((error as RateLimitedError).retryAfter).toBeLessThanOrEqual(60);
      expectRequestId(error);
    } finally {
      await limited.close();
    }
  });

  it("503 public_api_disabled → ServiceUnavailableError", async () => {
    const off = await startTestServer({ PUBLIC_API_ENABLED: "false" });
    try {
      const c = new Framegate({ baseUrl: off.url, apiKey: "rvya_sk_x", maxRetries: 0 });
      const error = await caught(c.models.list());
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect(error).toMatchObject({ status: 503, code: "public_api_disabled" });
      expectRequestId(error);
    } finally {
      await off.close();
    }
  });
});

describe("network errors", () => {
  it("a refused connection → APIConnectionError (after retrying)", async () => {
    let attempts = 0;
    const c = new Framegate({
      baseUrl: "http://127.0.0.1:1",
      apiKey: "k",
      maxRetries: 1,
      fetch: (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    const error = await caught(c.credits.retrieve());
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(error).not.toBeInstanceOf(APITimeoutError);
    expect(error.code).toBe("api_connection_error");
    expect(error.status).toBeUndefined();
    expect(attempts).toBe(2);
  });

  it("a slow answer → APITimeoutError; a caller abort → AbortError", async () => {
    const hang = (_: unknown, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    const c = new Framegate({ baseUrl: t.url, apiKey: "k", timeout: 100, maxRetries: 1, fetch: hang as typeof fetch });
    const error = await caught(c.credits.retrieve());
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(error.code).toBe("api_timeout");

    const slow = new Framegate({ baseUrl: t.url, apiKey: "k", timeout: 10_000, fetch: hang as typeof fetch });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(slow.credits.retrieve({ signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
  });

  it("a non-JSON error page still maps by status, with the X-Request-Id header", async () => {
    const html = async () =>
      new Response("<html>Bad gateway</html>", { status: 404, headers: { "x-request-id": "req_fromheader" } });
    const c = new Framegate({ baseUrl: t.url, apiKey: "k", fetch: html });
    const error = await caught(c.generations.retrieve("task_x"));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: "http_404", requestId: "req_fromheader" });
  });
});
