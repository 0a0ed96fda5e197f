/**
 * Real files of ordinary sizes from real encoders (ffmpeg and libvips through sharp) must pass
 * every structural cap and limit; animated WEBP is the one ordinary file refused, with a clear
 * message.
 */
import fs from "node:fs";
import sharp, { type Metadata, type Sharp } from "sharp";
import { describe, expect, it } from "vitest";
import { dir, expectFailure, expectOk, inspect } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";
import type { FileKind } from "./index.js";

/** A noisy RGB(A) picture, so encoders produce realistic amounts of data. */
function noise(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  return sharp({
    create: {
      width,
      height,
      channels,
      background: { r: 90, g: 120, b: 200, alpha: channels === 4 ? 0.5 : 1 },
      noise: { type: "gaussian", mean: 128, sigma: 40 },
    },
  });
}

async function save(stem: string, ext: string, image: Sharp | Promise<Buffer>): Promise<string> {
  const file = media.uniquePath(dir, stem, ext);
  fs.writeFileSync(file, image instanceof Promise ? await image : await image.toBuffer());
  return file;
}

async function ffmpegImage(stem: string, ext: string, args: string[]): Promise<string> {
  const file = media.uniquePath(dir, stem, ext);
  await media.runFfmpeg([...args, file]);
  return file;
}

interface RealFile {
  name: string;
  kind: FileKind;
  make: () => Promise<string>;
  mimeType: string;
  width: number;
  height: number;
  /** What libvips reads back, to show the encoder wrote the variant the row names. */
  meta?: Partial<Metadata>;
}

const testsrc = (size: string) => ["-f", "lavfi", "-i", `testsrc2=s=${size}`, "-frames:v", "1"];

const REAL_FILES: RealFile[] = [
  {
    name: "baseline JPEG from ffmpeg",
    kind: "image",
    make: () => ffmpegImage("baseline", "jpg", [...testsrc("1920x1080"), "-q:v", "3"]),
    mimeType: "image/jpeg",
    width: 1920,
    height: 1080,
  },
  {
    name: "progressive JPEG (sharp)",
    kind: "image",
    make: () => save("progressive", "jpg", noise(1600, 1200).jpeg({ progressive: true, quality: 85 })),
    mimeType: "image/jpeg",
    width: 1600,
    height: 1200,
    meta: { isProgressive: true },
  },
  {
    name: "progressive JPEG with optimised scans (mozjpeg settings)",
    kind: "image",
    make: () => save("mozjpeg", "jpg", noise(800, 600).jpeg({ mozjpeg: true })),
    mimeType: "image/jpeg",
    width: 800,
    height: 600,
    meta: { isProgressive: true },
  },
  {
    name: "JPEG with EXIF and an ICC profile",
    kind: "image",
    make: () =>
      save(
        "exif-icc",
        "jpg",
        noise(1200, 900)
          .withExif({ IFD0: { Make: "Framegate", Model: "Test Camera", Copyright: "nobody" } })
          .withIccProfile("p3")
          .jpeg({ quality: 90 }),
      ),
    mimeType: "image/jpeg",
    width: 1200,
    height: 900,
    meta: { hasProfile: true },
  },
  {
    name: "phone-sized 4032×3024 JPEG with EXIF",
    kind: "image",
    make: async () =>
      save(
        "phone",
        "jpg",
        sharp(await media.runFfmpeg([...testsrc("4032x3024"), "-c:v", "png", "-f", "image2pipe", "pipe:1"]))
          .withExif({ IFD0: { Make: "Phone", Model: "12 MP" } })
          .jpeg({ quality: 92 }),
      ),
    mimeType: "image/jpeg",
    width: 4032,
    height: 3024,
  },
  {
    name: "8-bit RGB PNG from ffmpeg",
    kind: "image",
    make: () => ffmpegImage("rgb24", "png", [...testsrc("1280x720"), "-pix_fmt", "rgb24"]),
    mimeType: "image/png",
    width: 1280,
    height: 720,
  },
  {
    name: "16-bit RGB PNG from ffmpeg",
    kind: "image",
    make: () => ffmpegImage("rgb48", "png", [...testsrc("640x480"), "-pix_fmt", "rgb48be"]),
    mimeType: "image/png",
    width: 640,
    height: 480,
    meta: { depth: "ushort" },
  },
  {
    name: "16-bit RGBA PNG (sharp)",
    kind: "image",
    make: () => save("rgba64", "png", noise(500, 400, 4).toColourspace("rgb16").png()),
    mimeType: "image/png",
    width: 500,
    height: 400,
    meta: { depth: "ushort", channels: 4 },
  },
  {
    name: "palette PNG (sharp)",
    kind: "image",
    make: () => save("palette", "png", noise(320, 240).png({ palette: true })),
    mimeType: "image/png",
    width: 320,
    height: 240,
    meta: { isPalette: true },
  },
  {
    name: "interlaced PNG (sharp)",
    kind: "image",
    make: () => save("interlaced", "png", noise(641, 479, 4).png({ progressive: true })),
    mimeType: "image/png",
    width: 641,
    height: 479,
    meta: { isProgressive: true },
  },
  {
    name: "APNG from ffmpeg (accepted as PNG: its default image is a valid PNG)",
    kind: "image",
    make: () =>
      ffmpegImage("anim", "png", [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=10",
        "-t",
        "1",
        "-plays",
        "0",
        "-f",
        "apng",
      ]),
    mimeType: "image/png",
    width: 160,
    height: 120,
  },
  {
    name: "lossy WEBP (sharp)",
    kind: "image",
    make: () => save("lossy", "webp", noise(1024, 768).webp({ quality: 80 })),
    mimeType: "image/webp",
    width: 1024,
    height: 768,
  },
  {
    name: "lossless WEBP (sharp)",
    kind: "image",
    make: () => save("lossless", "webp", noise(400, 300).webp({ lossless: true })),
    mimeType: "image/webp",
    width: 400,
    height: 300,
    meta: { format: "webp" },
  },
  {
    name: "WEBP with alpha and an ICC profile (sharp)",
    kind: "image",
    make: () => save("alpha", "webp", noise(333, 222, 4).withIccProfile("p3").webp({ quality: 75 })),
    mimeType: "image/webp",
    width: 333,
    height: 222,
    meta: { hasAlpha: true, hasProfile: true },
  },
  {
    name: "H.264 MP4",
    kind: "video",
    make: () => media.makeVideo(dir, { format: "mp4", width: 640, height: 360, seconds: 2, audio: true }),
    mimeType: "video/mp4",
    width: 640,
    height: 360,
  },
  {
    name: "fragmented MP4 (frag_keyframe+empty_moov)",
    kind: "video",
    make: () => media.makeVideo(dir, { format: "mp4", width: 320, height: 240, seconds: 2, fragmented: true, fps: 24 }),
    mimeType: "video/mp4",
    width: 320,
    height: 240,
  },
  {
    name: "MOV",
    kind: "video",
    make: () => media.makeVideo(dir, { format: "mov", width: 480, height: 270, seconds: 1, audio: true }),
    mimeType: "video/quicktime",
    width: 480,
    height: 270,
  },
];

describe("real files pass", () => {
  it.each(REAL_FILES)("$name", async ({ kind, make, mimeType, width, height, meta }) => {
    const file = await make();
    if (meta) expect(await sharp(file).metadata()).toMatchObject(meta);
    const started = performance.now();
    const result = expectOk(await inspect(file, kind));
    const ms = performance.now() - started;
    console.log(`${mimeType} ${width}×${height}, ${(fs.statSync(file).size / 1e6).toFixed(2)} MB: ${ms.toFixed(0)} ms`);
    expect(result).toMatchObject({ mimeType, width, height });
  });
});

describe("animated WEBP is refused clearly", () => {
  const message = /^Animated WEBP images are not accepted; upload a still image \(JPEG, PNG or still WEBP\)\.$/;

  it("as written by libwebp (sharp joining frames into an animation)", async () => {
    const frames = await Promise.all(
      ["#cc3322", "#22cc33", "#3322cc"].map((background) =>
        sharp({ create: { width: 64, height: 48, channels: 3, background } })
          .png()
          .toBuffer(),
      ),
    );
    const file = await save("animated", "webp", sharp(frames, { join: { animated: true } }).webp({ loop: 0 }));
    expect((await sharp(file).metadata()).pages).toBe(3);
    expectFailure(await inspect(file, "image"), "validation_failed", message);
  });

  it("when an ANIM chunk appears without the VP8X animation flag", async () => {
    const still = fs.readFileSync(await media.makeImage(dir, { format: "webp", width: 32, height: 32 }));
    const anim = Buffer.concat([Buffer.from("ANIM", "latin1"), Buffer.from([6, 0, 0, 0]), Buffer.alloc(6)]);
    const crafted = Buffer.concat([still, anim]);
    crafted.writeUInt32LE(crafted.length - 8, 4);
    const file = media.uniquePath(dir, "anim-chunk", "webp");
    fs.writeFileSync(file, crafted);
    expectFailure(await inspect(file, "image"), "validation_failed", message);
  });
});
