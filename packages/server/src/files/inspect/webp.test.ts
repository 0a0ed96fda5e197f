import { describe, it } from "vitest";
import { dir, expectFailure, inspect, itAcceptsImages, itRefusesCuts } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("WEBP", () => {
  itAcceptsImages([
    { format: "webp", width: 1, height: 1 },
    { format: "webp", width: 63, height: 41 },
    { format: "webp", width: 1024, height: 768 },
    { format: "webp", width: 63, height: 41, alpha: true },
    { format: "webp", width: 63, height: 41, lossless: true },
  ]);

  describe("truncated or corrupt", () => {
    itRefusesCuts("webp", [
      { name: "after the RIFF header", keep: () => 12 },
      { name: "inside the VP8 header", keep: () => 24 },
      { name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { name: "last byte missing", keep: (n) => n - 1 },
    ]);
  });

  describe("polyglots", () => {
    it("refuses a WEBP with a ZIP appended", async () => {
      const file = await media.makeImage(dir, { format: "webp", width: 64, height: 48 });
      await media.appendBytes(file, media.zipBytes());
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /after the end of the WEBP/);
    });
  });
});
