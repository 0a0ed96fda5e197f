import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { dir, expectFailure, expectOk, inspect, POLICY, sniff } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";
import { inspectFile } from "./index.js";

describe("type checks", () => {
  it("refuses an empty file", async () => {
    const file = await media.makeEmptyFile(dir);
    expect(await sniff(file)).toBeUndefined();
    for (const kind of ["image", "video", "audio"] as const) {
      expect(await inspect(file, kind)).toEqual({
        ok: false,
        code: "validation_failed",
        message: "The file is empty.",
      });
    }
  });

  it.each([
    ["plain text", "just some words\n"],
    ["HTML", "<!doctype html><html><body>hello</body></html>"],
    ["JSON", '{"not": "an image"}'],
  ])("refuses %s as unrecognised", async (_name, text) => {
    const file = await media.makeTextFile(dir, text);
    expect(await sniff(file)).toBeUndefined();
    expectFailure(
      await inspect(file, "image"),
      "unsupported_media_type",
      /^Could not recognise the file's type from its contents; allowed: image\/jpeg, image\/png, image\/webp\.$/,
    );
  });

  it("refuses a declared kind that does not match the contents, naming both", async () => {
    const png = await media.makeImage(dir, { format: "png", width: 8, height: 8 });
    expectFailure(await inspect(png, "video"), "unsupported_media_type", /image\/png \(an image\).*kind "video"/);
    const wav = await media.makeAudio(dir, { format: "wav", seconds: 0.5 });
    expectFailure(await inspect(wav, "image"), "unsupported_media_type", /audio\/wav \(an audio file\).*kind "image"/);
    const mp4 = await media.makeVideo(dir, { format: "mp4", width: 32, height: 32, seconds: 0.5, audio: true });
    expectFailure(await inspect(mp4, "audio"), "unsupported_media_type", /video\/mp4 \(a video\).*kind "audio"/);
    const svg = await media.makeTextFile(dir, '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "svg");
    expectFailure(await inspect(svg, "image"), "unsupported_media_type", /application\/xml.*kind "image"/);
  });

  it("understands aliases in the allowed list (audio/x-wav accepts WAV)", async () => {
    const wav = await media.makeAudio(dir, { format: "wav", seconds: 0.5 });
    expect(expectOk(await inspect(wav, "audio", ["audio/x-wav"])).mimeType).toBe("audio/wav");
    expectFailure(await inspect(wav, "audio", ["audio/mpeg"]), "unsupported_media_type", /allowed: audio\/mpeg\.$/);
  });
});

describe("process handling", () => {
  it("rejects with AbortError when the signal is already aborted", async () => {
    const file = await media.makeImage(dir, { format: "png", width: 8, height: 8 });
    const signal = AbortSignal.abort();
    await expect(
      inspectFile(file, { kind: "image", allowedMimeTypes: POLICY.image, ffmpegPath: media.ffmpegPath, signal }),
    ).rejects.toMatchObject({ name: "AbortError" });
  });

  it("kills ffmpeg on abort, and reports a timeout as validation_failed", async () => {
    const slow = path.join(dir, "slow-ffmpeg.sh");
    fs.writeFileSync(slow, "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
    const file = await media.makeAudio(dir, { format: "ogg", seconds: 0.5 });
    const controller = new AbortController();
    const started = Date.now();
    const pending = inspectFile(file, {
      kind: "audio",
      allowedMimeTypes: POLICY.audio,
      ffmpegPath: slow,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    const timedOut = await inspectFile(file, {
      kind: "audio",
      allowedMimeTypes: POLICY.audio,
      ffmpegPath: slow,
      ffmpegTimeoutMs: 200,
    });
    expectFailure(timedOut, "validation_failed", /could not be analysed within 0.2 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("throws (a server problem, not a client error) when ffmpeg cannot be started", async () => {
    const file = await media.makeAudio(dir, { format: "wav", seconds: 0.2 });
    await expect(
      inspectFile(file, { kind: "audio", allowedMimeTypes: POLICY.audio, ffmpegPath: path.join(dir, "no-ffmpeg") }),
    ).rejects.toThrow(/could not start ffmpeg/);
  });
});

describe("fixtures", () => {
  it("meanColor reads back the colour of a generated video and image", async () => {
    const color = "#cc3322";
    const expected = media.hexToRgb(color);
    const video = await media.makeVideo(dir, { format: "mp4", width: 64, height: 64, seconds: 1, color });
    const image = await media.makeImage(dir, { format: "png", width: 10, height: 10, color });
    for (const [file, at] of [
      [video, 0.5],
      [image, 0],
    ] as const) {
      const mean = await media.meanColor(dir, file, at);
      for (const channel of ["r", "g", "b"] as const)
        expect(Math.abs(mean[channel] - expected[channel])).toBeLessThan(8);
    }
  });
});
