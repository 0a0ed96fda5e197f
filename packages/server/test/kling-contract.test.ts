/**
 * Contract tests: the Kling adapter against the fake upstream (test/fakes/fake-kling.ts), which
 * speaks the documented protocol with its quirks. Every request body, header and JWT is checked
 * as the fake received it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { KlingProvider, type KlingProviderOptions } from "../src/providers/kling/kling-provider.js";
import { parseCallbackBody } from "../src/providers/kling/response.js";
import type { PollResult, ProviderReference, ProviderTask } from "../src/providers/provider.js";
import { ProviderError } from "../src/providers/provider.js";
import { type FakeKling, type FakeKlingOptions, startFakeKling } from "./fakes/fake-kling.js";
import { makeImage } from "./fixtures/media.js";

const dir = mkdtempSync(path.join(tmpdir(), "kling-contract-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fakes: FakeKling[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(opts: FakeKlingOptions = {}): Promise<FakeKling> {
  const f = await startFakeKling(opts);
  fakes.push(f);
  return f;
}

function adapter(f: FakeKling, over: Partial<KlingProviderOptions> = {}): KlingProvider {
  return new KlingProvider({
    accessKey: f.accessKey,
    secretKey: f.secretKey,
    baseUrl: `${f.url}/`,
    mode: "pro",
    sendImagesAs: "url",
    requestTimeoutMs: 2000,
    pollIntervalMs: 20,
    ...over,
  });
}

let taskCounter = 0;
function task(over: Partial<ProviderTask> = {}): ProviderTask {
  taskCounter++;
  return {
    taskId: `task_contract${String(taskCounter).padStart(4, "0")}${Math.random().toString(36).slice(2, 8)}`,
    model: "kling-2-6",
    prompt: "a lighthouse at dusk, waves crashing",
    params: { duration: "5", sound: "false", aspect_ratio: "16:9" },
    references: [],
    ...over,
  };
}

async function settle(p: KlingProvider, upstreamId: string, t: ProviderTask, timeoutMs = 5000): Promise<PollResult> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await p.poll(upstreamId, t);
    if (r.state !== "pending") return r;
    if (Date.now() > until) throw new Error(`still pending after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, Math.min(r.retryAfterMs ?? 20, 50)));
  }
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

/** No error may carry the JWT or the secret key. */
function expectNoSecrets(f: FakeKling, err: Error): void {
  expect(err.message).not.toContain(f.secretKey);
  for (const r of f.requests) {
    const token = r.headers.authorization?.replace(/^Bearer /, "");
    if (token) expect(err.message).not.toContain(token);
  }
  expect(err.stack ?? "").not.toContain(f.secretKey);
}

const upstreamIdRe = /^(text2video|image2video):(\d{18})$/;

describe("text2video", () => {
  it("happy path: submit, poll to success, result served, body/headers/JWT as documented", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const { upstreamId } = await p.submit(t);
    const m = upstreamIdRe.exec(upstreamId);
    expect(m?.[1]).toBe("text2video");
    const kTask = f.taskByExternalId(t.taskId);
    expect(kTask?.taskId).toBe(m?.[2]);

    const [create] = f.calls("create");
    expect(create?.method).toBe("POST");
    expect(create?.path).toBe("/v1/videos/text2video");
    expect(create?.headers["content-type"]).toBe("application/json");
    expect(create?.headers.authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(create?.body).toStrictEqual({
      model_name: "kling-v2-6",
      prompt: "a lighthouse at dusk, waves crashing",
      duration: "5",
      sound: "off",
      mode: "pro",
      aspect_ratio: "16:9",
      external_task_id: t.taskId,
    });
    expect(create?.rawBody).not.toContain("cfg_scale");

    const first = await p.poll(upstreamId, t);
    expect(first).toStrictEqual({ state: "pending", retryAfterMs: 20 });
    const done = await settle(p, upstreamId, t);
    expect(done.state).toBe("succeeded");
    if (done.state !== "succeeded") return;
    expect(done.media).toStrictEqual([{ kind: "url", url: `${f.url}/videos/${m?.[2]}.mp4`, mimeType: "video/mp4" }]);
    expect(done.details).toStrictEqual({
      upstream_task_id: m?.[2],
      final_unit_deduction: "1",
      video_duration: "5",
    });
    for (const q of f.calls("query")) expect(q.path).toBe(`/v1/videos/text2video/${m?.[2]}`);

    const media = done.media[0];
    if (media?.kind !== "url") throw new Error("expected url media");
    const res = await fetch(media.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp");
  });

  const combos: Array<[string, string, string]> = [];
  for (const duration of ["5", "10"])
    for (const sound of ["false", "true"])
      for (const aspect of ["1:1", "16:9", "9:16"]) combos.push([duration, sound, aspect]);

  it.each(combos)("duration %s, sound %s, aspect %s (configured mode std)", async (duration, sound, aspect) => {
    const f = await fake();
    const p = adapter(f, { mode: "std" });
    const t = task({ params: { duration, sound, aspect_ratio: aspect } });
    await p.submit(t);
    const body = f.calls("create")[0]?.body;
    expect(body?.duration).toBe(duration);
    expect(typeof body?.duration).toBe("string");
    expect(body?.sound).toBe(sound === "true" ? "on" : "off");
    expect(body?.mode).toBe(sound === "true" ? "pro" : "std");
    expect(body?.aspect_ratio).toBe(aspect);
    expect(body?.model_name).toBe("kling-v2-6");
    expect(body).not.toHaveProperty("cfg_scale");
    expect(body).not.toHaveProperty("image");
  });

  it("10 s with sound: the result reports its duration and units", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task({ params: { duration: "10", sound: "true", aspect_ratio: "9:16" } });
    const { upstreamId } = await p.submit(t);
    const done = await settle(p, upstreamId, t);
    expect(done).toMatchObject({ state: "succeeded", details: { video_duration: "10", final_unit_deduction: "4" } });
  });

  it("invalid params never reach Kling", async () => {
    const f = await fake();
    const p = adapter(f);
    const bad: Array<Record<string, string>> = [{ duration: "7" }, { sound: "yes" }, { aspect_ratio: "4:3" }];
    for (const params of bad) {
      const err = await rejection(p.submit(task({ params })));
      expect(err).toMatchObject({ retryable: false, reason: "invalid_input" });
    }
    expect(f.calls()).toHaveLength(0);
  });
});

describe("image2video", () => {
  async function ref(
    format: "png" | "jpeg" | "webp",
    over: Partial<ProviderReference> = {},
  ): Promise<ProviderReference> {
    const localPath = await makeImage(dir, { format, width: 320, height: 400, alpha: format === "webp" });
    return {
      kind: "image",
      mimeType: `image/${format}`,
      localPath,
      url: `https://gw.example/media/ref.${format}?expires=9999999999&signature=abc`,
      ...over,
    };
  }

  it("url mode: sends our signed URL, no aspect_ratio, polls on image2video", async () => {
    const f = await fake();
    const p = adapter(f, { mode: "std" });
    const reference = await ref("png");
    const t = task({ references: [reference], params: { duration: "10", sound: "false", aspect_ratio: "9:16" } });
    const { upstreamId } = await p.submit(t);
    expect(upstreamId).toMatch(/^image2video:\d{18}$/);
    const create = f.calls("create")[0];
    expect(create?.path).toBe("/v1/videos/image2video");
    expect(create?.body).toStrictEqual({
      model_name: "kling-v2-6",
      prompt: t.prompt,
      duration: "10",
      sound: "off",
      mode: "std",
      image: reference.url,
      external_task_id: t.taskId,
    });
    const done = await settle(p, upstreamId, t);
    expect(done.state).toBe("succeeded");
    expect(f.calls("query").every((q) => q.path.startsWith("/v1/videos/image2video/"))).toBe(true);
  });

  it("i2v with sound on is sent as pro", async () => {
    const f = await fake();
    const p = adapter(f, { mode: "std" });
    await p.submit(
      task({ references: [await ref("jpeg")], params: { duration: "5", sound: "true", aspect_ratio: "1:1" } }),
    );
    expect(f.calls("create")[0]?.body).toMatchObject({ sound: "on", mode: "pro" });
    expect(f.calls("create")[0]?.body).not.toHaveProperty("aspect_ratio");
  });

  it.each(["png", "jpeg"] as const)(
    "base64 mode (%s): raw base64, no data: prefix, decodes to the file",
    async (format) => {
      const f = await fake();
      const p = adapter(f, { sendImagesAs: "base64" });
      const reference = await ref(format);
      await p.submit(task({ references: [reference] }));
      const image = f.calls("create")[0]?.body?.image as string;
      expect(image.startsWith("data:")).toBe(false);
      expect(image).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
      expect(Buffer.from(image, "base64").equals(readFileSync(reference.localPath as string))).toBe(true);
    },
  );

  it("url mode without a URL falls back to base64 of the local copy", async () => {
    const f = await fake();
    const p = adapter(f, { sendImagesAs: "url" });
    const reference = await ref("png", { url: undefined });
    await p.submit(task({ references: [reference] }));
    const image = f.calls("create")[0]?.body?.image as string;
    expect(Buffer.from(image, "base64").equals(readFileSync(reference.localPath as string))).toBe(true);
  });

  it.each(["url", "base64"] as const)("webp is converted to PNG and sent as base64 (sendImagesAs %s)", async (mode) => {
    const f = await fake();
    const p = adapter(f, { sendImagesAs: mode });
    const reference = await ref("webp");
    const { upstreamId } = await p.submit(task({ references: [reference] }));
    expect(upstreamId).toMatch(/^image2video:/);
    const image = f.calls("create")[0]?.body?.image as string;
    expect(image.startsWith("data:")).toBe(false);
    expect(image.startsWith("http")).toBe(false);
    const png = Buffer.from(image, "base64");
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    expect(png.readUInt32BE(16)).toBe(320); // IHDR width
    expect(png.readUInt32BE(20)).toBe(400); // IHDR height
  });

  it("webp without a local copy, and non-image references, are refused before calling Kling", async () => {
    const f = await fake();
    const p = adapter(f);
    const noLocal = await rejection(p.submit(task({ references: [await ref("webp", { localPath: undefined })] })));
    expect(noLocal.retryable).toBe(false);
    const video = await rejection(
      p.submit(task({ references: [{ kind: "video", mimeType: "video/mp4", url: "https://x/y.mp4" }] })),
    );
    expect(video).toMatchObject({ retryable: false, reason: "invalid_input" });
    const gif = await rejection(
      p.submit(task({ references: [{ kind: "image", mimeType: "image/gif", url: "https://x" }] })),
    );
    expect(gif).toMatchObject({ retryable: false, reason: "invalid_input" });
    expect(f.calls()).toHaveLength(0);
  });

  it("the fake refuses data: prefixes and non-JPEG/PNG base64 (what Kling documents)", async () => {
    const f = await fake();
    const send = (image: string) =>
      fetch(`${f.url}/v1/videos/image2video`, { method: "POST", body: JSON.stringify({ image }) });
    // Unauthenticated: 401 first.
    expect((await send("x")).status).toBe(401);
    const p = adapter(f);
    const token = await (p as unknown as { tokens: { get(): Promise<string> } }).tokens.get();
    const png = readFileSync((await ref("png")).localPath as string).toString("base64");
    const post = async (image: string) => {
      const res = await fetch(`${f.url}/v1/videos/image2video`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ model_name: "kling-v2-6", image }),
      });
      return { status: res.status, body: (await res.json()) as { code: number } };
    };
    expect(await post(`data:image/png;base64,${png}`)).toMatchObject({ status: 400, body: { code: 1201 } });
    expect(await post(Buffer.from("GIF89a-not-really").toString("base64"))).toMatchObject({
      status: 400,
      body: { code: 1201 },
    });
    expect(await post(png)).toMatchObject({ status: 200, body: { code: 0 } });
  });
});

describe("JWT", () => {
  it("claims: HS256, iss = AK, exp = now + 1800, nbf = now - 5, nothing else", async () => {
    const f = await fake();
    await adapter(f).submit(task());
    const jwt = f.calls("create")[0]?.jwt;
    expect(jwt?.header).toStrictEqual({ alg: "HS256", typ: "JWT" });
    const claims = jwt?.claims as { iss: string; exp: number; nbf: number };
    expect(Object.keys(claims).sort()).toStrictEqual(["exp", "iss", "nbf"]);
    expect(claims.iss).toBe(f.accessKey);
    expect(claims.exp - claims.nbf).toBe(1805);
    expect(Math.abs(claims.exp - 1800 - Date.now() / 1000)).toBeLessThan(5);
  });

  it("one token is reused across calls and re-signed near expiry; the fake accepts both", async () => {
    let clock = Date.now();
    const f = await fake({ now: () => clock });
    const p = adapter(f, { now: () => clock });
    const t = task();
    const { upstreamId } = await p.submit(t);
    await p.poll(upstreamId, t);
    clock += 1400 * 1000; // 400 s left
    await p.poll(upstreamId, t);
    const tokens = () => new Set(f.calls().map((r) => r.headers.authorization));
    expect(tokens().size).toBe(1);
    expect(p.tokensSigned).toBe(1);
    clock += 200 * 1000; // 200 s left: refresh before use
    await p.poll(upstreamId, t);
    expect(tokens().size).toBe(2);
    expect(p.tokensSigned).toBe(2);
    expect(f.calls().every((r) => r.status === 200)).toBe(true);
  });

  it("an intermittent 401 is retried once with a freshly signed token", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script({ on: "create", fault: { type: "unauthorized" } });
    const t = task();
    const { upstreamId } = await p.submit(t);
    expect(f.calls("create").map((r) => r.status)).toStrictEqual([401, 200]);
    expect(p.tokensSigned).toBe(2);
    f.script({ on: "query", fault: { type: "unauthorized" } });
    expect((await p.poll(upstreamId, t)).state).toBeDefined();
    expect(f.calls("query").map((r) => r.status)).toStrictEqual([401, 200]);
    expect(p.tokensSigned).toBe(3);
  });

  it("a second 401 in a row is final, after exactly two attempts", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script({ on: "create", times: 2, fault: { type: "unauthorized" } });
    const err = await rejection(p.submit(task()));
    expect(err).toMatchObject({ retryable: false, reason: "provider_error", maybeAccepted: false });
    expect(err.message).toContain("1002");
    expect(err.message).toContain("fresh token");
    expect(f.calls("create")).toHaveLength(2);
    expectNoSecrets(f, err);
  });

  it("real refusals: wrong secret (1002), expired (1004), not yet valid (1003)", async () => {
    const f = await fake();
    const wrong = await rejection(adapter(f, { secretKey: "sk_wrong_secret_value_123" }).submit(task()));
    expect(wrong).toMatchObject({ retryable: false });
    expect(wrong.message).toContain("1002");
    expect(wrong.message).not.toContain("sk_wrong_secret_value_123");

    const expired = await rejection(adapter(f, { now: () => Date.now() - 3600_000 }).submit(task()));
    expect(expired.message).toContain("1004");
    const early = await rejection(adapter(f, { now: () => Date.now() + 60_000 }).submit(task()));
    expect(early.message).toContain("1003");
    expect(f.calls("create").map((r) => r.code)).toStrictEqual([1002, 1002, 1004, 1004, 1003, 1003]);
    expectNoSecrets(f, expired);
  });
});

describe("quirks", () => {
  it("18-digit ids survive exactly, even when Kling writes them as bare JSON numbers", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script(
      { on: "create", fault: { type: "numericTaskId" } },
      { on: "query", times: 20, fault: { type: "numericTaskId" } },
    );
    const t = task();
    const { upstreamId } = await p.submit(t);
    const kTask = f.taskByExternalId(t.taskId);
    expect(upstreamId).toBe(`text2video:${kTask?.taskId}`);
    expect(String(Number(kTask?.taskId))).not.toBe(kTask?.taskId); // not representable as a JS number
    const create = f.calls("create")[0];
    expect(create?.status).toBe(200);
    const done = await settle(p, upstreamId, t);
    expect(done).toMatchObject({ state: "succeeded", details: { upstream_task_id: kTask?.taskId } });
  });

  it("data as an array: the element with our task_id is used", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const { upstreamId } = await p.submit(t);
    f.script({ on: "query", times: Number.POSITIVE_INFINITY, fault: { type: "dataArray", decoys: 2 } });
    const done = await settle(p, upstreamId, t);
    expect(done.state).toBe("succeeded");
    const kTaskId = upstreamId.split(":")[1] ?? "";
    if (done.state === "succeeded") expect(done.media[0]).toMatchObject({ url: expect.stringContaining(kTaskId) });
  });

  it("data as an array on create (single element) is accepted", async () => {
    const f = await fake();
    f.script({ on: "create", fault: { type: "dataArray", decoys: 0 } });
    expect((await adapter(f).submit(task())).upstreamId).toMatch(upstreamIdRe);
  });

  it.each([
    ["Image pixel is invalid", "provider_error"],
    ["Failure to pass the risk control system", "content_rejected"],
  ])("failed with code 0 / SUCCEED: %s → %s", async (message, reason) => {
    const f = await fake();
    const p = adapter(f);
    f.script({ fault: { type: "outcome", outcome: { status: "failed", message } } });
    const t = task();
    const { upstreamId } = await p.submit(t);
    const done = await settle(p, upstreamId, t);
    expect(done).toStrictEqual({ state: "failed", reason, message: `Kling task failed: ${message}` });
    // The envelope really says success.
    const raw = (await (
      await fetch(`${f.url}/v1/videos/${upstreamId.replace(":", "/")}`, {
        headers: { Authorization: f.calls("query")[0]?.headers.authorization ?? "" },
      })
    ).json()) as { code: number; message: string; data: { task_status: string } };
    expect(raw).toMatchObject({ code: 0, message: "SUCCEED", data: { task_status: "failed" } });
  });

  it("a task is only found on the sub-path it was created on", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const { upstreamId } = await p.submit(t);
    const wrong = upstreamId.replace("text2video", "image2video");
    const err = await rejection(p.poll(wrong, t));
    expect(err).toMatchObject({ retryable: false });
    expect(err.message).toContain("1203");
  });

  it("results that 404 or serve HTML are the fake's to script (the worker checks downloads)", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script(
      { fault: { type: "outcome", outcome: { video: "404" } } },
      { fault: { type: "outcome", outcome: { video: "html" } } },
    );
    const results: Response[] = [];
    for (let i = 0; i < 2; i++) {
      const t = task();
      const { upstreamId } = await p.submit(t);
      const done = await settle(p, upstreamId, t);
      if (done.state !== "succeeded" || done.media[0]?.kind !== "url") throw new Error("expected success");
      results.push(await fetch(done.media[0].url));
    }
    expect(results[0]?.status).toBe(404);
    expect(results[1]?.status).toBe(200);
    expect(results[1]?.headers.get("content-type")).toContain("text/html");
  });
});

describe("error codes", () => {
  // code, HTTP status, retryable, reason, saturated, maybeAccepted (submit)
  const table: Array<[number, number, boolean, string, boolean, boolean]> = [
    [1100, 429, false, "provider_error", false, false],
    [1101, 429, false, "provider_error", false, false],
    [1102, 429, false, "provider_error", false, false],
    [1103, 403, false, "provider_error", false, false],
    [1200, 400, false, "invalid_input", false, false],
    [1201, 400, false, "invalid_input", false, false],
    [1202, 404, false, "provider_error", false, false],
    [1203, 404, false, "provider_error", false, false],
    [1300, 400, false, "provider_error", false, false],
    [1301, 400, false, "content_rejected", false, false],
    [1302, 429, true, "provider_error", false, false],
    [1303, 429, true, "provider_error", true, false],
    [1304, 429, false, "provider_error", false, false],
    [5000, 500, true, "provider_error", false, true],
    [5001, 503, true, "provider_error", false, true],
    [5002, 504, true, "provider_error", false, true],
  ];

  it.each(table)(
    "submit: code %i with HTTP %i",
    async (code, httpStatus, retryable, reason, saturated, maybeAccepted) => {
      const f = await fake();
      const p = adapter(f);
      f.script({ on: "create", fault: { type: "error", code, httpStatus, message: `injected ${code}` } });
      const err = await rejection(p.submit(task()));
      expect({
        retryable: err.retryable,
        reason: err.reason,
        saturated: err.saturated,
        maybeAccepted: err.maybeAccepted,
      }).toStrictEqual({ retryable, reason, saturated, maybeAccepted });
      if (retryable) expect(err.retryAfterMs).toBeGreaterThanOrEqual(1000);
      expect(err.message).toContain(String(code));
      expect(err.message).toContain(`injected ${code}`);
      expect(f.calls("create")).toHaveLength(1); // no blind retries inside the adapter
      expectNoSecrets(f, err);
    },
  );

  it.each(table)("poll: code %i with HTTP %i", async (code, httpStatus, retryable, reason, saturated) => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const { upstreamId } = await p.submit(t);
    f.script({ on: "query", fault: { type: "error", code, httpStatus } });
    const err = await rejection(p.poll(upstreamId, t));
    expect(err).toMatchObject({ retryable, reason, saturated, maybeAccepted: false });
  });

  it.each([1000, 1001, 1002, 1003, 1004])("auth code %i: one fresh-token retry, then final", async (code) => {
    const f = await fake();
    const p = adapter(f);
    f.script({ on: "create", fault: { type: "error", code, httpStatus: 401 } });
    await expect(p.submit(task())).resolves.toMatchObject({ upstreamId: expect.stringMatching(upstreamIdRe) });
    f.script({ on: "create", times: 2, fault: { type: "error", code, httpStatus: 401 } });
    const err = await rejection(p.submit(task()));
    expect(err).toMatchObject({ retryable: false, reason: "provider_error", maybeAccepted: false });
    expect(f.calls("create").map((r) => r.status)).toStrictEqual([401, 200, 401, 401]);
  });

  it("Retry-After from Kling is passed on", async () => {
    const f = await fake();
    f.script({ on: "create", fault: { type: "error", code: 1302, httpStatus: 429, retryAfter: "12" } });
    expect((await rejection(adapter(f).submit(task()))).retryAfterMs).toBe(12_000);
  });

  it("concurrency limit: 1303 while the slot is taken, saturated and retryable; fine once it frees", async () => {
    const f = await fake({ concurrencyLimit: 1, finishAfterMs: 200 });
    const p = adapter(f);
    const a = task();
    const { upstreamId } = await p.submit(a);
    const b = task();
    const err = await rejection(p.submit(b));
    expect(err).toMatchObject({ retryable: true, saturated: true, maybeAccepted: false });
    expect(err.message).toContain("parallel task over resource pack limit");
    await settle(p, upstreamId, a);
    await expect(p.submit(b)).resolves.toMatchObject({ upstreamId: expect.stringMatching(upstreamIdRe) });
  });
});

describe("transport failures", () => {
  it("submit timeout: retryable and maybe accepted; poll timeout: retryable only", async () => {
    const f = await fake();
    const p = adapter(f, { requestTimeoutMs: 300 });
    f.script({ on: "create", fault: { type: "hang" } });
    const started = Date.now();
    const err = await rejection(p.submit(task()));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(err.message).toMatch(/timed out/);
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(1000);

    const t = task();
    const { upstreamId } = await p.submit(t);
    f.script({ on: "query", fault: { type: "hang" } });
    expect(await rejection(p.poll(upstreamId, t))).toMatchObject({ retryable: true, maybeAccepted: false });
  });

  it("slow but in time is fine", async () => {
    const f = await fake();
    f.script({ on: "create", fault: { type: "delay", ms: 200 } });
    await expect(adapter(f, { requestTimeoutMs: 1500 }).submit(task())).resolves.toBeTruthy();
  });

  it("connection dropped after the request: maybe accepted; connection refused: not", async () => {
    const f = await fake();
    f.script({ on: "create", fault: { type: "reset" } });
    const dropped = await rejection(adapter(f).submit(task()));
    expect(dropped).toMatchObject({ retryable: true, maybeAccepted: true });

    const closed = await new Promise<number>((resolve) => {
      const s: Server = createServer();
      s.listen(0, "127.0.0.1", () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const refused = await rejection(adapter(f, { baseUrl: `http://127.0.0.1:${closed}` }).submit(task()));
    expect(refused).toMatchObject({ retryable: true, maybeAccepted: false });
    expect(refused.message).toMatch(/ECONNREFUSED/);
  });

  it("malformed JSON and HTML error pages", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script({ on: "create", fault: { type: "malformed" } });
    const badCreate = await rejection(p.submit(task()));
    expect(badCreate).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(badCreate.message).toMatch(/unexpected response.*invalid JSON/);

    f.script({
      on: "create",
      fault: { type: "raw", httpStatus: 502, body: "<html><body>502 Bad Gateway</body></html>" },
    });
    const html = await rejection(p.submit(task()));
    expect(html).toMatchObject({ retryable: true, maybeAccepted: true });
    expect(html.message).toContain("502");

    const t = task();
    const { upstreamId } = await p.submit(t);
    f.script({ on: "query", fault: { type: "malformed", body: "<html>oops</html>" } });
    const badPoll = await rejection(p.poll(upstreamId, t));
    expect(badPoll).toMatchObject({ retryable: true, maybeAccepted: false, reason: "provider_error" });
    expect(badPoll.message).toMatch(/poll: unexpected response/);

    f.script({
      on: "query",
      fault: { type: "data", data: { task_id: upstreamId.split(":")[1], task_status: "succeed" } },
    });
    const noVideos = await rejection(p.poll(upstreamId, t));
    expect(noVideos).toMatchObject({ retryable: true });
    expect(noVideos.message).toContain("task_result.videos");

    f.script({
      on: "query",
      fault: { type: "data", data: [{ task_id: "111111111111111111", task_status: "succeed" }] },
    });
    expect((await rejection(p.poll(upstreamId, t))).message).toContain("not in the response");
  });

  it("a 5xx burst on poll is retryable until it passes", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const { upstreamId } = await p.submit(t);
    f.script({ on: "query", times: 3, fault: { type: "error", code: 5000, httpStatus: 500 } });
    for (let i = 0; i < 3; i++) expect(await rejection(p.poll(upstreamId, t))).toMatchObject({ retryable: true });
    await expect(settle(p, upstreamId, t)).resolves.toMatchObject({ state: "succeeded" });
  });
});

describe("findSubmitted and repeated submits", () => {
  it("finds a task whose create answer was lost", async () => {
    const f = await fake();
    const p = adapter(f);
    f.script({ on: "create", fault: { type: "acceptThen", answer: { type: "error", code: 5000, httpStatus: 500 } } });
    const t = task();
    const err = await rejection(p.submit(t));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: true });
    const found = await p.findSubmitted(t);
    const kTask = f.taskByExternalId(t.taskId);
    expect(found).toStrictEqual({ upstreamId: `text2video:${kTask?.taskId}` });
    expect(f.calls("query").at(-1)?.path).toBe(`/v1/videos/text2video/${t.taskId}`);
  });

  it("after a submit timeout too (the fake created the task, then hung)", async () => {
    const f = await fake();
    const p = adapter(f, { requestTimeoutMs: 300 });
    f.script({ on: "create", fault: { type: "acceptThen", answer: { type: "hang" } } });
    const t = task({ references: [{ kind: "image", mimeType: "image/png", url: "https://gw.example/r.png" }] });
    expect(await rejection(p.submit(t))).toMatchObject({ maybeAccepted: true });
    const found = await p.findSubmitted(t);
    expect(found?.upstreamId).toBe(`image2video:${f.taskByExternalId(t.taskId)?.taskId}`);
    // i2v tasks are looked up on image2video first.
    expect(f.calls("query")[0]?.path).toBe(`/v1/videos/image2video/${t.taskId}`);
  });

  it("undefined when Kling has no such task (both sub-paths answer 1203)", async () => {
    const f = await fake();
    const t = task();
    await expect(adapter(f).findSubmitted(t)).resolves.toBeUndefined();
    expect(f.calls("query").map((r) => [r.path, r.code])).toStrictEqual([
      [`/v1/videos/text2video/${t.taskId}`, 1203],
      [`/v1/videos/image2video/${t.taskId}`, 1203],
    ]);
  });

  it("errors other than not-found propagate", async () => {
    const f = await fake();
    f.script({ on: "query", fault: { type: "error", code: 5001, httpStatus: 503 } });
    expect(await rejection(adapter(f).findSubmitted(task()))).toMatchObject({ retryable: true, maybeAccepted: false });
  });

  it("submitting the same task twice returns the task Kling already has", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task();
    const first = await p.submit(t);
    const second = await p.submit(t);
    expect(second).toStrictEqual(first);
    expect(f.tasks.size).toBe(1);
    expect(f.calls("create").map((r) => r.code)).toStrictEqual([0, 1201]);
  });
});

describe("callbacks", () => {
  it("callback_url comes from the builder; Kling posts the bare task object on every status change", async () => {
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => {
        body += c;
      });
      req.on("end", () => {
        received.push(body);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    try {
      const f = await fake();
      const p = adapter(f, { callbackUrl: (id) => `${base}/internal/callbacks/kling/tok.${id}` });
      const t = task();
      const { upstreamId } = await p.submit(t);
      expect(f.calls("create")[0]?.body?.callback_url).toBe(`${base}/internal/callbacks/kling/tok.${t.taskId}`);
      await settle(p, upstreamId, t);
      await f.callbacksSettled();
      const kTaskId = upstreamId.split(":")[1];
      expect(f.callbacks.map((c) => c.status)).toStrictEqual(["submitted", "processing", "succeed"]);
      expect(f.callbacks.every((c) => c.answeredStatus === 200)).toBe(true);
      const last = JSON.parse(received.at(-1) ?? "{}") as Record<string, unknown>;
      expect(last).not.toHaveProperty("code");
      expect(last).toMatchObject({
        task_id: kTaskId,
        task_status: "succeed",
        task_info: { external_task_id: t.taskId },
        task_result: { videos: [{ url: expect.stringContaining(`${kTaskId}.mp4`) }] },
        final_unit_deduction: "1",
      });
      expect(parseCallbackBody(received.at(-1) ?? "")).toStrictEqual({
        taskId: kTaskId,
        externalTaskId: t.taskId,
        status: "succeed",
      });
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});

describe("fake extras used by integration tests", () => {
  it("prompt directives script the outcome; the list endpoint returns data as an array", async () => {
    const f = await fake();
    const p = adapter(f);
    const t = task({ prompt: "a cat [kling:fail=Failure to pass the risk control system] [kling:after=60]" });
    const { upstreamId } = await p.submit(t);
    await expect(settle(p, upstreamId, t)).resolves.toMatchObject({ state: "failed", reason: "content_rejected" });
    const auth = f.calls("create")[0]?.headers.authorization ?? "";
    const list = (await (
      await fetch(`${f.url}/v1/videos/text2video?pageNum=1&pageSize=30&external_task_id=${t.taskId}`, {
        headers: { Authorization: auth },
      })
    ).json()) as { code: number; data: Array<{ task_id: string }> };
    expect(list.code).toBe(0);
    expect(list.data.map((d) => d.task_id)).toStrictEqual([upstreamId.split(":")[1]]);
  });

  it("fetchImageUrls: the fake downloads our URL and refuses what is not JPEG/PNG", async () => {
    const png = await makeImage(dir, { format: "png", width: 320, height: 320 });
    const webp = await makeImage(dir, { format: "webp", width: 320, height: 320 });
    const files = new Server();
    files.on("request", (req, res) => {
      res.end(readFileSync(req.url === "/ref.png" ? png : webp));
    });
    await new Promise<void>((r) => files.listen(0, "127.0.0.1", () => r()));
    const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    try {
      const f = await fake({ fetchImageUrls: true });
      const p = adapter(f);
      const ok = await p.submit(
        task({ references: [{ kind: "image", mimeType: "image/png", url: `${base}/ref.png` }] }),
      );
      expect(ok.upstreamId).toMatch(/^image2video:/);
      // A reference labelled PNG whose URL serves other bytes: Kling refuses it (1201).
      const err = await rejection(
        p.submit(task({ references: [{ kind: "image", mimeType: "image/png", url: `${base}/ref.webp` }] })),
      );
      expect(err).toMatchObject({ retryable: false, reason: "invalid_input" });
      expect(err.message).toContain("1201");
    } finally {
      await new Promise<void>((r) => files.close(() => r()));
    }
  });
});
