import { describe, expect, it } from "vitest";
import { dir, expectFailure, expectOk, inspect, sniff } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("WEBP", () => {
  const valid: { format: "webp"; width: number; height: number; alpha?: boolean; lossless?: boolean }[] = [
    { format: "webp", width: 1, height: 1 },
    { format: "webp", width: 63, height: 41 },
    { format: "webp", width: 1024, height: 768 },
    { format: "webp", width: 63, height: 41, alpha: true },
    { format: "webp", width: 63, height: 41, lossless: true },
  ];
  it.each(valid)("accepts $format $width x $height (alpha $alpha, lossless $lossless)", async (spec) => {
    const file = await media.makeImage(dir, spec);
    const mimeType = `image/${spec.format}`;
    expect(await sniff(file)).toBe(mimeType);
    expect(expectOk(await inspect(file, "image"))).toEqual({
      ok: true,
      mimeType,
      width: spec.width,
      height: spec.height,
      durationSeconds: null,
    });
  });

  describe("truncated or corrupt", () => {
    const cuts: { format: "webp"; keep: (size: number) => number; name: string }[] = [
      { format: "webp", name: "after the RIFF header", keep: () => 12 },
      { format: "webp", name: "inside the VP8 header", keep: () => 24 },
      { format: "webp", name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { format: "webp", name: "last byte missing", keep: (n) => n - 1 },
    ];
    it.each(cuts)("refuses $format cut $name", async ({ format, keep }) => {
      // Noisy content so the image data is not trivially small.
      const file = await media.makeImage(dir, { format, width: 160, height: 120, color: "#a1b2c3" });
      await media.truncate(file, keep(await media.fileSize(file)));
      expect(await sniff(file)).toBe(`image/${format}`);
      expectFailure(await inspect(file, "image"), "validation_failed", /^The file is truncated or corrupt \(.+\)\.$/);
    });
  });

  describe("polyglots", () => {
    it("refuses a WEBP with a ZIP appended", async () => {
      const file = await media.makeImage(dir, { format: "webp", width: 64, height: 48 });
      await media.appendBytes(file, media.zipBytes());
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /after the end of the WEBP/);
    });
  });
});
