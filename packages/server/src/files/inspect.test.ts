import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { deflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as media from "../../test/fixtures/media.js";
import {
  type FileKind,
  type Inspection,
  inspectFile,
  kindOfMimeType,
  normalizeMimeType,
  parseFfmpegReport,
  SNIFF_BYTES,
  sniffMimeType,
} from "./inspect.js";

/** The default upload policy of api-contract §6. */
const POLICY: Record<FileKind, readonly string[]> = {
  image: ["image/jpeg", "image/png", "image/webp"],
  video: ["video/mp4", "video/quicktime", "video/webm"],
  audio: ["audio/mpeg", "audio/mp4", "audio/wav", "audio/x-wav", "audio/aac", "audio/ogg"],
};

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "inspect-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function inspect(file: string, kind: FileKind, allowed: readonly string[] = POLICY[kind]): Promise<Inspection> {
  return inspectFile(file, { kind, allowedMimeTypes: allowed, ffmpegPath: media.ffmpegPath });
}

async function sniff(file: string): Promise<string | undefined> {
  const fh = await fs.promises.open(file, "r");
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
    return await sniffMimeType(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

function expectOk(result: Inspection): Extract<Inspection, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
  return result;
}

function expectFailure(result: Inspection, code: "validation_failed" | "unsupported_media_type", message: RegExp) {
  if (result.ok) throw new Error(`expected ${code}, got ok: ${JSON.stringify(result)}`);
  expect(result.code).toBe(code);
  expect(result.message).toMatch(message);
  // Client-facing: no server paths, no raw tool output.
  expect(result.message).not.toContain(dir);
  expect(result.message).not.toMatch(/ffmpeg|Lavf|@ 0x/i);
}

async function copyWith(file: string, edit: (bytes: Buffer) => Buffer): Promise<string> {
  const copy = media.uniquePath(dir, "edited", path.extname(file).slice(1));
  fs.writeFileSync(copy, edit(fs.readFileSync(file)));
  return copy;
}

describe("images", () => {
  const valid: {
    format: "png" | "jpeg" | "webp";
    width: number;
    height: number;
    alpha?: boolean;
    lossless?: boolean;
  }[] = [
    { format: "png", width: 1, height: 1 },
    { format: "png", width: 33, height: 17 },
    { format: "png", width: 1280, height: 720 },
    { format: "png", width: 64, height: 40, alpha: true },
    { format: "jpeg", width: 1, height: 1 },
    { format: "jpeg", width: 33, height: 17 },
    { format: "jpeg", width: 1920, height: 1080 },
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

  it("accepts a large noise PNG (the fixture is a valid, decodable PNG over the size asked for)", async () => {
    const file = await media.makeBigImage(dir, 11_000_000);
    expect(await media.fileSize(file)).toBeGreaterThan(11_000_000);
    await media.runFfmpeg(["-i", file, "-f", "null", "-"]); // decodes, or throws
    const result = expectOk(await inspect(file, "image"));
    expect(result.mimeType).toBe("image/png");
    expect(result.width).toBe(1024);
    expect(result.height).toBeGreaterThan(3500);
  });

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

  it("accepts a JPEG whose EXIF block holds a thumbnail with its own SOI/EOI", async () => {
    const file = await media.makeImage(dir, { format: "jpeg", width: 200, height: 100 });
    const thumbnail = fs.readFileSync(await media.makeImage(dir, { format: "jpeg", width: 16, height: 8 }));
    await media.insertJpegSegment(file, 0xe1, Buffer.concat([Buffer.from("Exif\0\0", "latin1"), thumbnail]));
    expect(expectOk(await inspect(file, "image"))).toMatchObject({ width: 200, height: 100 });
  });

  it("accepts harmless metadata and a few padding bytes after the end", async () => {
    const png = await media.makeImage(dir, { format: "png", width: 20, height: 10 });
    await media.insertPngChunk(png, "tEXt", "Software\0Framegate test suite");
    await media.appendBytes(png, Buffer.alloc(16));
    expect(expectOk(await inspect(png, "image"))).toMatchObject({ width: 20, height: 10 });
    const jpeg = await media.makeImage(dir, { format: "jpeg", width: 20, height: 10 });
    await media.insertJpegSegment(jpeg, 0xfe, "made with love, not with <b>markup</b>");
    await media.appendBytes(jpeg, Buffer.alloc(16));
    expect(expectOk(await inspect(jpeg, "image"))).toMatchObject({ width: 20, height: 10 });
  });

  describe("truncated or corrupt", () => {
    const cuts: { format: "png" | "jpeg" | "webp"; keep: (size: number) => number; name: string }[] = [
      { format: "png", name: "inside IHDR", keep: () => 20 },
      { format: "png", name: "after IHDR", keep: () => 33 },
      { format: "png", name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { format: "png", name: "without IEND", keep: (n) => n - 12 },
      { format: "png", name: "last byte missing", keep: (n) => n - 1 },
      { format: "jpeg", name: "inside the headers", keep: () => 30 },
      { format: "jpeg", name: "in the middle", keep: (n) => Math.floor(n / 2) },
      { format: "jpeg", name: "without EOI", keep: (n) => n - 2 },
      { format: "jpeg", name: "last byte missing", keep: (n) => n - 1 },
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

    it("refuses a JPEG with HTML appended", async () => {
      const file = await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 });
      await media.appendBytes(file, "<html><body><script>alert(document.cookie)</script></body></html>");
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /after the end of the JPEG/);
    });

    it("refuses a WEBP with a ZIP appended", async () => {
      const file = await media.makeImage(dir, { format: "webp", width: 64, height: 48 });
      await media.appendBytes(file, media.zipBytes());
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /after the end of the WEBP/);
    });

    it("refuses markup hidden in the few padding bytes after the end", async () => {
      const file = await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 });
      await media.appendBytes(file, "<svg onload=x>");
      expectFailure(await inspect(file, "image"), "unsupported_media_type", /SVG hidden in the data after the image/);
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

describe("sniffMimeType and helpers", () => {
  it("returns undefined for empty or unknown input and only looks at the first SNIFF_BYTES", async () => {
    expect(await sniffMimeType(new Uint8Array(0))).toBeUndefined();
    expect(await sniffMimeType(Buffer.from("hello"))).toBeUndefined();
    const png = fs.readFileSync(await media.makeImage(dir, { format: "png", width: 8, height: 8 }));
    expect(await sniffMimeType(Buffer.concat([png, Buffer.alloc(10 * SNIFF_BYTES)]))).toBe("image/png");
  });

  it("normalizes MIME spellings to the API's names", () => {
    expect(normalizeMimeType("audio/x-wav")).toBe("audio/wav");
    expect(normalizeMimeType("audio/x-m4a")).toBe("audio/mp4");
    expect(normalizeMimeType("audio/ogg; codecs=opus")).toBe("audio/ogg");
    expect(normalizeMimeType("image/apng")).toBe("image/png");
    expect(normalizeMimeType("Image/JPEG")).toBe("image/jpeg");
    expect(kindOfMimeType("audio/x-wav")).toBe("audio");
    expect(kindOfMimeType("application/pdf")).toBeUndefined();
  });

  it("parses ffmpeg 4 reports", () => {
    const report = parseFfmpegReport(
      [
        "[mp3 @ 0x1234] Estimating duration from bitrate, this may be inaccurate",
        "Input #0, mp3, from 'file:/srv/x.mp3':",
        "  Duration: N/A, start: 0.025057, bitrate: N/A",
        "    Stream #0:0: Audio: mp3, 44100 Hz, stereo, fltp, 128 kb/s",
        "    Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc), 500x500 [SAR 1:1 DAR 1:1], 90k tbr (attached pic)",
        "Output #0, null, to 'pipe:':",
        "    Stream #0:0: Video: h264 (avc1 / 0x31637661), yuv420p, 10x10",
        "size=N/A time=00:00:01.00 bitrate=N/A\rsize=N/A time=00:01:02.50 bitrate=N/A speed=1e+04x",
      ].join("\n"),
    );
    expect(report).toEqual({
      opened: true,
      headerSeconds: null,
      estimated: true,
      demuxedSeconds: 62.5,
      hasVideo: false,
      hasAudio: true,
      width: 0,
      height: 0,
      fatal: false,
    });
    const video = parseFfmpegReport(
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x':\n  Duration: 01:00:00.50, start: 0.000000, bitrate: 17 kb/s\n" +
        "    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1280x720 [SAR 1:1 DAR 16:9], 24 fps\n",
    );
    expect(video).toMatchObject({ headerSeconds: 3600.5, hasVideo: true, width: 1280, height: 720 });
    expect(parseFfmpegReport("x.webm: Invalid data found when processing input")).toMatchObject({
      opened: false,
      fatal: true,
    });
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
