import { describe, expect, it } from "vitest";
import { copyWith, dir, expectFailure, expectOk, inspect, sniff } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("video", () => {
  const cases = [
    { format: "mp4", width: 64, height: 48, seconds: 1.5, mimeType: "video/mp4" },
    { format: "mp4", width: 320, height: 180, seconds: 2, audio: true, mimeType: "video/mp4" },
    { format: "mp4", width: 96, height: 64, seconds: 2, fragmented: true, mimeType: "video/mp4" },
    { format: "webm", width: 64, height: 48, seconds: 1.5, mimeType: "video/webm" },
    { format: "webm", width: 321, height: 241, seconds: 2.5, audio: true, mimeType: "video/webm" },
    { format: "mov", width: 96, height: 64, seconds: 2, mimeType: "video/quicktime" },
    { format: "mov", width: 160, height: 90, seconds: 1, audio: true, mimeType: "video/quicktime" },
  ] as const;
  it.each(cases)(
    "accepts $format $width x $height, $seconds s (audio $audio, fragmented $fragmented)",
    async (spec) => {
      const file = await media.makeVideo(dir, spec);
      expect(await sniff(file)).toBe(spec.mimeType);
      const result = expectOk(await inspect(file, "video"));
      expect(result).toMatchObject({ mimeType: spec.mimeType, width: spec.width, height: spec.height });
      expect(result.durationSeconds).toBeCloseTo(spec.seconds, 1);
      expect(Math.abs((result.durationSeconds ?? 0) - spec.seconds)).toBeLessThanOrEqual(0.1);
    },
  );

  it.each([0.05, 0.5, 0.95])("refuses an mp4 truncated at %d of its size", async (fraction) => {
    const file = await media.makeVideo(dir, { format: "mp4", width: 160, height: 120, seconds: 2, audio: true });
    await media.truncate(file, Math.floor((await media.fileSize(file)) * fraction));
    expectFailure(await inspect(file, "video"), "validation_failed", /truncated or corrupt \(the MP4 structure/);
  });

  it.each([0.05, 0.5, 0.95])("refuses a webm truncated at %d of its size", async (fraction) => {
    const file = await media.makeVideo(dir, { format: "webm", width: 160, height: 120, seconds: 2, audio: true });
    await media.truncate(file, Math.floor((await media.fileSize(file)) * fraction));
    expectFailure(await inspect(file, "video"), "validation_failed", /truncated or corrupt/);
  });

  it("refuses a container without a video stream as video, and files an audio-only mp4 as audio/mp4", async () => {
    const file = media.uniquePath(dir, "audio-only", "mp4");
    await media.runFfmpeg(["-f", "lavfi", "-i", "sine=f=300", "-t", "1.2", "-c:a", "aac", "-f", "mp4", file]);
    expect(await sniff(file)).toBe("video/mp4"); // ftyp brand isom: the header alone cannot tell
    expectFailure(await inspect(file, "video"), "unsupported_media_type", /^The file \(video\/mp4\) contains no video/);
    const audio = expectOk(await inspect(file, "audio"));
    expect(audio).toMatchObject({ mimeType: "audio/mp4", width: null, height: null });
    expect(audio.durationSeconds).toBeCloseTo(1.2, 1);

    const webm = media.uniquePath(dir, "audio-only", "webm");
    await media.runFfmpeg(["-f", "lavfi", "-i", "sine=f=300", "-t", "1.2", "-c:a", "libvorbis", "-f", "webm", webm]);
    expectFailure(await inspect(webm, "video"), "unsupported_media_type", /contains no video stream/);
    // Audio-only WebM is audio/webm, which the default policy does not list.
    expectFailure(await inspect(webm, "audio"), "unsupported_media_type", /audio\/webm, which is not accepted/);
  });
});

describe("audio", () => {
  const cases = [
    { format: "mp3", mimeType: "audio/mpeg" },
    { format: "wav", mimeType: "audio/wav" },
    { format: "ogg", mimeType: "audio/ogg" },
    { format: "aac", mimeType: "audio/aac" },
    { format: "m4a", mimeType: "audio/mp4" },
  ] as const;
  it.each(cases)("accepts $format as $mimeType with its duration", async ({ format, mimeType }) => {
    for (const seconds of [0.4, 2.5]) {
      const file = await media.makeAudio(dir, { format, seconds });
      expect(await sniff(file)).toBe(mimeType);
      const result = expectOk(await inspect(file, "audio"));
      expect(result).toMatchObject({ mimeType, width: null, height: null });
      expect(Math.abs((result.durationSeconds ?? 0) - seconds)).toBeLessThanOrEqual(0.15);
    }
  });

  it.each(cases)("refuses $format cut in half", async ({ format }) => {
    const file = await media.makeAudio(dir, { format, seconds: 3 });
    await media.truncate(file, Math.floor((await media.fileSize(file)) / 2));
    expectFailure(await inspect(file, "audio"), "validation_failed", /truncated or corrupt/);
  });

  it("looks past an ID3 tag longer than the sniffed head (file-type calls it MP3)", async () => {
    const comment = "x".repeat(6000);
    const aac = media.uniquePath(dir, "id3", "aac");
    const mp3 = media.uniquePath(dir, "id3", "mp3");
    await media.runFfmpeg([
      "-f",
      "lavfi",
      "-i",
      "sine",
      "-t",
      "1",
      "-c:a",
      "aac",
      "-f",
      "adts",
      "-write_id3v2",
      "1",
      "-metadata",
      `comment=${comment}`,
      aac,
    ]);
    await media.runFfmpeg(["-f", "lavfi", "-i", "sine", "-t", "1", "-metadata", `comment=${comment}`, mp3]);
    expect(await sniff(aac)).toBe("audio/mpeg");
    const result = expectOk(await inspect(aac, "audio"));
    expect(result.mimeType).toBe("audio/aac");
    expect(Math.abs((result.durationSeconds ?? 0) - 1)).toBeLessThanOrEqual(0.15);
    expect(expectOk(await inspect(mp3, "audio")).mimeType).toBe("audio/mpeg");
  });

  it("refuses an MP3 header followed by garbage", async () => {
    const file = await media.makeAudio(dir, { format: "mp3", seconds: 1 });
    const garbage = await copyWith(file, (b) => Buffer.concat([b.subarray(0, 64), Buffer.alloc(b.length - 64, 0x5a)]));
    expect(await sniff(garbage)).toBe("audio/mpeg");
    const result = await inspect(garbage, "audio");
    expect(result.ok).toBe(false);
  });
});
