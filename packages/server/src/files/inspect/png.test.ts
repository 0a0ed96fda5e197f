import fs from "node:fs";
import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  copyWith,
  dir,
  expectFailure,
  expectOk,
  inspect,
  itAcceptsImages,
  itRefusesCuts,
  sniff,
} from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";

describe("PNG", () => {
  itAcceptsImages([
    { format: "png", width: 1, height: 1 },
    { format: "png", width: 33, height: 17 },
    { format: "png", width: 1280, height: 720 },
    { format: "png", width: 64, height: 40, alpha: true },
  ]);

  it("accepts a large noise PNG (the fixture is a valid, decodable PNG over the size asked for)", async () => {
    const file = await media.makeBigImage(dir, 11_000_000);
    expect(await media.fileSize(file)).toBeGreaterThan(11_000_000);
    await media.runFfmpeg(["-i", file, "-f", "null", "-"]); // decodes, or throws
    const result = expectOk(await inspect(file, "image"));
    expect(result.mimeType).toBe("image/png");
    expect(result.width).toBe(1024);
    expect(result.height).toBeGreaterThan(3500);
  });

  it("accepts harmless metadata and a few padding bytes after the end", async () => {
    const png = await media.makeImage(dir, { format: "png", width: 20, height: 10 });
    await media.insertPngChunk(png, "tEXt", "Software\0Framegate test suite");
    await media.appendBytes(png, Buffer.alloc(16));
    expect(expectOk(await inspect(png, "image"))).toMatchObject({ width: 20, height: 10 });
  });

  describe("truncated or corrupt", () => {
    itRefusesCuts("png", [
      { name: "inside IHDR", keep: () => 20 },
      { name: "after IHDR", keep: () => 33 },
      { name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { name: "without IEND", keep: (n) => n - 12 },
      { name: "last byte missing", keep: (n) => n - 1 },
    ]);

    it("refuses a PNG with a damaged IDAT (checksum) and one whose first chunk is not IHDR", async () => {
      const png = await media.makeImage(dir, { format: "png", width: 40, height: 30 });
      const idat = fs.readFileSync(png).indexOf("IDAT");
      const damaged = await copyWith(png, (b) => {
        b[idat + 6] = (b[idat + 6] as number) ^ 0xff;
        return b;
      });
      expectFailure(await inspect(damaged, "image"), "validation_failed", /IDAT has a bad checksum/);
      const noHeader = await copyWith(png, (b) =>
        // file-type wants IHDR first too, except that it accepts an IDAT before anything else.
        Buffer.concat([b.subarray(0, 8), media.pngChunk("IDAT", Buffer.alloc(0)), b.subarray(8)]),
      );
      expect(await sniff(noHeader)).toBe("image/png");
      expectFailure(await inspect(noHeader, "image"), "validation_failed", /does not start with an IHDR/);
    });

    it("refuses zero width or height", async () => {
      const png = await media.makeImage(dir, { format: "png", width: 4, height: 4 });
      const zero = await copyWith(png, (b) => {
        const ihdr = Buffer.from(b.subarray(16, 29));
        ihdr.writeUInt32BE(0, 0);
        return Buffer.concat([b.subarray(0, 8), media.pngChunk("IHDR", ihdr), b.subarray(33)]);
      });
      expectFailure(await inspect(zero, "image"), "validation_failed", /zero width or height/);
    });
  });

  describe("polyglots", () => {
    it("refuses a PNG with a ZIP appended", async () => {
      const file = await media.makeImage(dir, { format: "png", width: 64, height: 48 });
      await media.appendBytes(file, media.zipBytes({ "evil.php": "<?php system($_GET['c']); ?>" }));
      expectFailure(
        await inspect(file, "image"),
        "unsupported_media_type",
        /bytes of extra data after the end of the PNG/,
      );
    });

    it.each([
      ["tEXt", "Comment\0<script>alert(1)</script>", /a script hidden in a PNG tEXt chunk/],
      ["tEXt", "Comment\0<HTML><body>hi", /HTML hidden in a PNG tEXt chunk/],
      ["iTXt", "XML:com.adobe.xmp\0\0\0\0\0<svg xmlns='http://www.w3.org/2000/svg'/>", /SVG hidden in a PNG iTXt/],
      ["prVt", "%PDF-1.7\n1 0 obj", /a PDF document hidden in a PNG prVt chunk/],
    ] as const)("refuses a PNG with a %s chunk holding markup (%#)", async (type, text, message) => {
      const file = await media.makeImage(dir, { format: "png", width: 16, height: 16 });
      await media.insertPngChunk(file, type, text);
      expectFailure(await inspect(file, "image"), "unsupported_media_type", message);
    });

    it("refuses PHP in a compressed zTXt chunk (checked after inflating)", async () => {
      const file = await media.makeImage(dir, { format: "png", width: 16, height: 16 });
      const payload = Buffer.concat([
        Buffer.from("Comment\0\0", "latin1"),
        deflateSync(Buffer.from("<?PHP echo 'hi'; ?>")),
      ]);
      expect(payload.includes("<?PHP")).toBe(false);
      await media.insertPngChunk(file, "zTXt", payload);
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /PHP code hidden in a PNG zTXt chunk/);
    });

    it("refuses a ZIP hidden in a private PNG chunk (where unzip finds it, near the end)", async () => {
      const file = await media.makeImage(dir, { format: "png", width: 16, height: 16 });
      await media.insertPngChunk(file, "zipP", media.zipBytes());
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /a ZIP archive hidden in a PNG zipP chunk/);
    });
  });
});
