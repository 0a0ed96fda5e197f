import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import ffmpeg from "@ffmpeg-installer/ffmpeg";
import { createFile, type Movie, MP4BoxBuffer } from "mp4box";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { probeMp4 } from "../../media/mp4-probe.js";
import { FsStorage } from "../../storage/fs.js";
import { type PollResult, ProviderError, type ProviderTask } from "../provider.js";
import { findFont, renderSimulatedVideo, wrapText } from "./render.js";
import { parseDirectives, SimulatedProvider, type SimulatedProviderOptions } from "./simulated-provider.js";

/** Independent reference parser, so probeMp4 is not only checked against itself. */
function mp4boxInfo(file: string): Movie {
  const data = fs.readFileSync(file);
  const iso = createFile();
  let info: Movie | undefined;
  iso.onReady = (movie) => {
    info = movie;
  };
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  iso.appendBuffer(MP4BoxBuffer.fromArrayBuffer(ab, 0));
  iso.flush();
  if (!info) throw new Error(`mp4box could not parse ${file}`);
  return info;
}

const SIZES = {
  "1:1": { width: 160, height: 160 },
  "16:9": { width: 256, height: 144 },
  "9:16": { width: 144, height: 256 },
} as const;

// Quotes, colons, percent signs, backslashes, filtergraph separators and astral characters in
// the directory name as well as the prompt, to exercise both escaping paths.
const root = fs.mkdtempSync(path.join(os.tmpdir(), "sim it's, a: [test]-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let dirCounter = 0;
const providers: SimulatedProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

const workDirs = new Map<SimulatedProvider, string>();
const providerDir = (p: SimulatedProvider) => workDirs.get(p) as string;

function makeProvider(overrides: Partial<SimulatedProviderOptions> = {}): SimulatedProvider {
  const workDir = path.join(root, `work-${++dirCounter}`);
  const provider = new SimulatedProvider({
    workDir,
    ffmpegPath: ffmpeg.path,
    sizes: SIZES,
    fps: 8,
    renderConcurrency: 2,
    ...overrides,
  });
  providers.push(provider);
  workDirs.set(provider, workDir);
  return provider;
}

/** A one-frame test pattern image (ffmpeg's testsrc) of `size`, e.g. "400x300". */
function makeTestPng(file: string, size: string): void {
  execFileSync(ffmpeg.path, ["-v", "error", "-y", "-f", "lavfi", "-i", `testsrc=size=${size}`, "-frames:v", "1", file]);
}

let taskCounter = 0;
function makeTask(prompt: string, params: Record<string, string> = {}, refs: ProviderTask["references"] = []) {
  const task: ProviderTask = {
    taskId: `task_${++taskCounter}`,
    model: "kling-2-6",
    prompt,
    params: { duration: "5", sound: "false", aspect_ratio: "1:1", ...params },
    references: refs,
  };
  return task;
}

async function waitForResult(provider: SimulatedProvider, id: string, task: ProviderTask): Promise<PollResult> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = await provider.poll(id, task);
    if (result.state !== "pending") return result;
    if (Date.now() > deadline) throw new Error(`task ${id} still pending`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function mediaPath(result: PollResult): string {
  if (result.state !== "succeeded") throw new Error(`expected success, got ${JSON.stringify(result)}`);
  const media = result.media[0];
  if (media?.kind !== "file") throw new Error("expected a file result");
  expect(media.mimeType).toBe("video/mp4");
  return media.path;
}

async function expectVideo(file: string, want: { width: number; height: number; duration: number; sound: boolean }) {
  const info = await probeMp4(file);
  expect(info).toMatchObject({ width: want.width, height: want.height, hasAudio: want.sound, videoCodec: "avc1" });
  expect(info.audioCodec).toBe(want.sound ? "mp4a" : null);
  expect(Math.abs(info.durationSeconds - want.duration)).toBeLessThanOrEqual(0.1);

  const ref = mp4boxInfo(file);
  expect(ref.videoTracks).toHaveLength(1);
  expect(ref.videoTracks[0]?.video).toEqual({ width: want.width, height: want.height });
  expect(ref.videoTracks[0]?.codec).toMatch(/^avc1/);
  expect(ref.audioTracks).toHaveLength(want.sound ? 1 : 0);
  if (want.sound) expect(ref.audioTracks[0]?.codec).toMatch(/^mp4a/);
  expect(Math.abs(ref.duration / ref.timescale - want.duration)).toBeLessThanOrEqual(0.1);
}

describe("SimulatedProvider renders", () => {
  let referencePng = "";
  beforeAll(() => {
    referencePng = path.join(root, "reference.png");
    makeTestPng(referencePng, "400x300");
  });

  const weirdPrompt = `She said "don't": 100% sure \\ C:\\path\\ %{pts} [x], y; z=1 🎬 ñ 中文 [SIM:Delay=0]`;
  it.each([
    { aspect: "1:1", duration: "5", sound: "false", prompt: weirdPrompt, ref: false },
    { aspect: "16:9", duration: "10", sound: "true", prompt: "A fox runs through snow", ref: false },
    { aspect: "9:16", duration: "5", sound: "true", prompt: "Zoom into the reference", ref: true },
    { aspect: "9:16", duration: "10", sound: "false", prompt: "", ref: false },
  ])("$aspect, $duration s, sound $sound, reference $ref", async (c) => {
    const provider = makeProvider();
    const refs: ProviderTask["references"] = c.ref
      ? [{ kind: "image", mimeType: "image/png", localPath: referencePng }]
      : [];
    const task = makeTask(c.prompt, { aspect_ratio: c.aspect, duration: c.duration, sound: c.sound }, refs);
    const { upstreamId } = await provider.submit(task);
    expect(upstreamId).toBe(`sim_${task.taskId}`);

    const file = mediaPath(await waitForResult(provider, upstreamId, task));
    const size = SIZES[c.aspect as keyof typeof SIZES];
    await expectVideo(file, { ...size, duration: Number(c.duration), sound: c.sound === "true" });

    const request = JSON.parse(fs.readFileSync(path.join(path.dirname(file), "request.json"), "utf8"));
    expect(request.spec.prompt).not.toMatch(/sim:/i);
    expect(request.spec.referenceImagePath).toBe(c.ref ? referencePng : undefined);
    // Only the final files remain: no temp output or text file left behind.
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(["request.json", "video.mp4"]);
  });

  it("renders without any font (drawbox banner fallback)", async () => {
    const outputPath = path.join(root, "nofont", "out.mp4");
    const spec = { prompt: "no font", durationSeconds: 5, width: 256, height: 144, fps: 8, sound: false, outputPath };
    await renderSimulatedVideo(spec, { ffmpegPath: ffmpeg.path, fontPath: null });
    await expectVideo(outputPath, { width: 256, height: 144, duration: 5, sound: false });
  });

  it("reports a failed render from error.json", async () => {
    const provider = makeProvider();
    const missing = path.join(root, "does-not-exist.png");
    const task = makeTask("broken reference", {}, [{ kind: "image", mimeType: "image/png", localPath: missing }]);
    const { upstreamId } = await provider.submit(task);
    const result = await waitForResult(provider, upstreamId, task);
    expect(result).toMatchObject({ state: "failed", reason: "provider_error" });
    expect(result.state === "failed" && result.message).toMatch(
      /^Simulated render failed: could not read the reference image: .*<file>/,
    );
    expect(result.state === "failed" && result.message).not.toContain(root);
  });
});

describe("SimulatedProvider directives and lifecycle", () => {
  it("parses directives case-insensitively, strips them and clamps the delay", () => {
    expect(parseDirectives("a [SIM:FAIL] b [sim:delay=2.5] c")).toEqual({
      directive: { fail: true, reject: false, delaySeconds: 2.5 },
      text: "a b c",
    });
    expect(parseDirectives("[Sim:Reject]x").directive).toMatchObject({ reject: true, fail: false });
    expect(parseDirectives("[sim:delay=9999]").directive.delaySeconds).toBe(600);
    expect(parseDirectives("[sim:delay=.5] [sim:delay=3]").directive.delaySeconds).toBe(0.5);
    expect(parseDirectives("plain [simulation] prompt").directive).toEqual({
      fail: false,
      reject: false,
      delaySeconds: null,
    });
  });

  it.each([
    { directive: "[sim:fail]", reason: "provider_error", message: "Simulated provider failure ([sim:fail])" },
    { directive: "[SIM:reject]", reason: "content_rejected", message: /sim:reject/ },
  ])("$directive fails after failAfterMs without rendering", async (c) => {
    let clock = 1_000_000;
    const provider = makeProvider({ now: () => clock, failAfterMs: 500 });
    const task = makeTask(`a cat ${c.directive}`);
    const { upstreamId } = await provider.submit(task);
    expect(await provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 500 });
    clock += 499;
    expect((await provider.poll(upstreamId, task)).state).toBe("pending");
    clock += 1;
    const result = await provider.poll(upstreamId, task);
    expect(result).toMatchObject({ state: "failed", reason: c.reason });
    expect(result.state === "failed" && result.message).toMatch(c.message);
    const dir = path.join(root, `work-${dirCounter}`, upstreamId);
    expect(fs.readdirSync(dir)).toEqual(["request.json"]);
  });

  it("[sim:delay=N] is not done before submittedAt + N s", async () => {
    let clock = 5_000_000;
    const provider = makeProvider({ now: () => clock });
    const task = makeTask("slow one [sim:delay=2.5]", { aspect_ratio: "16:9" });
    const { upstreamId } = await provider.submit(task);
    const video = path.join(root, `work-${dirCounter}`, upstreamId, "video.mp4");
    // Let the real render finish while the injected clock stands still.
    while (!fs.existsSync(video)) {
      expect((await provider.poll(upstreamId, task)).state).toBe("pending");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 1000 });
    clock += 2_300;
    expect(await provider.poll(upstreamId, task)).toEqual({ state: "pending", retryAfterMs: 200 });
    clock += 200;
    expect((await provider.poll(upstreamId, task)).state).toBe("succeeded");
  });

  it("re-submitting returns the same id without redoing work", async () => {
    let clock = 7_000_000;
    const provider = makeProvider({ now: () => clock });
    const task = makeTask("same task twice");
    const first = await provider.submit(task);
    const requestFile = path.join(root, `work-${dirCounter}`, first.upstreamId, "request.json");
    const before = fs.readFileSync(requestFile, "utf8");
    clock += 10_000;
    const second = await provider.submit(task);
    expect(second).toEqual(first);
    expect(fs.readFileSync(requestFile, "utf8")).toBe(before);
    mediaPath(await waitForResult(provider, first.upstreamId, task));
  });

  it("a new instance finishes a task whose render never completed (restart recovery)", async () => {
    const workDir = path.join(root, "recovery");
    const first = makeProvider({ workDir, renderConcurrency: 1 });
    const task = makeTask("interrupted render", { sound: "true" });
    const { upstreamId } = await first.submit(task);
    // Simulates the crash: close() kills ffmpeg mid-render and leaves no result behind.
    await first.close();
    const taskDir = path.join(workDir, upstreamId);
    expect(fs.existsSync(path.join(taskDir, "video.mp4"))).toBe(false);
    expect(fs.existsSync(path.join(taskDir, "error.json"))).toBe(false);

    const second = makeProvider({ workDir });
    expect(await second.submit(task)).toEqual({ upstreamId });
    const file = mediaPath(await waitForResult(second, upstreamId, task));
    await expectVideo(file, { ...SIZES["1:1"], duration: 5, sound: true });
  });

  it("release deletes the task; unknown ids are final errors", async () => {
    const provider = makeProvider();
    const task = makeTask("to be released");
    const { upstreamId } = await provider.submit(task);
    await provider.release(upstreamId);
    expect(fs.existsSync(path.join(root, `work-${dirCounter}`, upstreamId))).toBe(false);
    for (const id of [upstreamId, "sim_nope", "../etc"]) {
      const err = await provider.poll(id, task).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ retryable: false, message: "unknown simulated task" });
    }
  });

  it("cancel: pending tasks can be cancelled (their render stops); ended ones cannot", async () => {
    let clock = 9_000_000;
    const provider = makeProvider({ now: () => clock, failAfterMs: 500 });
    const slow = makeTask("cancel me [sim:delay=30]");
    const { upstreamId } = await provider.submit(slow);
    expect(await provider.cancel(upstreamId, slow)).toBe("canceled");
    expect(await provider.cancel(upstreamId, slow)).toBe("canceled");
    const slowVideo = path.join(root, `work-${dirCounter}`, upstreamId, "video.mp4");

    const failing = makeTask("fails [sim:fail]");
    const failed = await provider.submit(failing);
    clock += 500;
    expect((await provider.poll(failed.upstreamId, failing)).state).toBe("failed");
    expect(await provider.cancel(failed.upstreamId, failing)).toBe("not_cancelable");

    const quick = makeTask("done quickly");
    const done = await provider.submit(quick);
    await waitForResult(provider, done.upstreamId, quick);
    expect(await provider.cancel(done.upstreamId, quick)).toBe("not_cancelable");
    // The cancelled task's render (started first, the same size) was stopped: it left no video.
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.existsSync(slowVideo)).toBe(false);
  });

  it("rejects params it cannot render as invalid_input", async () => {
    const provider = makeProvider();
    const cases: Record<string, string>[] = [
      { aspect_ratio: "4:3" },
      { aspect_ratio: "toString" },
      { duration: "abc" },
    ];
    for (const params of cases) {
      await expect(provider.submit(makeTask("x", params))).rejects.toMatchObject({
        retryable: false,
        reason: "invalid_input",
      });
    }
  });
});

describe("SimulatedProvider across worker processes (shared storage)", () => {
  const referencePng = path.join(root, "shared-reference.png");
  beforeAll(() => makeTestPng(referencePng, "320x320"));
  const sharedRoot = () => path.join(root, `shared-${++dirCounter}`);

  it("a task submitted on one worker is finished by another: it waits for the renderer, then gets a storage object", async () => {
    const shared = new FsStorage(sharedRoot());
    const [a, b] = [makeProvider({ shared }), makeProvider({ shared })];
    const task = makeTask("[sim:delay=1] shared between workers", {}, [
      { kind: "image", mimeType: "image/png", localPath: referencePng },
    ]);
    const { upstreamId } = await a.submit(task);
    // The other worker sees the task (request and reference pulled from storage) …
    const result = await waitForResult(b, upstreamId, { ...task, references: [] });
    expect(result).toEqual({
      state: "succeeded",
      media: [{ kind: "storage", key: `simulator/${upstreamId}/video.mp4`, mimeType: "video/mp4" }],
    });
    const published = shared.localPath(`simulator/${upstreamId}/video.mp4`);
    await expectVideo(published, { width: 160, height: 160, duration: 5, sound: false });
    // … and left the render to the worker already doing it: no second video was rendered.
    const bDir = path.join(providerDir(b), upstreamId);
    expect(fs.readdirSync(bDir).sort()).toEqual(["reference", "request.json"]);
    const pulled = JSON.parse(fs.readFileSync(path.join(bDir, "request.json"), "utf8"));
    expect(pulled.spec.referenceImagePath).toBe(path.join(bDir, "reference"));
    expect(fs.readFileSync(path.join(bDir, "reference"))).toEqual(fs.readFileSync(referencePng));

    // Releasing on any worker removes the shared copy.
    await b.release(upstreamId);
    for (const name of ["request.json", "reference", "rendering.json", "video.mp4"]) {
      expect(await shared.stat(`simulator/${upstreamId}/${name}`)).toBeUndefined();
    }
  });

  it("when the renderer died, another worker renders the task itself", async () => {
    const shared = new FsStorage(sharedRoot());
    const dead = makeProvider({ shared });
    const survivor = makeProvider({ shared, renderStaleMs: 0 });
    const task = makeTask("[sim:delay=1] renderer dies", { aspect_ratio: "16:9" });
    const { upstreamId } = await dead.submit(task);
    await dead.close(); // aborts its render: nothing is ever published by it
    const result = await waitForResult(survivor, upstreamId, task);
    expect(result.state).toBe("succeeded");
    await expectVideo(shared.localPath(`simulator/${upstreamId}/video.mp4`), {
      width: 256,
      height: 144,
      duration: 5,
      sound: false,
    });
  });

  it("a failure is reported by every worker", async () => {
    const shared = new FsStorage(sharedRoot());
    const [a, b] = [makeProvider({ shared }), makeProvider({ shared })];
    const task = makeTask("[sim:fail] fails everywhere");
    const { upstreamId } = await a.submit(task);
    expect(await waitForResult(b, upstreamId, task)).toMatchObject({ state: "failed", reason: "provider_error" });
  });
});

describe("SimulatedProvider with render: reuse", () => {
  const wrapperDirs: string[] = [];
  afterAll(() => {
    for (const dir of wrapperDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** An ffmpeg that appends a line to `log` on every start, then runs the real one. */
  function countingFfmpeg(): { ffmpegPath: string; starts: () => number } {
    // Not under `root`: its quotes would need shell escaping.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "framegate-counting-ffmpeg-"));
    wrapperDirs.push(dir);
    const log = path.join(dir, "starts.log");
    const script = path.join(dir, "ffmpeg");
    fs.writeFileSync(script, `#!/bin/sh\necho started >> '${log}'\nexec '${ffmpeg.path}' "$@"\n`, { mode: 0o755 });
    const starts = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0);
    return { ffmpegPath: script, starts };
  }

  it("renders once per shape: later tasks of that shape get a valid MP4 without starting ffmpeg", async () => {
    const counter = countingFfmpeg();
    const provider = makeProvider({ render: "reuse", ffmpegPath: counter.ffmpegPath });
    const first = makeTask("first of its shape", { aspect_ratio: "16:9", sound: "true" });
    const firstFile = mediaPath(await waitForResult(provider, (await provider.submit(first)).upstreamId, first));
    await expectVideo(firstFile, { ...SIZES["16:9"], duration: 5, sound: true });
    expect(counter.starts()).toBe(1);

    const second = makeTask("second of the same shape", { aspect_ratio: "16:9", sound: "true" });
    const secondFile = mediaPath(await waitForResult(provider, (await provider.submit(second)).upstreamId, second));
    await expectVideo(secondFile, { ...SIZES["16:9"], duration: 5, sound: true });
    expect(counter.starts()).toBe(1);
    // Both get the shape's one render (the worker's mirror gives each task a result of its own),
    // and a task without directives keeps no files at all: there is nothing to lose in a crash.
    expect(secondFile).toBe(firstFile);
    expect(fs.readdirSync(providerDir(provider))).toEqual([".templates"]);

    // Another shape (here: a different duration) is a render of its own.
    const longer = makeTask("a longer one", { aspect_ratio: "16:9", sound: "true", duration: "10" });
    const longerFile = mediaPath(await waitForResult(provider, (await provider.submit(longer)).upstreamId, longer));
    await expectVideo(longerFile, { ...SIZES["16:9"], duration: 10, sound: true });
    expect(counter.starts()).toBe(2);

    // Releasing a task leaves the template intact; a new instance (a restart) still finishes it.
    await provider.release(`simr_${first.taskId}`);
    await expectVideo(secondFile, { ...SIZES["16:9"], duration: 5, sound: true });
    const restarted = makeProvider({ render: "reuse", ffmpegPath: counter.ffmpegPath, workDir: providerDir(provider) });
    expect(mediaPath(await waitForResult(restarted, `simr_${second.taskId}`, second))).toBe(secondFile);
    // An id that is not this task's is unknown, as for stored tasks.
    await expect(restarted.poll(`simr_${first.taskId}`, second)).rejects.toMatchObject({ retryable: false });
    expect(counter.starts()).toBe(2);
  });

  it("tasks of a new shape arriving together share one render; a new process reuses the template on disk", async () => {
    const counter = countingFfmpeg();
    const workDir = path.join(root, `reuse-shared-${++dirCounter}`);
    const provider = makeProvider({ render: "reuse", ffmpegPath: counter.ffmpegPath, workDir, renderConcurrency: 4 });
    const tasks = [1, 2, 3].map((i) => makeTask(`together ${i}`, { aspect_ratio: "9:16" }));
    const ids = await Promise.all(tasks.map(async (t) => (await provider.submit(t)).upstreamId));
    for (const [i, task] of tasks.entries()) {
      const file = mediaPath(await waitForResult(provider, ids[i] as string, task));
      await expectVideo(file, { ...SIZES["9:16"], duration: 5, sound: false });
    }
    expect(counter.starts()).toBe(1);

    const restarted = makeProvider({ render: "reuse", ffmpegPath: counter.ffmpegPath, workDir });
    const later = makeTask("after a restart", { aspect_ratio: "9:16" });
    const file = mediaPath(await waitForResult(restarted, (await restarted.submit(later)).upstreamId, later));
    await expectVideo(file, { ...SIZES["9:16"], duration: 5, sound: false });
    expect(counter.starts()).toBe(1);
  });

  it("directives keep working: fail and reject without rendering, delay holds the result back", async () => {
    const counter = countingFfmpeg();
    let clock = 9_000_000;
    const provider = makeProvider({ render: "reuse", ffmpegPath: counter.ffmpegPath, now: () => clock });
    const failing = makeTask("[sim:fail] broken");
    const rejected = makeTask("[sim:reject] not allowed");
    const failingId = (await provider.submit(failing)).upstreamId;
    const rejectedId = (await provider.submit(rejected)).upstreamId;
    clock += 500;
    expect(await provider.poll(failingId, failing)).toMatchObject({ state: "failed", reason: "provider_error" });
    expect(await provider.poll(rejectedId, rejected)).toMatchObject({ state: "failed", reason: "content_rejected" });
    expect(counter.starts()).toBe(0);

    // A task of the same shape first, so the template exists when the delayed task is polled.
    const plain = makeTask("no delay");
    mediaPath(await waitForResult(provider, (await provider.submit(plain)).upstreamId, plain));
    const delayed = makeTask("[sim:delay=3] wait for it");
    const { upstreamId } = await provider.submit(delayed);
    expect(await provider.poll(upstreamId, delayed)).toEqual({ state: "pending", retryAfterMs: 1000 });
    clock += 2_999;
    expect((await provider.poll(upstreamId, delayed)).state).toBe("pending");
    clock += 1;
    const file = mediaPath(await provider.poll(upstreamId, delayed));
    await expectVideo(file, { ...SIZES["1:1"], duration: 5, sound: false });
    expect(counter.starts()).toBe(1);
  });

  it("a template that cannot be rendered fails the task like its own render would", async () => {
    const provider = makeProvider({ render: "reuse", ffmpegPath: path.join(root, "no-such-ffmpeg") });
    const task = makeTask("never rendered");
    const result = await waitForResult(provider, (await provider.submit(task)).upstreamId, task);
    expect(result).toMatchObject({ state: "failed", reason: "provider_error" });
    expect(result.state === "failed" && result.message).toMatch(/^Simulated render failed: could not start ffmpeg/);
  });

  it("publishes the shape's video to shared storage once, for every worker; a release keeps it", async () => {
    const shared = new FsStorage(path.join(root, `shared-${++dirCounter}`));
    const [a, b] = [makeProvider({ shared, render: "reuse" }), makeProvider({ shared, render: "reuse" })];
    const key = `simulator/templates/${SIZES["16:9"].width}x${SIZES["16:9"].height}-8fps-5s-silent.mp4`;
    const tasks = [1, 2].map((i) => makeTask(`reused across workers ${i}`, { aspect_ratio: "16:9" }));
    for (const task of tasks) {
      const { upstreamId } = await a.submit(task);
      expect(await waitForResult(b, upstreamId, task)).toEqual({
        state: "succeeded",
        media: [{ kind: "storage", key, mimeType: "video/mp4" }],
      });
      await b.release(upstreamId);
      expect(await shared.stat(`simulator/${upstreamId}/request.json`)).toBeUndefined();
    }
    await expectVideo(shared.localPath(key), { ...SIZES["16:9"], duration: 5, sound: false });
  });
});

describe("render helpers", () => {
  it("wraps by code points, hard-breaks long words and ellipsizes overflow", () => {
    expect(wrapText("aa bb cc", 5, 3)).toEqual(["aa bb", "cc"]);
    expect(wrapText("abcdefghij", 4, 5)).toEqual(["abcd", "efgh", "ij"]);
    expect(wrapText("🎬🎬🎬 x", 3, 2)).toEqual(["🎬🎬🎬", "x"]);
    expect(wrapText("one two three four", 5, 2)).toEqual(["one", "two…"]);
    expect(wrapText("  \n\t ", 10, 2)).toEqual([]);
  });

  it("findFont prefers an existing explicit path and otherwise searches the system", () => {
    const found = findFont();
    if (found !== null) expect(fs.existsSync(found)).toBe(true);
    expect(findFont(path.join(root, "missing.ttf"))).toBe(found);
  });
});
