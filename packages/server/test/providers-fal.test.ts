/**
 * End to end with PROVIDERS=fal against the fake fal queue (test/fakes/fake-fal.ts), through the
 * public API only. Each case runs on its own fake and server (job plans and fault queues are
 * per fake), and checks the final status and `error.reason`, the credits (one refund row per
 * failed task, ledger_sum === credits) and how many submits reached fal and how many jobs ran.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  contentPolicyViolation,
  FAKE_FAL_MODELS,
  type FakeFal,
  falModelError,
  falRequestError,
  type StartFakeFalOptions,
  startFakeFal,
} from "./fakes/fake-fal.js";
import { makeImage } from "./fixtures/media.js";
import { startTestServer, type TestServer } from "./harness.js";
import {
  createGeneration,
  dbTask,
  downloadResult,
  E2E_ENV,
  expectFailedAndRefunded,
  expectSucceededAndCharged,
  falEnv,
  falJobsFor,
  falSubmitsFor,
  referenceItem,
  sha256,
  uniquePrompt,
  uploadReference,
  type Watched,
  watchTask,
} from "./provider-e2e-helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "providers-fal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Env {
  fal: FakeFal;
  t: TestServer;
}

async function scenario(run: (env: Env) => Promise<void>, opts: StartFakeFalOptions = {}): Promise<void> {
  const fal = await startFakeFal({ rejectUnknownFields: true, ...opts });
  const t = await startTestServer({ ...E2E_ENV, ...falEnv(fal), PROVIDERS: "fal" });
  try {
    await run({ fal, t });
  } finally {
    await t.close();
    await fal.close();
  }
}

/** Creates one task and waits for it to end. */
async function run(
  { t }: Env,
  acct: { key: string },
  text: string,
  params: Record<string, unknown> = { duration: "5", sound: "false", aspect_ratio: "16:9" },
): Promise<{ id: string; prompt: string; watched: Watched }> {
  const prompt = uniquePrompt(text);
  const id = await createGeneration(t, acct.key, prompt, params);
  return { id, prompt, watched: await watchTask(t, acct.key, id) };
}

/** The task JSON never names fal, its URLs or its request id. */
function expectNoUpstreamLeak(fal: FakeFal, text: string, requestId?: string): void {
  expect(text).not.toContain(fal.url);
  expect(text).not.toContain(new URL(fal.url).host);
  expect(text).not.toContain("attacker.invalid");
  if (requestId) expect(text).not.toContain(requestId);
}

describe.concurrent("fal", () => {
  it("text2video: explicit generate_audio=false, 202 while queued/running then 200, bytes mirrored", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ jobs: [{ queuedPolls: 2, inProgressPolls: 2 }] });
      const acct = await t.createAccount(100);
      const params = { duration: "10", sound: "false", aspect_ratio: "9:16" };
      const { id, prompt, watched } = await run({ fal, t }, acct, "A fox in snow", params);
      await expectSucceededAndCharged(t, acct, watched);

      const submits = falSubmitsFor(fal, prompt);
      expect(submits).toHaveLength(1);
      expect(submits[0]?.path).toBe(`/${FAKE_FAL_MODELS["text-to-video"]}`);
      expect(submits[0]?.headers.authorization).toBe(`Key ${fal.key}`);
      expect(submits[0]?.body).toStrictEqual({ prompt, duration: "10", aspect_ratio: "9:16", generate_audio: false });
      const jobs = falJobsFor(fal, prompt);
      expect(jobs).toHaveLength(1);
      const job = jobs[0] as (typeof jobs)[number];
      // fal's own default would be audio on (billed double): it must be what we asked.
      expect(job.effectiveInput.generate_audio).toBe(false);

      expect(fal.requestsTo("status").map((r) => r.answeredStatus)).toEqual([202, 202, 202, 202, 200]);
      expect(fal.requestsTo("result").map((r) => r.answeredStatus)).toEqual([200]);
      for (const r of fal.requestsTo("status")) {
        expect(r.path).toBe(`/fal-ai/kling-video/requests/${job.requestId}/status`);
      }

      const bytes = await downloadResult(watched.final);
      expect(sha256(bytes)).toBe(sha256(fal.videoBytes));
      expect(watched.final.result.media[0]).toMatchObject({ width: 64, height: 64, has_audio: false });
      expectNoUpstreamLeak(fal, watched.text, job.requestId);
      const row = await dbTask(t, id);
      expect(row.provider).toBe("fal");
      expect(row.upstream_id).toBe(job.requestId);
    }));

  it("text2video with sound: generate_audio=true sent explicitly", () =>
    scenario(async ({ fal, t }) => {
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "A drum solo", {
        duration: "5",
        sound: "true",
        aspect_ratio: "1:1",
      });
      await expectSucceededAndCharged(t, acct, watched);
      const submits = falSubmitsFor(fal, prompt);
      expect(submits).toHaveLength(1);
      expect(submits[0]?.body).toStrictEqual({ prompt, duration: "5", aspect_ratio: "1:1", generate_audio: true });
      expect(falJobsFor(fal, prompt)[0]?.effectiveInput.generate_audio).toBe(true);
      await downloadResult(watched.final);
    }));

  it("image2video: start_image_url is our signed URL, which fal downloads; no aspect_ratio", () =>
    scenario(
      async ({ fal, t }) => {
        const acct = await t.createAccount(100);
        const png = await makeImage(dir, { format: "png", width: 320, height: 480 });
        const file = await uploadReference(t, acct.key, png);
        const { prompt, watched } = await run({ fal, t }, acct, "The bottle turns", {
          duration: "10",
          sound: "true",
          referenceMediaItems: referenceItem(file),
        });
        await expectSucceededAndCharged(t, acct, watched);
        const submits = falSubmitsFor(fal, prompt);
        expect(submits).toHaveLength(1);
        expect(submits[0]?.path).toBe(`/${FAKE_FAL_MODELS["image-to-video"]}`);
        const body = submits[0]?.body as Record<string, unknown>;
        expect(body).toStrictEqual({
          prompt,
          duration: "10",
          generate_audio: true,
          start_image_url: expect.stringMatching(new RegExp(`^${t.url}/media/files/`)),
        });
        const job = falJobsFor(fal, prompt)[0];
        expect(job?.mode).toBe("image-to-video");
        expect(job?.imageFetch).toStrictEqual({ status: 200, contentType: "image/png", bytes: file.size_bytes });
        const bytes = await downloadResult(watched.final);
        expect(sha256(bytes)).toBe(sha256(fal.videoBytes));
      },
      { fetchImages: true },
    ));

  it("COMPLETED then a 422 content_policy_violation result: content_rejected, refunded", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ jobs: [{ outcome: { type: "model_error", detail: contentPolicyViolation(["sexual"]) } }] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Something flagged");
      await expectFailedAndRefunded(t, acct, watched, "content_rejected");
      expect(watched.history.slice(-2)).toEqual(["processing", "failed"]);
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.requestsTo("status").at(-1)?.answeredStatus).toBe(200);
      expect(fal.requestsTo("result").map((r) => r.answeredStatus)).toEqual([422]);
      expectNoUpstreamLeak(fal, watched.text);
    }));

  it("a 422 content_policy_violation at submit: content_rejected, no job, refunded", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ submit: [{ status: 422, body: { detail: contentPolicyViolation() } }] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Flagged at submit");
      await expectFailedAndRefunded(t, acct, watched, "content_rejected");
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.jobs.size).toBe(0);
    }));

  it("a 504 on the result fetch after COMPLETED is retried, not failed", () =>
    scenario(async ({ fal, t }) => {
      // Four in a row: more than one poll's worth of in-poll retries.
      const timeout = falRequestError(504, "request_timeout");
      fal.script({ result: [timeout, timeout, timeout, timeout] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Slow result");
      await expectSucceededAndCharged(t, acct, watched);
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.requestsTo("result").map((r) => r.answeredStatus)).toEqual([504, 504, 504, 504, 200]);
      await downloadResult(watched.final);
    }));

  it("a burst of 503s on submit (nothing queued) is retried on fal; one job", () =>
    scenario(async ({ fal, t }) => {
      const busy = falRequestError(503, "runner_scheduling_failure");
      fal.script({ submit: [busy, busy, busy] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Busy fal");
      await expectSucceededAndCharged(t, acct, watched);
      expect(watched.history.slice(0, 2)).toEqual(["queued", "processing"]);
      expect(falSubmitsFor(fal, prompt).map((r) => r.answeredStatus)).toEqual([503, 503, 503, 200]);
      expect(falJobsFor(fal, prompt)).toHaveLength(1);
    }));

  it("a 503 after fal queued the job: retried on fal (no lookup exists), the second job is the one used", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ submit: [{ ...falRequestError(503, "runner_scheduling_failure"), accept: true }] });
      const acct = await t.createAccount(100);
      const { id, prompt, watched } = await run({ fal, t }, acct, "Lost answer");
      await expectSucceededAndCharged(t, acct, watched);
      // README: fal has no lookup by our id, so this case can start a second paid job.
      expect(falSubmitsFor(fal, prompt)).toHaveLength(2);
      const jobs = falJobsFor(fal, prompt);
      expect(jobs).toHaveLength(2);
      expect((await dbTask(t, id)).upstream_id).toBe(jobs[1]?.requestId);
    }));

  it("a 401 on submit (bad key): failed provider_error, refunded, one submit", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ submit: [{ status: 401, body: { detail: "Invalid authentication credentials" } }] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Bad key");
      await expectFailedAndRefunded(t, acct, watched, "provider_error");
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.jobs.size).toBe(0);
    }));

  it("a FAILED status: failed provider_error, refunded", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ jobs: [{ outcome: { type: "status", status: "FAILED", error: "GPU fell over" } }] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Failing job");
      await expectFailedAndRefunded(t, acct, watched, "provider_error");
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(watched.final.error.message).not.toContain("GPU");
    }));

  it("a provider-side model error (file_download_error) in the result: failed provider_error", () =>
    scenario(async ({ fal, t }) => {
      fal.script({
        jobs: [
          {
            outcome: {
              type: "model_error",
              detail: [falModelError("file_download_error", "File download error", ["body", "start_image_url"])],
            },
          },
        ],
      });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Download error");
      await expectFailedAndRefunded(t, acct, watched, "provider_error");
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
    }));

  it.each([
    ["404", "missing.mp4"],
    ["an HTML page", "page.mp4"],
  ])("the result video URL serves %s: failed provider_error, refunded", (_what, name) =>
    scenario(async ({ fal, t }) => {
      fal.script({
        files: { "page.mp4": { contentType: "text/html", body: "<!doctype html><html><body>Nope</body></html>" } },
        jobs: [{ outcome: { type: "video", url: `${fal.url}/files/${name}` } }],
      });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, `Broken media ${name}`);
      await expectFailedAndRefunded(t, acct, watched, "provider_error");
      expect(watched.history.slice(-2)).toEqual(["processing", "failed"]);
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.requestsTo("media").map((r) => r.path)).toContain(`/files/${name}`);
      expectNoUpstreamLeak(fal, watched.text);
    }),
  );

  it("a 503 on the media download is retried (finalize again), then the task succeeds", () =>
    scenario(async ({ fal, t }) => {
      fal.script({ media: [{ status: 503, body: "busy" }] });
      const acct = await t.createAccount(100);
      const { prompt, watched } = await run({ fal, t }, acct, "Flaky CDN");
      await expectSucceededAndCharged(t, acct, watched);
      expect(falSubmitsFor(fal, prompt)).toHaveLength(1);
      expect(fal.requestsTo("media").map((r) => r.answeredStatus)).toEqual([503, 200]);
      expect(sha256(await downloadResult(watched.final))).toBe(sha256(fal.videoBytes));
    }));
});
