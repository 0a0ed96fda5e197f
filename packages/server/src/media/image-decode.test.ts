import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import sharp, { type Sharp } from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureSharp, verifyImageDecodes } from "./image-decode.js";

const LIMITS = { maxPixels: 210_000_000 };
let dir: string;

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A structurally valid RGB PNG whose IDAT holds `idat` (a complete zlib stream) whatever its size. */
function pngWithIdat(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Noise, so that the entropy-coded data is large and spread over the whole file. */
function noise(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  return sharp({
    create: { width, height, channels, background: "#000", noise: { type: "gaussian", mean: 128, sigma: 40 } },
  });
}

async function write(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

beforeAll(async () => {
  configureSharp();
  dir = await mkdtemp(join(tmpdir(), "image-decode-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("verifyImageDecodes", () => {
  it.each([
    ["baseline JPEG", () => noise(640, 480).jpeg({ quality: 85 }), "jpeg"],
    ["progressive JPEG", () => noise(640, 480).jpeg({ progressive: true }), "jpeg"],
    ["PNG with alpha", () => noise(640, 480, 4).png(), "png"],
    ["interlaced 16-bit PNG", () => noise(320, 240).toColourspace("rgb16").png({ progressive: true }), "png"],
    ["lossy WEBP", () => noise(640, 480).webp(), "webp"],
    ["lossless WEBP", () => noise(320, 240).webp({ lossless: true }), "webp"],
  ])("accepts a valid %s with its size", async (_name, make, format) => {
    const path = await write(`valid-${format}-${Math.random()}`, await make().toBuffer());
    const meta = await sharp(path).metadata();
    expect(await verifyImageDecodes(path, LIMITS)).toEqual({
      ok: true,
      format,
      width: meta.width,
      height: meta.height,
      pages: 1,
    });
  });

  it("accepts an animated WEBP and counts its frames", async () => {
    const frames = await Promise.all([0, 1, 2].map(() => noise(64, 48).png().toBuffer()));
    const animated = await sharp(frames, { join: { animated: true } })
      .webp()
      .toBuffer();
    const path = await write("animated.webp", animated);
    expect(await verifyImageDecodes(path, LIMITS)).toEqual({
      ok: true,
      format: "webp",
      width: 64,
      height: 48,
      pages: 3,
    });
  });

  it("refuses a PNG whose header declares 20000×20000 over a tiny IDAT", async () => {
    // The zlib stream itself is valid; it just holds 100 bytes instead of 20000 rows.
    const path = await write("bomb.png", pngWithIdat(20_000, 20_000, deflateSync(Buffer.alloc(100))));
    expect(await verifyImageDecodes(path, { maxPixels: 500_000_000 })).toEqual({
      ok: false,
      message: "The image declares 20000×20000 pixels but its image data is missing or cut off.",
    });
  });

  it("refuses a JPEG cut in the middle of its scan, even with an EOI marker appended", async () => {
    const whole = await noise(800, 600).jpeg({ quality: 90 }).toBuffer();
    const cut = Buffer.concat([whole.subarray(0, Math.floor(whole.length / 2)), Buffer.from([0xff, 0xd9])]);
    const path = await write("cut.jpg", cut);
    expect(await verifyImageDecodes(path, LIMITS)).toEqual({
      ok: false,
      message: "The image declares 800×600 pixels but its image data is missing or cut off.",
    });
    // Without the EOI as well.
    const noEoi = await write("cut-no-eoi.jpg", whole.subarray(0, Math.floor(whole.length / 2)));
    expect(await verifyImageDecodes(noEoi, LIMITS)).toMatchObject({ ok: false });
  });

  it("accepts a JPEG whose only fault is a harmless libjpeg warning (extraneous bytes before a marker)", async () => {
    const whole = await noise(320, 240).jpeg().toBuffer();
    // Stray bytes between the first segment and the next marker; every pixel is still there.
    const firstSegmentEnd = 4 + whole.readUInt16BE(4);
    const padded = Buffer.concat([
      whole.subarray(0, firstSegmentEnd),
      Buffer.from([1, 2, 3, 4]),
      whole.subarray(firstSegmentEnd),
    ]);
    const path = await write("extraneous.jpg", padded);
    expect(await verifyImageDecodes(path, LIMITS)).toMatchObject({ ok: true, width: 320, height: 240 });
  });

  it("refuses a truncated PNG and a truncated WEBP", async () => {
    const png = await noise(400, 300).png().toBuffer();
    const webp = await noise(400, 300).webp().toBuffer();
    for (const [name, bytes] of [
      ["cut.png", png.subarray(0, Math.floor(png.length * 0.6))],
      ["cut.webp", webp.subarray(0, Math.floor(webp.length * 0.6))],
    ] as const) {
      const result = await verifyImageDecodes(await write(name, Buffer.from(bytes)), LIMITS);
      expect(result, name).toMatchObject({ ok: false });
    }
  });

  it("refuses an image with more pixels than allowed before decoding it", async () => {
    const path = await write("big.png", await noise(400, 300).png().toBuffer());
    expect(await verifyImageDecodes(path, { maxPixels: 119_999 })).toEqual({
      ok: false,
      message: "The image has more than 119,999 pixels.",
    });
    expect(await verifyImageDecodes(path, { maxPixels: 120_000 })).toMatchObject({ ok: true });
  });

  it("refuses formats other than JPEG, PNG, WEBP and GIF without decoding them", async () => {
    const path = await write("image.tiff", await noise(64, 64).tiff().toBuffer());
    expect(await verifyImageDecodes(path, LIMITS)).toEqual({
      ok: false,
      message: "The image is not in a supported format.",
    });
  });

  it("never includes the server path in a refusal", async () => {
    const path = await write("garbage.png", Buffer.from("\x89PNG\r\n\x1a\nnot really"));
    const result = await verifyImageDecodes(path, LIMITS);
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain(dir);
  });

  it("throws for a missing file (a server problem, not the client's)", async () => {
    await expect(verifyImageDecodes(join(dir, "missing.png"), LIMITS)).rejects.toThrow();
  });
});
