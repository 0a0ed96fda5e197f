import { describe, expect, it } from "vitest";
import { dir, expectFailure, expectOk, inspect, sniff } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("other image types (GIF, BMP)", () => {
  it.each(["gif", "bmp"] as const)("refuses %s under the image policy, listing the allowed types", async (format) => {
    const file = await media.makeImage(dir, { format, width: 32, height: 24 });
    expect(await sniff(file)).toBe(`image/${format}`);
    expectFailure(
      await inspect(file, "image"),
      "unsupported_media_type",
      new RegExp(`image/${format}.*allowed: image/jpeg, image/png, image/webp`),
    );
  });

  it("measures GIF and BMP with ffmpeg when a policy accepts them", async () => {
    for (const format of ["gif", "bmp"] as const) {
      const file = await media.makeImage(dir, { format, width: 31, height: 21 });
      const result = expectOk(await inspect(file, "image", [`image/${format}`]));
      expect(result).toMatchObject({ mimeType: `image/${format}`, width: 31, height: 21, durationSeconds: null });
    }
  });
});
