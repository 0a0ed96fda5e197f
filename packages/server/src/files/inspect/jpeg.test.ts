import fs from "node:fs";
import { describe, expect, it } from "vitest";
import {
  dir,
  expectFailure,
  expectOk,
  inspect,
  itAcceptsImages,
  itRefusesCuts,
} from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("JPEG", () => {
  itAcceptsImages([
    { format: "jpeg", width: 1, height: 1 },
    { format: "jpeg", width: 33, height: 17 },
    { format: "jpeg", width: 1920, height: 1080 },
  ]);

  it("accepts a JPEG whose EXIF block holds a thumbnail with its own SOI/EOI", async () => {
    const file = await media.makeImage(dir, { format: "jpeg", width: 200, height: 100 });
    const thumbnail = fs.readFileSync(await media.makeImage(dir, { format: "jpeg", width: 16, height: 8 }));
    await media.insertJpegSegment(file, 0xe1, Buffer.concat([Buffer.from("Exif\0\0", "latin1"), thumbnail]));
    expect(expectOk(await inspect(file, "image"))).toMatchObject({ width: 200, height: 100 });
  });

  it("accepts harmless metadata and a few padding bytes after the end", async () => {
    const jpeg = await media.makeImage(dir, { format: "jpeg", width: 20, height: 10 });
    await media.insertJpegSegment(jpeg, 0xfe, "made with love, not with <b>markup</b>");
    await media.appendBytes(jpeg, Buffer.alloc(16));
    expect(expectOk(await inspect(jpeg, "image"))).toMatchObject({ width: 20, height: 10 });
  });

  describe("truncated or corrupt", () => {
    itRefusesCuts("jpeg", [
      { name: "inside the headers", keep: () => 30 },
      { name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { name: "without EOI", keep: (n) => n - 2 },
      { name: "last byte missing", keep: (n) => n - 1 },
    ]);
  });

  describe("polyglots", () => {
    it("refuses a JPEG with HTML appended", async () => {
      const file = await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 });
      await media.appendBytes(file, "<html><body><script>alert(document.cookie)</script></body></html>");
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /after the end of the JPEG/);
    });

    it("refuses markup hidden in the few padding bytes after the end", async () => {
      const file = await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 });
      await media.appendBytes(file, "<svg onload=x>");
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /SVG hidden in the data after the image/);
    });

    it("refuses PHP in a JPEG comment and HTML in a JPEG APP segment", async () => {
      const com = await media.makeImage(dir, { format: "jpeg", width: 16, height: 16 });
      await media.insertJpegSegment(com, 0xfe, "<?php echo 1; ?>");
      expectFailure(await inspect(com, "image"), "unsupported_media_type", /PHP code hidden in a JPEG comment/);
      const app = await media.makeImage(dir, { format: "jpeg", width: 16, height: 16 });
      await media.insertJpegSegment(app, 0xec, "Ducky <!DOCTYPE html><title>x</title>");
      expectFailure(await inspect(app, "image"), "unsupported_media_type", /HTML hidden in a JPEG APP12 segment/);
    });
  });
});
