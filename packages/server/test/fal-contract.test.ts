/**
 * Contract tests: FalProvider against the fake fal queue (test/fakes/fake-fal.ts), which
 * implements the documented protocol (docs/kling-upstreams.md §2). Bodies are asserted field by
 * field; the URLs fal hands back point at a trap server that must never be contacted.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FalProvider, type FalProviderOptions } from "../src/providers/fal/fal-provider.js";
import {
  type PollResult,
  ProviderError,
  type ProviderReference,
  type ProviderTask,
} from "../src/providers/provider.js";
import {
  contentPolicyViolation,
  type FakeFal,
  type FakeFalRequest,
  falModelError,
  falRequestError,
  type StartFakeFalOptions,
  startFakeFal,
} from "./fakes/fake-fal.js";

const T2V_PATH = "/fal-ai/kling-video/v2.6/pro/text-to-video";
const I2V_PATH = "/fal-ai/kling-video/v2.6/pro/image-to-video";

/** A server standing in for the host of fal's returned URLs: it records any contact at all. */
interface Trap {
  url: string;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

async function startTrap(): Promise<Trap> {
  const sockets = new Set<Socket>();
  const trap = { connections: 0, requests: [] as string[] } as Trap;
  const server: Server = createServer((req, res) => {
    trap.requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "COMPLETED", video: { url: "https://evil.invalid/x.mp4" } }));
  });
  server.on("connection", (socket) => {
    trap.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  trap.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  trap.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return trap;
}

interface Env {
  fal: FakeFal;
  trap: Trap;
  provider: FalProvider;
  /** Every URL the adapter fetched. */
  fetched: string[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function setup(fakeOpts: StartFakeFalOptions = {}, providerOpts: Partial<FalProviderOptions> = {}): Promise<Env> {
  const trap = await startTrap();
  const fal = await startFakeFal({ returnedUrlBase: trap.url, ...fakeOpts });
  cleanups.push(
    () => fal.close(),
    () => trap.close(),
  );
  const fetched: string[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    fetched.push(String(input));
    return fetch(input, init);
  };
  const provider = new FalProvider({
    key: fal.key,
    queueUrl: `${fal.url}/`,
    requestTimeoutMs: 2_000,
    fetch: recordingFetch,
    resultRetryDelayMs: 20,
    ...providerOpts,
  });
  return { fal, trap, provider, fetched };
}

let taskCounter = 0;
function makeTask(
  params: Record<string, string> = {},
  references: ProviderReference[] = [],
  prompt = "a fox in snow",
): ProviderTask {
  return {
    taskId: `task_${++taskCounter}`,
    model: "kling-2-6",
    prompt,
    params: { duration: "5", sound: "false", aspect_ratio: "1:1", ...params },
    references,
  };
}

function imageRef(url: string): ProviderReference {
  return { kind: "image", mimeType: "image/png", url };
}

async function catchProviderError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error("expected a ProviderError");
}

/** Polls until the result is not pending (bounded). */
async function pollToEnd(provider: FalProvider, upstreamId: string, task: ProviderTask, max = 10): Promise<PollResult> {
  for (let i = 0; i < max; i++) {
    const result = await provider.poll(upstreamId, task);
    if (result.state !== "pending") return result;
  }
  throw new Error("still pending");
}

/** Every queue request carried exactly the Key header; nothing went to another host. */
function expectCleanTraffic(env: Env): void {
  for (const req of env.fal.requests.filter((r) => r.endpoint !== "media")) {
    expect(req.headers.authorization).toBe(`Key ${env.fal.key}`);
  }
  for (const url of env.fetched) expect(url.startsWith(`${env.fal.url}/`)).toBe(true);
  expect(env.trap.connections).toBe(0);
  expect(env.trap.requests).toEqual([]);
}

function lastSubmit(fal: FakeFal): FakeFalRequest {
  const submits = fal.requestsTo("submit");
  const last = submits[submits.length - 1];
  if (!last) throw new Error("no submit recorded");
  return last;
}

describe("submit: request mapping on the wire", () => {
  it("text-to-video: every duration x sound x aspect ratio, body field by field", async () => {
    const env = await setup();
    for (const duration of ["5", "10"]) {
      for (const sound of ["false", "true"]) {
        for (const aspect of ["1:1", "16:9", "9:16"]) {
          const { upstreamId } = await env.provider.submit(makeTask({ duration, sound, aspect_ratio: aspect }));
          const req = lastSubmit(env.fal);
          expect(req.method).toBe("POST");
          expect(req.path).toBe(T2V_PATH);
          expect(req.query).toBe("");
          expect(req.headers.authorization).toBe(`Key ${env.fal.key}`);
          expect(req.headers["content-type"]).toBe("application/json");
          // Raw input, no `input` wrapper, no extra fields.
          expect(req.body).toStrictEqual({
            prompt: "a fox in snow",
            duration,
            aspect_ratio: aspect,
            generate_audio: sound === "true",
          });
          const body = req.body as Record<string, unknown>;
          expect(typeof body.duration).toBe("string");
          expect(typeof body.generate_audio).toBe("boolean");
          // The job fal would bill: audio exactly as asked (fal's default would be true).
          const job = env.fal.jobs.get(upstreamId);
          expect(job?.mode).toBe("text-to-video");
          expect(job?.effectiveInput.generate_audio).toBe(sound === "true");
        }
      }
    }
    expect(env.fal.requestsTo("submit")).toHaveLength(12);
    expectCleanTraffic(env);
  });

  it("image-to-video: start_image_url from the reference's signed URL, no aspect_ratio", async () => {
    const env = await setup();
    const signed = "https://gateway.example/media/ref.png?exp=1&sig=abc";
    for (const duration of ["5", "10"]) {
      for (const sound of ["false", "true"]) {
        const { upstreamId } = await env.provider.submit(
          makeTask({ duration, sound, aspect_ratio: "9:16" }, [imageRef(signed)]),
        );
        const req = lastSubmit(env.fal);
        expect(req.path).toBe(I2V_PATH);
        expect(req.body).toStrictEqual({
          prompt: "a fox in snow",
          duration,
          generate_audio: sound === "true",
          start_image_url: signed,
        });
        expect(req.body).not.toHaveProperty("image_url");
        expect(req.body).not.toHaveProperty("aspect_ratio");
        expect(env.fal.jobs.get(upstreamId)?.mode).toBe("image-to-video");
        expect(env.fal.jobs.get(upstreamId)?.effectiveInput.generate_audio).toBe(sound === "true");
      }
    }
    expectCleanTraffic(env);
  });

  it("the upstream id is fal's request_id; the returned URLs are ignored", async () => {
    const env = await setup();
    const { upstreamId } = await env.provider.submit(makeTask());
    expect([...env.fal.jobs.keys()]).toEqual([upstreamId]);
    expect(upstreamId).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstreamId).not.toContain("/");
    expectCleanTraffic(env);
  });

  it("the fake's default returned URLs point at another host (attacker.invalid), never requested", async () => {
    const fal = await startFakeFal();
    cleanups.push(() => fal.close());
    const fetched: string[] = [];
    const provider = new FalProvider({
      key: fal.key,
      queueUrl: fal.url,
      fetch: (input, init) => {
        fetched.push(String(input));
        return fetch(input, init);
      },
    });
    const raw = await fetch(`${fal.url}${T2V_PATH}`, {
      method: "POST",
      headers: { authorization: `Key ${fal.key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "x", generate_audio: false }),
    });
    const answer = (await raw.json()) as Record<string, string>;
    expect(answer.status_url).toMatch(/^https:\/\/attacker\.invalid\/fal-ai\/kling-video\/requests\/.+\/status$/);
    expect(answer.response_url).toMatch(/^https:\/\/attacker\.invalid\//);
    expect(answer.cancel_url).toMatch(/^https:\/\/attacker\.invalid\//);
    const task = makeTask();
    const { upstreamId } = await provider.submit(task);
    const result = await pollToEnd(provider, upstreamId, task);
    expect(result.state).toBe("succeeded");
    expect(fetched.length).toBeGreaterThan(0);
    for (const url of fetched) expect(url).not.toContain("attacker.invalid");
  });

  it("invalid params or references never reach fal", async () => {
    const env = await setup();
    for (const task of [
      makeTask({ duration: "7" }),
      makeTask({ aspect_ratio: "4:3" }),
      makeTask({ sound: "maybe" }),
      makeTask({}, [{ kind: "audio", mimeType: "audio/mpeg", url: "https://x/a.mp3" }]),
      makeTask({}, [{ kind: "image", mimeType: "image/png", localPath: "/tmp/x.png" }]),
    ]) {
      const err = await catchProviderError(env.provider.submit(task));
      expect(err.retryable).toBe(false);
      expect(err.maybeAccepted).toBe(false);
    }
    expect(env.fal.requests).toHaveLength(0);
  });

  it("fal can download the reference (fetchImages): the job sees the image", async () => {
    const env = await setup({
      fetchImages: true,
      script: { files: { "ref.png": { contentType: "image/png", body: "PNGDATA" } } },
    });
    const task = makeTask({}, [imageRef(`${env.fal.url}/files/ref.png`)]);
    const { upstreamId } = await env.provider.submit(task);
    expect(env.fal.jobs.get(upstreamId)?.imageFetch).toEqual({ status: 200, contentType: "image/png", bytes: 7 });
    expect((await pollToEnd(env.provider, upstreamId, task)).state).toBe("succeeded");
  });
});

describe("poll: queue protocol", () => {
  it("202 IN_QUEUE -> 202 IN_PROGRESS -> 200 COMPLETED -> raw output, on rebuilt owner/app URLs", async () => {
    const env = await setup();
    env.fal.script({ jobs: [{ queuedPolls: 2, inProgressPolls: 1 }] });
    const task = makeTask({ duration: "10", sound: "true", aspect_ratio: "16:9" });
    const { upstreamId } = await env.provider.submit(task);

    expect(await env.provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 10_000 });
    expect(await env.provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 10_000 });
    expect(await env.provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 5_000 });
    const statusAnswers = env.fal.requestsTo("status").map((r) => r.answeredStatus);
    expect(statusAnswers).toEqual([202, 202, 202]);
    expect(env.fal.requestsTo("result")).toHaveLength(0);

    const done = await env.provider.poll(upstreamId, task);
    expect(done).toEqual({
      state: "succeeded",
      media: [{ kind: "url", url: env.fal.videoUrl, mimeType: "video/mp4" }],
      details: { file_size: String(env.fal.videoBytes.length), file_name: "output.mp4" },
    });
    expect(env.fal.requestsTo("status").map((r) => r.answeredStatus)).toEqual([202, 202, 202, 200]);

    for (const req of env.fal.requestsTo("status")) {
      expect(req.method).toBe("GET");
      expect(req.path).toBe(`/fal-ai/kling-video/requests/${upstreamId}/status`);
    }
    const results = env.fal.requestsTo("result");
    expect(results).toHaveLength(1);
    expect(results[0]?.path).toBe(`/fal-ai/kling-video/requests/${upstreamId}`);
    // Nothing ever used the model sub-path for status/result.
    expect(env.fal.requests.filter((r) => r.path.includes("/v2.6/pro/") && r.method !== "POST")).toEqual([]);
    expectCleanTraffic(env);

    // The URL really serves a small MP4.
    const video = await fetch(env.fal.videoUrl);
    expect(video.status).toBe(200);
    expect(video.headers.get("content-type")).toBe("video/mp4");
    const bytes = Buffer.from(await video.arrayBuffer());
    expect(bytes.equals(env.fal.videoBytes)).toBe(true);
    expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp");
  });

  it("time-based progression: pending until ready, then succeeded", async () => {
    const env = await setup();
    env.fal.script({ jobs: [{ queuedPolls: 0, inProgressPolls: 0, readyAfterMs: 300 }] });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    expect((await env.provider.poll(upstreamId, task)).state).toBe("pending");
    await new Promise((r) => setTimeout(r, 350));
    expect((await env.provider.poll(upstreamId, task)).state).toBe("succeeded");
  });

  it("a missing content_type defaults to video/mp4", async () => {
    const env = await setup();
    env.fal.script({ jobs: [{ queuedPolls: 0, inProgressPolls: 0, outcome: { type: "video", contentType: null } }] });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    const result = await env.provider.poll(upstreamId, task);
    expect(result.state === "succeeded" && result.media[0]).toEqual({
      kind: "url",
      url: env.fal.videoUrl,
      mimeType: "video/mp4",
    });
  });

  it("an unknown status is still running", async () => {
    const env = await setup();
    env.fal.script({ status: [{ status: 202, body: { status: "WARMING_UP" } }] });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    expect(await env.provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 5_000 });
  });

  it("FAILED fails the task as provider_error, CANCELED as canceled", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [
        { queuedPolls: 0, inProgressPolls: 0, outcome: { type: "status", status: "FAILED", error: "runner crashed" } },
      ],
    });
    const task = makeTask();
    const failed = await env.provider.submit(task);
    expect(await env.provider.poll(failed.upstreamId, task)).toEqual({
      state: "failed",
      reason: "provider_error",
      message: "fal request failed: runner crashed",
    });

    env.fal.script({ jobs: [{ queuedPolls: 5 }] });
    const queued = await env.provider.submit(task);
    const cancel = await fetch(`${env.fal.url}/fal-ai/kling-video/requests/${queued.upstreamId}/cancel`, {
      method: "PUT",
      headers: { authorization: `Key ${env.fal.key}` },
    });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toEqual({ status: "CANCELLATION_REQUESTED" });
    const result = await env.provider.poll(queued.upstreamId, task);
    expect(result).toMatchObject({ state: "failed", reason: "canceled" });
  });

  it("a malformed upstream id is refused without any request", async () => {
    const env = await setup();
    for (const bad of ["../../admin", "a/b", "", "x?y"]) {
      const err = await catchProviderError(env.provider.poll(bad, makeTask()));
      expect(err.retryable).toBe(false);
    }
    expect(env.fal.requests).toHaveLength(0);
  });
});

describe("cancel: only a request still in fal's queue", () => {
  it("IN_QUEUE: status read, then PUT on the owner/app cancel path; the request never runs", async () => {
    const env = await setup();
    env.fal.script({ jobs: [{ queuedPolls: 10 }] });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    expect(await env.provider.cancel(upstreamId, task)).toBe("canceled");
    const cancels = env.fal.requestsTo("cancel");
    expect(cancels).toHaveLength(1);
    expect(cancels[0]).toMatchObject({ method: "PUT", path: `/fal-ai/kling-video/requests/${upstreamId}/cancel` });
    expect(cancels[0]?.headers.authorization).toBe(`Key ${env.fal.key}`);
    expect(env.fal.jobs.get(upstreamId)?.cancelled).toBe(true);
    expect(env.trap.connections).toBe(0);
  });

  it("IN_PROGRESS or COMPLETED: not cancelable, and no cancel is sent", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [
        { queuedPolls: 0, inProgressPolls: 10 },
        { queuedPolls: 0, inProgressPolls: 0 },
      ],
    });
    const task = makeTask();
    const running = await env.provider.submit(task);
    const done = await env.provider.submit(task);
    expect(await env.provider.cancel(running.upstreamId, task)).toBe("not_cancelable");
    expect(await env.provider.cancel(done.upstreamId, task)).toBe("not_cancelable");
    expect(env.fal.requestsTo("cancel")).toHaveLength(0);
  });

  it("a 400 (started meanwhile) or 404 answer to the cancel is not cancelable; a 5xx is a retryable error", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [{ queuedPolls: 10 }],
      cancel: [
        { status: 400, body: { status: "ALREADY_COMPLETED" } },
        { status: 404, body: { status: "NOT_FOUND" } },
        { status: 503, body: { detail: "busy" } },
      ],
    });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    expect(await env.provider.cancel(upstreamId, task)).toBe("not_cancelable");
    expect(await env.provider.cancel(upstreamId, task)).toBe("not_cancelable");
    const err = await catchProviderError(env.provider.cancel(upstreamId, task));
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain(env.fal.key);
    expect(env.fal.jobs.get(upstreamId)?.cancelled).toBe(false);
  });

  it("a malformed upstream id is refused without any request", async () => {
    const env = await setup();
    const err = await catchProviderError(env.provider.cancel("../../admin", makeTask()));
    expect(err.retryable).toBe(false);
    expect(env.fal.requests).toHaveLength(0);
  });
});

describe("poll: results that are errors", () => {
  async function completedWith(env: Env, outcome: Parameters<FakeFal["script"]>[0]["jobs"]): Promise<PollResult> {
    env.fal.script({ jobs: outcome });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    return env.provider.poll(upstreamId, task);
  }

  it("COMPLETED + 422 content_policy_violation -> content_rejected (final)", async () => {
    const env = await setup();
    const result = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: { type: "model_error", detail: contentPolicyViolation(["sexual"]) },
      },
    ]);
    expect(result.state).toBe("failed");
    if (result.state !== "failed") return;
    expect(result.reason).toBe("content_rejected");
    expect(result.message).toContain("flagged by a content checker");
    expect(result.message).toContain("content_policy_violation");
    expect(result.message).not.toContain("the flagged prompt");
    expect(env.fal.requestsTo("status")[0]?.answeredStatus).toBe(200);
    expect(env.fal.requestsTo("result")[0]?.answeredStatus).toBe(422);
  });

  it("model_moderated (as a category or a type) -> content_rejected", async () => {
    const env = await setup();
    const byCategory = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: { type: "model_error", detail: contentPolicyViolation(["model_moderated"]) },
      },
    ]);
    expect(byCategory).toMatchObject({ state: "failed", reason: "content_rejected" });
    const byType = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: { type: "model_error", detail: [falModelError("model_moderated", "refused by model")] },
      },
    ]);
    expect(byType).toMatchObject({ state: "failed", reason: "content_rejected" });
  });

  it("other model errors: 422 input types -> invalid_input, provider-side types -> provider_error", async () => {
    const env = await setup();
    const small = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: {
          type: "model_error",
          detail: [falModelError("image_too_small", "Image too small", ["body", "start_image_url"])],
        },
      },
    ]);
    expect(small).toMatchObject({ state: "failed", reason: "invalid_input" });
    const download = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: { type: "model_error", detail: [falModelError("file_download_error", "File download error")] },
      },
    ]);
    expect(download).toMatchObject({ state: "failed", reason: "provider_error" });
    const internal = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: {
          type: "model_error",
          status: 500,
          detail: [falModelError("internal_server_error", "Internal server error")],
        },
      },
    ]);
    expect(internal).toMatchObject({ state: "failed", reason: "provider_error" });
  });

  it("fal could not download our reference (fetchImages, 404) -> file_download_error -> provider_error", async () => {
    const env = await setup({ fetchImages: true });
    const task = makeTask({}, [imageRef(`${env.fal.url}/files/does-not-exist.png`)]);
    const { upstreamId } = await env.provider.submit(task);
    expect(env.fal.jobs.get(upstreamId)?.imageFetch).toMatchObject({ status: 404 });
    expect(await pollToEnd(env.provider, upstreamId, task)).toMatchObject({
      state: "failed",
      reason: "provider_error",
    });
  });

  it("an envelope instead of the raw output is not mistaken for a video", async () => {
    const env = await setup();
    const result = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        outcome: {
          type: "raw",
          status: 200,
          body: { status: "COMPLETED", response: { video: { url: env.fal.videoUrl } } },
        },
      },
    ]);
    expect(result).toMatchObject({ state: "failed", reason: "provider_error" });
  });

  it("COMPLETED with an error_type + the same request error from the result -> failed, no futile retries", async () => {
    const env = await setup();
    const timeout = falRequestError(504, "request_timeout", "Request timed out");
    const result = await completedWith(env, [
      {
        queuedPolls: 0,
        inProgressPolls: 0,
        completedStatusExtra: { error: "Request timed out", error_type: "request_timeout" },
        outcome: { type: "raw", status: 504, body: timeout.body, headers: timeout.headers },
      },
    ]);
    expect(result).toMatchObject({ state: "failed", reason: "provider_error" });
    expect(result.state === "failed" && result.message).toContain("request_timeout");
    expect(env.fal.requestsTo("result")).toHaveLength(1);
  });
});

describe("poll: transient result failures (fal keeps results only minutes)", () => {
  it("504 on the first two result fetches is retried inside the poll, then succeeds", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [{ queuedPolls: 0, inProgressPolls: 0 }],
      result: [falRequestError(504, "request_timeout"), falRequestError(504, "request_timeout")],
    });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    const result = await env.provider.poll(upstreamId, task);
    expect(result).toMatchObject({ state: "succeeded", media: [{ url: env.fal.videoUrl }] });
    expect(env.fal.requestsTo("result").map((r) => r.answeredStatus)).toEqual([504, 504, 200]);
    expect(env.fal.requestsTo("status")).toHaveLength(1);
  });

  it("persistent 5xx -> retryable ProviderError; the next poll gets the result", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [{ queuedPolls: 0, inProgressPolls: 0 }],
      result: [
        { status: 502, body: "<html>bad gateway</html>" },
        falRequestError(503, "runner_disconnected"),
        falRequestError(504, "request_timeout"),
      ],
    });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    const err = await catchProviderError(env.provider.poll(upstreamId, task));
    expect(err.retryable).toBe(true);
    expect(err.maybeAccepted).toBe(false);
    expect(err.message).toContain("HTTP 504");
    expect(env.fal.requestsTo("result")).toHaveLength(3);
    expect(await env.provider.poll(upstreamId, task)).toMatchObject({ state: "succeeded" });
  });

  it("malformed JSON and 401/429 on the result are retried, not final", async () => {
    const env = await setup();
    env.fal.script({
      jobs: [{ queuedPolls: 0, inProgressPolls: 0 }],
      result: [
        { status: 200, body: '{"video": {"url": "http://trunc' },
        { status: 429, body: { detail: "slow" }, headers: { "retry-after": "0" } },
      ],
    });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    expect(await env.provider.poll(upstreamId, task)).toMatchObject({ state: "succeeded" });
    expect(env.fal.requestsTo("result").map((r) => r.answeredStatus)).toEqual([200, 429, 200]);

    env.fal.script({
      jobs: [{ queuedPolls: 0, inProgressPolls: 0 }],
      result: [{ status: 401, body: { detail: "no" } }],
    });
    const second = await env.provider.submit(task);
    expect(await env.provider.poll(second.upstreamId, task)).toMatchObject({ state: "succeeded" });
  });

  it("a hanging result fetch times out as a retryable error within about one request timeout", async () => {
    const env = await setup({}, { requestTimeoutMs: 300 });
    env.fal.script({ jobs: [{ queuedPolls: 0, inProgressPolls: 0 }], result: [{ hang: true }] });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    const started = Date.now();
    const err = await catchProviderError(env.provider.poll(upstreamId, task));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(err).toMatchObject({ retryable: true, maybeAccepted: false });
    expect(err.message).toBe("fal result timed out after 300 ms");
  });

  it("the adapter hands over the URL; the fake can make that URL 404 or serve HTML", async () => {
    const env = await setup();
    env.fal.script({
      files: { "page.mp4": { contentType: "text/html", body: "<!doctype html><p>not a video</p>" } },
      jobs: [
        { queuedPolls: 0, inProgressPolls: 0, outcome: { type: "video", url: `${env.fal.url}/files/gone.mp4` } },
        { queuedPolls: 0, inProgressPolls: 0, outcome: { type: "video", url: `${env.fal.url}/files/page.mp4` } },
      ],
    });
    const task = makeTask();
    const gone = await env.provider.submit(task);
    const goneResult = await env.provider.poll(gone.upstreamId, task);
    expect(goneResult).toMatchObject({ state: "succeeded", media: [{ url: `${env.fal.url}/files/gone.mp4` }] });
    expect((await fetch(`${env.fal.url}/files/gone.mp4`)).status).toBe(404);

    const html = await env.provider.submit(task);
    const htmlResult = await env.provider.poll(html.upstreamId, task);
    expect(htmlResult).toMatchObject({ state: "succeeded", media: [{ url: `${env.fal.url}/files/page.mp4` }] });
    const page = await fetch(`${env.fal.url}/files/page.mp4`);
    expect(page.headers.get("content-type")).toBe("text/html");
    // A scripted media fault makes the next download 404 (e.g. expired), then the video is back.
    env.fal.script({ media: [{ status: 404, body: "expired" }] });
    expect((await fetch(env.fal.videoUrl)).status).toBe(404);
    expect((await fetch(env.fal.videoUrl)).status).toBe(200);
  });
});

describe("poll: status endpoint failures are retryable", () => {
  it.each([
    ["503", falRequestError(503, "runner_scheduling_failure")],
    ["429", { status: 429, body: { detail: "rate" }, headers: { "retry-after": "4" } }],
    ["malformed JSON", { status: 200, body: "{not json" }],
    ["HTML from a proxy", { status: 502, body: "<html>502</html>" }],
    ["401 (key rotated mid-flight)", { status: 401, body: { detail: "nope" } }],
    ["dropped connection", { destroy: true }],
  ])("%s", async (_name, fault) => {
    const env = await setup();
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    env.fal.script({ status: [fault] });
    const err = await catchProviderError(env.provider.poll(upstreamId, task));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: false, reason: "provider_error" });
    expect(err.message).not.toContain(env.fal.key);
    expect((await env.provider.poll(upstreamId, task)).state).toBe("pending");
  });

  it("a hanging status request times out (retryable)", async () => {
    const env = await setup({}, { requestTimeoutMs: 250 });
    const task = makeTask();
    const { upstreamId } = await env.provider.submit(task);
    env.fal.script({ status: [{ hang: true }] });
    const err = await catchProviderError(env.provider.poll(upstreamId, task));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: false, message: "fal status timed out after 250 ms" });
  });

  it("an unknown request id (404) is retryable, bounded by the worker", async () => {
    const env = await setup();
    const err = await catchProviderError(env.provider.poll("00000000-0000-4000-8000-000000000000", makeTask()));
    expect(err).toMatchObject({ retryable: true });
    expect(err.message).toContain("HTTP 404");
  });
});

describe("submit: errors", () => {
  it("a wrong key -> 401 -> final provider_error; the key never appears in the message", async () => {
    const env = await setup({}, {});
    const wrongKey = "wrong-key-0123456789:abcdef";
    const provider = new FalProvider({ key: wrongKey, queueUrl: env.fal.url });
    const err = await catchProviderError(provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: false, reason: "provider_error", maybeAccepted: false });
    expect(err.message).toContain("HTTP 401");
    expect(err.message).not.toContain(wrongKey);
    expect(lastSubmit(env.fal).headers.authorization).toBe(`Key ${wrongKey}`);
    expect(lastSubmit(env.fal).answeredStatus).toBe(401);
  });

  it("a 503 burst: retryable + maybeAccepted each time, then accepted", async () => {
    const env = await setup();
    env.fal.script({
      submit: [falRequestError(503, "runner_scheduling_failure"), falRequestError(503, "runner_scheduling_failure")],
    });
    for (let i = 0; i < 2; i++) {
      const err = await catchProviderError(env.provider.submit(makeTask()));
      expect(err).toMatchObject({ retryable: true, maybeAccepted: true, saturated: false });
      expect(err.message).toContain("runner_scheduling_failure");
    }
    const { upstreamId } = await env.provider.submit(makeTask());
    expect(env.fal.jobs.has(upstreamId)).toBe(true);
  });

  it("429 -> retryable, saturated, Retry-After, not accepted", async () => {
    const env = await setup();
    env.fal.script({
      submit: [{ status: 429, body: { detail: "Too many requests" }, headers: { "retry-after": "7" } }],
    });
    const err = await catchProviderError(env.provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: true, saturated: true, maybeAccepted: false, retryAfterMs: 7000 });
  });

  it.each([
    [
      "422 content_policy_violation -> content_rejected",
      { status: 422, body: { detail: contentPolicyViolation() } },
      "content_rejected",
    ],
    [
      "422 validation -> invalid_input",
      { status: 422, body: { detail: [falModelError("one_of", "bad duration", ["body", "duration"])] } },
      "invalid_input",
    ],
    ["400 plain -> invalid_input", { status: 400, body: { detail: "Bad request" } }, "invalid_input"],
    ["403 -> provider_error", { status: 403, body: { detail: "User is locked" } }, "provider_error"],
    ["404 (wrong base URL) -> provider_error", { status: 404, body: { detail: "Not Found" } }, "provider_error"],
  ])("%s (final)", async (_name, fault, reason) => {
    const env = await setup();
    env.fal.script({ submit: [fault] });
    const err = await catchProviderError(env.provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: false, maybeAccepted: false, reason });
  });

  it("a hanging submit that fal did queue -> timeout, retryable + maybeAccepted", async () => {
    const env = await setup({}, { requestTimeoutMs: 300 });
    env.fal.script({ submit: [{ hang: true, accept: true }] });
    const err = await catchProviderError(env.provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: true, message: "fal submit timed out after 300 ms" });
    // Exactly the ambiguity maybeAccepted describes: the job exists upstream.
    expect(env.fal.jobs.size).toBe(1);
  });

  it("a slow but successful submit (within the timeout) is fine", async () => {
    const env = await setup({}, { requestTimeoutMs: 2_000 });
    env.fal.script({ submit: [{ delayMs: 200, passthrough: true }] });
    const { upstreamId } = await env.provider.submit(makeTask());
    expect(env.fal.jobs.has(upstreamId)).toBe(true);
  });

  it.each([
    ["5xx after queueing", { status: 500, body: "<html>oops</html>", accept: true }],
    ["dropped connection", { destroy: true, accept: true }],
    ["malformed JSON 200", { status: 200, body: '{"request_id": "abc' }],
    ["200 without request_id", { status: 200, body: { status: "IN_QUEUE" } }],
    ["forged request_id", { status: 200, body: { request_id: "../../evil", status_url: "https://evil.invalid/x" } }],
  ])("%s -> retryable + maybeAccepted", async (_name, fault) => {
    const env = await setup();
    env.fal.script({ submit: [fault] });
    const err = await catchProviderError(env.provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: true });
    expectCleanTraffic(env);
  });

  it("a redirect is not followed (the Key header would go along) and is final", async () => {
    const env = await setup();
    env.fal.script({ submit: [{ status: 307, body: "", headers: { location: `${env.trap.url}/steal` } }] });
    const err = await catchProviderError(env.provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: false, maybeAccepted: false });
    expect(env.trap.connections).toBe(0);
  });

  it("connection refused -> retryable, NOT maybeAccepted (nothing was sent)", async () => {
    const env = await setup();
    const closed = await startFakeFal();
    const deadUrl = closed.url;
    await closed.close();
    const provider = new FalProvider({ key: env.fal.key, queueUrl: deadUrl, requestTimeoutMs: 2_000 });
    const err = await catchProviderError(provider.submit(makeTask()));
    expect(err).toMatchObject({ retryable: true, maybeAccepted: false });
    expect(err.message).toContain("ECONNREFUSED");
  });
});

describe("configuration", () => {
  it("defaults to https://queue.fal.run and sends Key auth", async () => {
    const seen: { url: string; init: RequestInit | undefined }[] = [];
    const provider = new FalProvider({
      key: "k-123",
      fetch: async (input, init) => {
        seen.push({ url: String(input), init });
        return new Response(JSON.stringify({ request_id: "abc-123" }), { status: 200 });
      },
    });
    expect(await provider.submit(makeTask())).toEqual({ upstreamId: "abc-123" });
    expect(seen[0]?.url).toBe("https://queue.fal.run/fal-ai/kling-video/v2.6/pro/text-to-video");
    expect(new Headers(seen[0]?.init?.headers).get("authorization")).toBe("Key k-123");
    expect(seen[0]?.init?.redirect).toBe("manual");
    expect(provider.name).toBe("fal");
    expect("findSubmitted" in provider).toBe(false);
    expect("release" in provider).toBe(false);
  });

  it("rejects a missing key or a bad queue URL without echoing the key", () => {
    expect(() => new FalProvider({ key: "" })).toThrow(/FAL_KEY/);
    expect(() => new FalProvider({ key: "has space" })).toThrow(/FAL_KEY/);
    expect(() => new FalProvider({ key: "line\nbreak" })).toThrow(/FAL_KEY/);
    expect(() => new FalProvider({ key: "ok", queueUrl: "not a url" })).toThrow(/FAL_QUEUE_URL/);
    expect(() => new FalProvider({ key: "ok", queueUrl: "https://u:p@queue.fal.run" })).toThrow(/credentials/);
    try {
      new FalProvider({ key: "secret value" });
    } catch (err) {
      expect((err as Error).message).not.toContain("secret");
    }
  });
});
