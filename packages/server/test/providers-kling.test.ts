/**
 * End to end with PROVIDERS=kling against the fake Kling API (test/fakes/fake-kling.ts): tasks
 * are created and watched through the public API only. Every case checks the final status and
 * `error.reason`, the credits (one refund row per failed task, ledger_sum === credits), and how
 * many create calls reached the upstream and how many Kling tasks they made.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeKling, type FakeKlingRule, startFakeKling } from "./fakes/fake-kling.js";
import { makeImage, makeVideo } from "./fixtures/media.js";
import { startTestServer, type TestServer } from "./harness.js";
import {
  createGeneration,
  dbTask,
  downloadResult,
  E2E_ENV,
  expectFailedAndRefunded,
  expectSucceededAndCharged,
  fetchBytes,
  klingCreates,
  klingEnv,
  klingTasksFor,
  klingTrafficFor,
  referenceItem,
  sha256,
  until,
  uploadReference,
  watchTask,
} from "./provider-e2e-helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "providers-kling-"));
/** Output sizes of the fake's renders, by aspect ratio (i2v is always 1:1). */
const FAKE_SIZES: Record<string, [number, number]> = { "1:1": [96, 96], "16:9": [128, 72], "9:16": [72, 128] };

let fake: FakeKling;
let t: TestServer;

beforeAll(async () => {
  fake = await startFakeKling({ fetchImageUrls: true });
  t = await startTestServer({ ...E2E_ENV, ...klingEnv(fake), PROVIDERS: "kling", KLING_MODE: "std" });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The task JSON never leaks where the upstream keeps the video, nor its ids. */
function expectNoUpstreamLeak(fake: FakeKling, text: string, klingTaskId: string | undefined): void {
  expect(text).not.toContain(fake.url);
  expect(text).not.toContain(new URL(fake.url).host);
  expect(text).not.toContain("/videos/");
  if (klingTaskId) expect(text).not.toContain(klingTaskId);
}

interface Env {
  fake: FakeKling;
  t: TestServer;
}

/**
 * One fault case on its own fake Kling and server (cases run concurrently, and a scripted rule
 * or a circuit breaker must never be shared between them).
 */
async function scenario(run: (env: Env) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const ownFake = await startFakeKling({ videoPath: await sharedVideo() });
  const ownServer = await startTestServer({ ...E2E_ENV, ...klingEnv(ownFake), PROVIDERS: "kling", ...env });
  try {
    await run({ fake: ownFake, t: ownServer });
  } finally {
    await ownServer.close();
    await ownFake.close();
  }
}

let video: Promise<string> | undefined;
/** One 1 s MP4 every fault-case fake serves as its result (renders are not what they test). */
function sharedVideo(): Promise<string> {
  video ??= makeVideo(dir, { format: "mp4", width: 64, height: 64, seconds: 1, fps: 8 });
  return video;
}

/** Runs one task with `rules` scripted on the fake; returns the watched task. */
async function runWithScript(
  { fake, t }: Env,
  acct: { key: string },
  prompt: string,
  rules: FakeKlingRule[],
  timeoutMs = 20_000,
) {
  if (rules.length) fake.script(...rules);
  const id = await createGeneration(t, acct.key, prompt, { duration: "5", sound: "false", aspect_ratio: "16:9" });
  return { id, watched: await watchTask(t, acct.key, id, timeoutMs) };
}

describe("happy paths", () => {
  it("text2video: every aspect ratio x duration x sound, bytes mirrored, upstream kept private", async () => {
    const combos = ["16:9", "9:16", "1:1"].flatMap((aspect_ratio) =>
      ["5", "10"].flatMap((duration) => ["false", "true"].map((sound) => ({ aspect_ratio, duration, sound }))),
    );
    await Promise.all(
      combos.map(async (params) => {
        const what = JSON.stringify(params);
        const acct = await t.createAccount(100);
        const id = await createGeneration(t, acct.key, `A lighthouse ${what}`, params);
        const watched = await watchTask(t, acct.key, id);
        // The create answered "queued"; on a busy machine the worker may be faster than the first
        // read, so the watch starts at queued or processing and only moves forward.
        expect(["queued,processing,succeeded", "processing,succeeded"], what).toContain(watched.history.join());
        await expectSucceededAndCharged(t, acct, watched);

        // Exactly one create, with the documented body.
        const creates = klingCreates(fake, id);
        expect(creates, what).toHaveLength(1);
        const kTasks = klingTasksFor(fake, id);
        expect(kTasks, what).toHaveLength(1);
        const kTask = kTasks[0] as (typeof kTasks)[number];
        const audio = params.sound === "true";
        expect(creates[0]?.path).toBe("/v1/videos/text2video");
        expect(creates[0]?.body, what).toStrictEqual({
          model_name: "kling-v2-6",
          prompt: `A lighthouse ${what}`,
          duration: params.duration,
          sound: audio ? "on" : "off",
          mode: audio ? "pro" : "std",
          aspect_ratio: params.aspect_ratio,
          external_task_id: id,
          callback_url: expect.stringMatching(new RegExp(`^${t.url}/internal/callbacks/kling/${id}\\.[\\w-]+$`)),
        });

        // The stored video is the upstream's, byte for byte, described correctly.
        const media = watched.final.result.media[0];
        const [width, height] = FAKE_SIZES[params.aspect_ratio] as [number, number];
        expect(media, what).toMatchObject({ mime_type: "video/mp4", width, height, has_audio: audio });
        expect(Math.abs(media.duration_seconds - Number(params.duration)), what).toBeLessThan(0.6);
        const ours = await downloadResult(watched.final);
        const upstream = await fetchBytes(`${fake.url}/videos/${kTask.taskId}.mp4`);
        expect(upstream.status).toBe(200);
        expect(sha256(ours), what).toBe(sha256(upstream.bytes));
        expectNoUpstreamLeak(fake, watched.text, kTask.taskId);

        // Reconciliation facts and the upstream id stay in the database.
        const row = await dbTask(t, id);
        expect(row.provider).toBe("kling");
        expect(row.upstream_id).toBe(`text2video:${kTask.taskId}`);
        expect(JSON.parse(row.upstream_details ?? "null"), what).toStrictEqual({
          upstream_task_id: kTask.taskId,
          final_unit_deduction: kTask.finalUnitDeduction,
          video_duration: params.duration,
        });
        expect(kTask.finalUnitDeduction).toBe(String((Number(params.duration) / 5) * (audio ? 2 : 1)));
      }),
    );
  });

  it("image2video: the uploaded PNG goes out as our signed URL, which Kling can fetch", async () => {
    const acct = await t.createAccount(200);
    const png = await makeImage(dir, { format: "png", width: 320, height: 320, color: "#cc3311" });
    const file = await uploadReference(t, acct.key, png);
    for (const params of [
      { duration: "10", sound: "true" },
      { duration: "5", sound: "false" },
    ]) {
      const id = await createGeneration(t, acct.key, "The product turns slowly", {
        ...params,
        referenceMediaItems: referenceItem(file),
      });
      const watched = await watchTask(t, acct.key, id);
      await expectSucceededAndCharged(t, acct, watched);
      const creates = klingCreates(fake, id);
      expect(creates).toHaveLength(1);
      expect(creates[0]?.path).toBe("/v1/videos/image2video");
      const body = creates[0]?.body as Record<string, unknown>;
      const audio = params.sound === "true";
      expect(body).toMatchObject({
        model_name: "kling-v2-6",
        duration: params.duration,
        sound: audio ? "on" : "off",
        mode: audio ? "pro" : "std",
        external_task_id: id,
      });
      expect(body).not.toHaveProperty("aspect_ratio");
      expect(body).not.toHaveProperty("cfg_scale");
      expect(String(body.image)).toMatch(new RegExp(`^${t.url}/media/files/`));
      // The URL Kling got serves exactly the uploaded image (the fake fetched it at create).
      const image = await fetchBytes(String(body.image));
      expect(image.status).toBe(200);
      expect(sha256(image.bytes)).toBe(file.sha256);

      const kTask = klingTasksFor(fake, id)[0];
      expect(kTask?.subpath).toBe("image2video");
      const ours = await downloadResult(watched.final);
      const upstream = await fetchBytes(`${fake.url}/videos/${kTask?.taskId}.mp4`);
      expect(sha256(ours)).toBe(sha256(upstream.bytes));
      expect(watched.final.result.media[0]).toMatchObject({ width: 96, height: 96, has_audio: audio });
      expectNoUpstreamLeak(fake, watched.text, kTask?.taskId);
      const row = await dbTask(t, id);
      expect(row.upstream_id).toBe(`image2video:${kTask?.taskId}`);
      expect(JSON.parse(row.upstream_details ?? "{}").final_unit_deduction).toBe(kTask?.finalUnitDeduction);
    }
  });

  it("image2video with KLING_SEND_IMAGES_AS=base64: raw base64 of the stored PNG, no data: prefix", async () => {
    const t2 = await startTestServer({
      ...E2E_ENV,
      ...klingEnv(fake),
      PROVIDERS: "kling",
      KLING_SEND_IMAGES_AS: "base64",
    });
    try {
      const acct = await t2.createAccount(100);
      const png = await makeImage(dir, { format: "png", width: 400, height: 300 });
      const file = await uploadReference(t2, acct.key, png);
      const id = await createGeneration(t2, acct.key, "A slow zoom", {
        duration: "5",
        referenceMediaItems: referenceItem(file),
      });
      const watched = await watchTask(t2, acct.key, id);
      await expectSucceededAndCharged(t2, acct, watched);
      const creates = klingCreates(fake, id);
      expect(creates).toHaveLength(1);
      const image = String(creates[0]?.body?.image);
      expect(image).not.toMatch(/^data:|^https?:/);
      expect(sha256(Buffer.from(image, "base64"))).toBe(file.sha256);
      await downloadResult(watched.final);
    } finally {
      await t2.close();
    }
  });
});

describe.concurrent("fault matrix (kling is the only provider; one fake and server per case)", () => {
  const FINAL: [number, number, string][] = [
    [1100, 429, "provider_error"],
    [1101, 429, "provider_error"],
    [1102, 429, "provider_error"],
    [1103, 403, "provider_error"],
    [1200, 400, "invalid_input"],
    [1201, 400, "invalid_input"],
    [1202, 404, "provider_error"],
    [1203, 404, "provider_error"],
    [1300, 400, "provider_error"],
    [1304, 429, "provider_error"],
  ];
  it.each(FINAL)("code %i (HTTP %i) on create is final: failed %s, one create, refunded", async (code, http, reason) =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, `final ${code}`, [
        { on: "create", fault: { type: "error", code, httpStatus: http } },
      ]);
      await expectFailedAndRefunded(t, acct, watched, reason);
      expect(watched.history).not.toContain("processing");
      expect(watched.final.started_at).toBeNull();
      expect(klingCreates(fake, id)).toHaveLength(1);
      expect(klingTasksFor(fake, id)).toHaveLength(0);
      // Nothing was retried or looked up afterwards.
      expect(klingTrafficFor(fake, id)).toHaveLength(1);
      expect((await dbTask(t, id)).upstream_id).toBeNull();
      expectNoUpstreamLeak(fake, watched.text, undefined);
    }),
  );

  it.each([1000, 1001, 1002, 1003, 1004])(
    "auth code %i twice: one fresh-token retry, then failed provider_error",
    async (code) =>
      scenario(async (env) => {
        const { fake, t } = env;
        const acct = await t.createAccount(100);
        const { id, watched } = await runWithScript(env, acct, `auth ${code}`, [
          { on: "create", times: 2, fault: { type: "error", code, httpStatus: 401 } },
        ]);
        await expectFailedAndRefunded(t, acct, watched, "provider_error");
        const creates = klingCreates(fake, id);
        // The retry signs a new token (byte-identical within the same second: same claims).
        expect(creates).toHaveLength(2);
        expect(creates.every((r) => r.status === 401 && r.code === code)).toBe(true);
        expect(klingTasksFor(fake, id)).toHaveLength(0);
      }),
  );

  it("code 1301 (content security) is content_rejected at once, refunded, one create", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "moderated", [
        { on: "create", fault: { type: "error", code: 1301, httpStatus: 400 } },
      ]);
      await expectFailedAndRefunded(t, acct, watched, "content_rejected");
      expect(klingCreates(fake, id)).toHaveLength(1);
      expect(klingTrafficFor(fake, id)).toHaveLength(1);
    }));

  const RETRYABLE: [number, number][] = [
    [1302, 429],
    [1303, 429],
    [5000, 500],
    [5001, 503],
    [5002, 504],
  ];
  it.each(RETRYABLE)(
    "code %i (HTTP %i) is retried; the task succeeds with exactly one Kling task",
    async (code, http) =>
      scenario(async (env) => {
        const { fake, t } = env;
        const acct = await t.createAccount(100);
        const { id, watched } = await runWithScript(env, acct, `retry ${code}`, [
          { on: "create", fault: { type: "error", code, httpStatus: http, retryAfter: "1" } },
        ]);
        await expectSucceededAndCharged(t, acct, watched);
        // `queued` may already be over at the first look on a busy machine.
        expect(watched.history.slice(-2)).toEqual(["processing", "succeeded"]);
        const creates = klingCreates(fake, id);
        expect(creates).toHaveLength(2);
        expect(creates[0]?.code).toBe(code);
        expect(creates[1]?.status).toBe(200);
        expect(klingTasksFor(fake, id)).toHaveLength(1);
        if (code >= 5000) {
          // A server-side error may hide an accepted task: it is looked up by external id first.
          const lookup = fake.requests.findIndex((r) => r.endpoint === "query" && r.path.endsWith(`/${id}`));
          expect(lookup).toBeGreaterThan(creates[0]?.index ?? Number.POSITIVE_INFINITY);
          expect(lookup).toBeLessThan(creates[1]?.index ?? -1);
        }
        await downloadResult(watched.final);
      }),
  );

  it("a 401 once (intermittent signature error) is retried with a fresh token and succeeds", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "intermittent 401", [
        { on: "create", fault: { type: "unauthorized" } },
        { on: "query", fault: { type: "unauthorized" } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      const creates = klingCreates(fake, id);
      expect(creates.map((r) => r.status)).toEqual([401, 200]);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
    }));

  it("a task that fails upstream (code 0 / SUCCEED) fails with the reason from task_status_msg", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(200);
      const plain = await runWithScript(env, acct, "[kling:fail=Image pixel is invalid] a cat", []);
      await expectFailedAndRefunded(t, acct, plain.watched, "provider_error");
      expect(plain.watched.history.slice(-2)).toEqual(["processing", "failed"]);
      expect(klingCreates(fake, plain.id)).toHaveLength(1);
      const kTask = klingTasksFor(fake, plain.id)[0];
      const lastQuery = fake.requests
        .filter((r) => r.endpoint === "query" && r.path.endsWith(`/${kTask?.taskId}`))
        .at(-1);
      expect(lastQuery?.status).toBe(200);
      expect(lastQuery?.code).toBe(0);
      expect((await dbTask(t, plain.id)).error_detail).toContain("Image pixel is invalid");

      const risk = await runWithScript(env, acct, "[kling:fail=Failure to pass the risk control system] a cat", []);
      await expectFailedAndRefunded(t, acct, risk.watched, "content_rejected");
      expect(klingCreates(fake, risk.id)).toHaveLength(1);
      // Public messages are fixed sentences: no upstream wording.
      expect(risk.watched.final.error.message).not.toContain("risk control");
    }));

  it("`data` as an array (create and every poll, with decoys) is read correctly", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "array data", [
        { on: "create", fault: { type: "dataArray", decoys: 0 } },
        { on: "query", times: Number.POSITIVE_INFINITY, fault: { type: "dataArray", decoys: 2 } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id)).toHaveLength(1);
      const kTask = klingTasksFor(fake, id)[0];
      expect((await dbTask(t, id)).upstream_id).toBe(`text2video:${kTask?.taskId}`);
      await downloadResult(watched.final);
    }));

  it("a slow create answer within PROVIDER_REQUEST_TIMEOUT_SECONDS is just slow", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "slow create", [
        { on: "create", fault: { type: "delay", ms: 600 } },
        { on: "query", times: 2, fault: { type: "delay", ms: 300 } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id)).toHaveLength(1);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
    }));

  it("create accepted but the answer hangs past the timeout: found by external_task_id, never resubmitted", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "accepted then hang", [
        { on: "create", fault: { type: "acceptThen", answer: { type: "hang" } } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id)).toHaveLength(1);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
      const kTask = klingTasksFor(fake, id)[0];
      const lookups = fake.requests.filter((r) => r.endpoint === "query" && r.path === `/v1/videos/text2video/${id}`);
      expect(lookups.length).toBeGreaterThanOrEqual(1);
      expect(lookups[0]?.status).toBe(200);
      expect((await dbTask(t, id)).upstream_id).toBe(`text2video:${kTask?.taskId}`);
      await downloadResult(watched.final);
    }));

  it("create that hangs without being accepted: looked up first (not there), then submitted again", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "hang, not accepted", [
        { on: "create", fault: { type: "hang" } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      const creates = klingCreates(fake, id);
      expect(creates).toHaveLength(2);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
      const lookups = fake.requests.filter((r) => r.endpoint === "query" && r.path.endsWith(`/${id}`));
      expect(lookups.length).toBeGreaterThanOrEqual(1);
      expect(lookups.every((r) => r.status === 404 && r.code === 1203)).toBe(true);
      expect(lookups[0]?.index).toBeGreaterThan(creates[0]?.index ?? Number.POSITIVE_INFINITY);
      expect(lookups.at(-1)?.index).toBeLessThan(creates[1]?.index ?? -1);
    }));

  it.each([
    ["the connection is reset", { type: "reset" } as const],
    ["a malformed JSON answer", { type: "malformed" } as const],
    [
      "an HTML 502 from a proxy",
      { type: "raw", httpStatus: 502, body: "<html>Bad Gateway</html>", headers: { "Retry-After": "1" } } as const,
    ],
  ])("create accepted, then %s: found by external_task_id, one Kling task", async (_what, answer) =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, `accepted then ${answer.type}`, [
        { on: "create", fault: { type: "acceptThen", answer } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id)).toHaveLength(1);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
      expect(fake.requests.some((r) => r.endpoint === "query" && r.path === `/v1/videos/text2video/${id}`)).toBe(true);
    }),
  );

  it("a burst of 5xx on create (not accepted) is retried after lookups; one Kling task", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "5xx burst on create", [
        {
          on: "create",
          times: 2,
          fault: {
            type: "raw",
            httpStatus: 503,
            body: "<html>Service Unavailable</html>",
            headers: { "Retry-After": "1" },
          },
        },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id).map((r) => r.status)).toEqual([503, 503, 200]);
      expect(klingTasksFor(fake, id)).toHaveLength(1);
    }));

  it("poll faults (hang past the timeout, a 5000 burst) only delay the task", async () =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, "poll faults", [
        { on: "query", fault: { type: "hang" } },
        { on: "query", times: 2, fault: { type: "error", code: 5000, httpStatus: 500, retryAfter: "1" } },
      ]);
      await expectSucceededAndCharged(t, acct, watched);
      expect(klingCreates(fake, id)).toHaveLength(1);
      const kTask = klingTasksFor(fake, id)[0];
      const polls = fake.requests.filter((r) => r.endpoint === "query" && r.path.endsWith(`/${kTask?.taskId}`));
      expect(polls.map((r) => r.fault).slice(0, 3)).toEqual(["hang", "error", "error"]);
      await downloadResult(watched.final);
    }));

  it.each(["404", "html"])("the upstream video URL answers %s: failed provider_error, refunded", async (mode) =>
    scenario(async (env) => {
      const { fake, t } = env;
      const acct = await t.createAccount(100);
      const { id, watched } = await runWithScript(env, acct, `[kling:video=${mode}] broken video`, []);
      await expectFailedAndRefunded(t, acct, watched, "provider_error");
      expect(watched.history.slice(-2)).toEqual(["processing", "failed"]);
      expect(klingCreates(fake, id)).toHaveLength(1);
      const kTask = klingTasksFor(fake, id)[0];
      expect(kTask?.status).toBe("succeed");
      expect(fake.requests.some((r) => r.endpoint === "video" && r.path === `/videos/${kTask?.taskId}.mp4`)).toBe(true);
      expectNoUpstreamLeak(fake, watched.text, kTask?.taskId);
    }),
  );
});

describe("callbacks", () => {
  let fakeC: FakeKling;
  let tc: TestServer;
  beforeAll(async () => {
    fakeC = await startFakeKling();
    // Polls so rare that only a callback can finish a task quickly.
    tc = await startTestServer({
      ...E2E_ENV,
      ...klingEnv(fakeC),
      PROVIDERS: "kling",
      POLL_FIRST_DELAY_MS: "30000",
      POLL_MAX_INTERVAL_MS: "30000",
    });
  });
  afterAll(async () => {
    await tc?.close();
    await fakeC?.close();
  });

  it("a callback makes the poll happen now; its body is never trusted; forged tokens get 404", async () => {
    const acct = await tc.createAccount(100);
    const started = Date.now();
    const id = await createGeneration(tc, acct.key, "[kling:after=1500] called back", { duration: "5" });
    await until(async () => (await dbTask(tc, id)).status === "processing", "processing");
    const kTask = klingTasksFor(fakeC, id)[0];
    if (!kTask) throw new Error("no Kling task");
    const callbackUrl = kTask.callbackUrl ?? "";
    expect(callbackUrl).toMatch(new RegExp(`^${tc.url}/internal/callbacks/kling/${id}\\.[\\w-]+$`));

    // A lying callback (claims success with another video): 200, a poll, but no state change.
    const pollsBefore = fakeC.calls("query").length;
    const lie = await fetch(callbackUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        task_id: kTask.taskId,
        task_status: "succeed",
        task_result: { videos: [{ id: "1", url: "http://127.0.0.1:9/evil.mp4", duration: "5" }] },
      }),
    });
    expect(lie.status).toBe(200);
    await until(() => fakeC.calls("query").length > pollsBefore, "a poll triggered by the callback", 3000);
    expect((await dbTask(tc, id)).status).toBe("processing");

    // Forged or foreign tokens.
    for (const token of [
      `${id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`,
      "garbage",
      `task_nope.${callbackUrl.split(".").pop()}`,
    ]) {
      const res = await tc.request(`/internal/callbacks/kling/${token}`, { json: { task_id: kTask.taskId } });
      expect(res.status, token).toBe(404);
    }

    const watched = await watchTask(tc, acct.key, id, 10_000);
    await expectSucceededAndCharged(tc, acct, watched);
    // Without the "succeed" callback the next poll would be 10 s (Kling's hint) to 30 s away.
    expect(Date.now() - started).toBeLessThan(7000);
    await fakeC.callbacksSettled();
    const ours = fakeC.callbacks.filter((c) => c.taskId === kTask.taskId);
    expect(ours.map((c) => c.status)).toEqual(["submitted", "processing", "succeed"]);
    for (const c of ours) expect(c.answeredStatus, JSON.stringify(c)).toBe(200);
    const bytes = await downloadResult(watched.final);
    expect(sha256(bytes)).toBe(sha256((await fetchBytes(`${fakeC.url}/videos/${kTask.taskId}.mp4`)).bytes));
    expect(klingCreates(fakeC, id)).toHaveLength(1);
  });
});
