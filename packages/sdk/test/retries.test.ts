import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeImage } from "../../server/test/fixtures/media.js";
import {
  APIConnectionError,
  ConflictError,
  Framegate,
  InternalServerError,
  RateLimitedError,
  ServiceUnavailableError,
} from "../src/index.js";
import { clientFor, FaultProxy, type Injector, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let proxy: FaultProxy | undefined;

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "framegate-sdk-retries-"));
  let png: string;
  [t, png] = await Promise.all([startTestServer(), makeImage(dir, { format: "png", width: 64, height: 48 })]);
  PNG = await readFile(png);
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const CREATE = "/api/v1/generations";
let PNG: Buffer;

/** A direct client (for checking state) and one whose requests go through a fault-injecting proxy. */
async function setup(inject: Injector, opts: { maxRetries?: number } = {}) {
  const { client: direct, key } = await clientFor(t, 1000);
  proxy = await FaultProxy.start(t.url, inject);
  const client = new Framegate({ apiKey: key, baseUrl: proxy.url, ...opts });
  return { direct, client, proxy };
}

/** Answers the first `n` requests to `method path` with `status`. */
function firstN(
  method: string,
  path: string,
  n: number,
  status: number,
  headers?: Record<string, string>,
  forward = false,
): Injector {
  return (req) =>
    req.method === method && req.path.split("?")[0] === path && req.index < n
      ? { status, headers, forward }
      : undefined;
}

async function tasksOf(direct: Framegate) {
  const ids: string[] = [];
  for await (const task of direct.generations.list()) ids.push(task.id);
  return ids;
}

describe("generations.create retries with one Idempotency-Key", () => {
  it("429 twice (Retry-After: 0), then success: one task, one charge, the same generated key", async () => {
    const { direct, client, proxy } = await setup(firstN("POST", CREATE, 2, 429, { "retry-after": "0" }));
    const task = await client.generations.create({ model: "kling-2-6", prompt: "retry me" });
    const attempts = proxy.matching("POST", CREATE);
    expect(attempts.map((a) => a.outcome)).toEqual([429, 429, "forwarded"]);
    const keys = attempts.map((a) => a.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(keys).size).toBe(1);
    expect(await tasksOf(direct)).toEqual([task.id]);
    expect(await direct.credits.retrieve()).toEqual({ current_credits: 945 });
  });

  it("503 after the server already created the task: the retry replays it (one task, one charge)", async () => {
    // The proxy forwards the first two attempts to the server but answers 503: the client never
    // hears of the task. The retry with the same key is answered from the idempotency record.
    const { direct, client, proxy } = await setup(firstN("POST", CREATE, 2, 503, { "retry-after": "0" }, true));
    const task = await client.generations.create(
      { model: "kling-2-6", prompt: "lost answer" },
      { idempotencyKey: "caller-key-503" },
    );
    const attempts = proxy.matching("POST", CREATE);
    expect(attempts).toHaveLength(3);
    expect(attempts.map((a) => a.headers["idempotency-key"])).toEqual([
      "caller-key-503",
      "caller-key-503",
      "caller-key-503",
    ]);
    expect(await tasksOf(direct)).toEqual([task.id]);
    expect(await direct.credits.retrieve()).toEqual({ current_credits: 945 });
  });

  it("honours Retry-After: 1 and backs off exponentially without it", async () => {
    const { client } = await setup(firstN("POST", CREATE, 1, 429, { "retry-after": "1" }));
    let started = Date.now();
    await client.generations.create({ model: "kling-2-6", prompt: "wait a second" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    await proxy?.close();

    const second = await setup(firstN("POST", CREATE, 2, 503));
    started = Date.now();
    await second.client.generations.create({ model: "kling-2-6", prompt: "backoff" });
    // 0.5 s and 1 s, each with up to 25 % jitter off.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
    expect(second.proxy.matching("POST", CREATE)).toHaveLength(3);
  });

  it("gives up after maxRetries: RateLimitedError, nothing created", async () => {
    const { direct, client, proxy } = await setup(firstN("POST", CREATE, 10, 429, { "retry-after": "0" }));
    const error = await client.generations.create({ model: "kling-2-6", prompt: "never" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfter).toBe(0);
    expect(proxy.matching("POST", CREATE)).toHaveLength(3);
    expect(await tasksOf(direct)).toEqual([]);
    expect(await direct.credits.retrieve()).toEqual({ current_credits: 1000 });
    // Per-call maxRetries.
    await expect(
      client.generations.create({ model: "kling-2-6", prompt: "never" }, { maxRetries: 0 }),
    ).rejects.toBeInstanceOf(RateLimitedError);
    expect(proxy.matching("POST", CREATE)).toHaveLength(4);
  });

  it("does not wait for a Retry-After above 60 s", async () => {
    const { client, proxy } = await setup(firstN("POST", CREATE, 1, 429, { "retry-after": "3600" }));
    await expect(client.generations.create({ model: "kling-2-6", prompt: "later" })).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(proxy.matching("POST", CREATE)).toHaveLength(1);
  });

  it("retries 409 idempotency_conflict while the first request is still running", async () => {
    const { direct, client, proxy } = await setup(firstN("POST", CREATE, 1, 409, { "retry-after": "0" }));
    const task = await client.generations.create({ model: "kling-2-6", prompt: "in flight" });
    expect(proxy.matching("POST", CREATE).map((a) => a.outcome)).toEqual([409, "forwarded"]);
    expect(await tasksOf(direct)).toEqual([task.id]);
  });

  it("a 409 without Retry-After (another body) is not retried", async () => {
    const { client, proxy } = await setup(firstN("POST", CREATE, 5, 409));
    await expect(client.generations.create({ model: "kling-2-6", prompt: "x" })).rejects.toBeInstanceOf(ConflictError);
    expect(proxy.matching("POST", CREATE)).toHaveLength(1);
  });
});

describe("reads retry, other POSTs do not (except 429)", () => {
  it("GET is retried on 503 and 500", async () => {
    const { direct, client, proxy } = await setup((req) =>
      req.method === "GET" && req.index === 0
        ? { status: req.path.startsWith("/api/v1/credits") ? 503 : 500, headers: { "retry-after": "0" } }
        : undefined,
    );
    expect(await client.credits.retrieve()).toEqual({ current_credits: 1000 });
    const task = await direct.generations.create({ model: "kling-2-6", prompt: "read me" });
    expect((await client.generations.retrieve(task.id)).id).toBe(task.id);
    expect(proxy.matching("GET", "/api/v1/credits").map((a) => a.outcome)).toEqual([503, "forwarded"]);
  });

  it("webhooks.create and webhooks.test are not retried on 503 or 500", async () => {
    const { client, proxy } = await setup((req) =>
      req.method === "POST" && req.path.startsWith("/api/v1/webhooks")
        ? { status: req.path.endsWith("/test") ? 500 : 503, headers: { "retry-after": "0" } }
        : undefined,
    );
    await expect(client.webhooks.create({ url: "https://example.com/hook" })).rejects.toBeInstanceOf(
      ServiceUnavailableError,
    );
    expect(proxy.matching("POST", "/api/v1/webhooks")).toHaveLength(1);
    await expect(client.webhooks.test("whend_x")).rejects.toBeInstanceOf(InternalServerError);
    expect(proxy.matching("POST", "/api/v1/webhooks/whend_x/test")).toHaveLength(1);
  });

  it("files.upload is not retried on 503, is retried on 429 for bytes, never for a stream", async () => {
    const first = await setup(firstN("POST", "/api/v1/files", 1, 503, { "retry-after": "0" }));
    await expect(first.client.files.upload(PNG, { kind: "image" })).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(first.proxy.matching("POST", "/api/v1/files")).toHaveLength(1);
    await first.proxy.close();

    const second = await setup(firstN("POST", "/api/v1/files", 1, 429, { "retry-after": "0" }));
    const file = await second.client.files.upload(PNG, { kind: "image", name: "dot.png" });
    expect(file).toMatchObject({ kind: "image", width: 64, height: 48, name: "dot.png" });
    expect(second.proxy.matching("POST", "/api/v1/files").map((a) => a.outcome)).toEqual([429, "forwarded"]);
    await second.proxy.close();

    const third = await setup(firstN("POST", "/api/v1/files", 1, 429, { "retry-after": "0" }));
    await expect(third.client.files.upload(Readable.from([PNG]), { kind: "image" })).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(third.proxy.matching("POST", "/api/v1/files")).toHaveLength(1);
  });
});

describe("waitFor keeps polling through failed reads", () => {
  it("429 (with Retry-After) and 503 answers to status reads do not end the wait", async () => {
    const { direct, client, proxy } = await setup(
      (req) =>
        req.method === "GET" && req.path.startsWith(`${CREATE}/`) && req.index < 3
          ? { status: req.index === 1 ? 503 : 429, headers: { "retry-after": "0" } }
          : undefined,
      { maxRetries: 0 },
    );
    const created = await direct.generations.create({ model: "kling-2-6", prompt: "survive [sim:delay=0]" });
    const task = await client.generations.waitFor(created.id, { pollInterval: { first: 10, min: 50, max: 100 } });
    expect(task.status).toBe("succeeded");
    expect(
      proxy.requests
        .filter((r) => r.method === "GET")
        .map((r) => r.outcome)
        .slice(0, 4),
    ).toEqual([429, 503, 429, "forwarded"]);
  });

  it("onRetry hears of every failed read, while a server that refuses connections comes back", async () => {
    const { client: direct, key } = await clientFor(t, 1000);
    const created = await direct.generations.create({ model: "kling-2-6", prompt: "unreachable [sim:delay=0]" });
    // A port nothing listens on: each read fails with a connection error until the client is
    // pointed back at the server, which is how a restarted server looks to a waiting client.
    const deadPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    let target = `http://127.0.0.1:${deadPort}`;
    const fetchVia: typeof fetch = (input, init) => {
      const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
      return fetch(`${target}${url.pathname}${url.search}`, init);
    };
    const client = new Framegate({ apiKey: key, baseUrl: t.url, maxRetries: 0, fetch: fetchVia });
    const retries: unknown[] = [];
    const task = await client.generations.waitFor(created.id, {
      pollInterval: { first: 10, min: 20, max: 40 },
      onRetry: (error) => {
        retries.push(error);
        if (retries.length === 3) target = t.url;
      },
    });
    expect(task.status).toBe("succeeded");
    expect(retries).toHaveLength(3);
    for (const error of retries) {
      expect(error).toBeInstanceOf(APIConnectionError);
      expect((error as APIConnectionError).message).toMatch(/ECONNREFUSED/);
    }
  });
});

describe("headers", () => {
  it("sends Bearer auth, the SDK headers and JSON content type", async () => {
    const { client, proxy } = await setup(() => undefined);
    await client.generations.create({ model: "kling-2-6", prompt: "headers" });
    const [sent] = proxy.matching("POST", CREATE);
    expect(sent?.headers.authorization).toMatch(/^Bearer rvya_sk_/);
    expect(sent?.headers["user-agent"]).toMatch(/^framegate-sdk-ts\//);
    expect(sent?.headers["x-framegate-sdk"]).toMatch(/^ts\//);
    expect(sent?.headers["content-type"]).toBe("application/json");
    expect(sent?.headers["idempotency-key"]).toBeTruthy();
  });
});
