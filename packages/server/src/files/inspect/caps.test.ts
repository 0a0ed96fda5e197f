/**
 * Structural caps and pixel limits: crafted files that cost seconds of CPU before the caps
 * existed are refused as "too complex", files exactly at each cap still pass, and images past the
 * pixel limits (or with too little pixel data for their size) are refused at the header.
 */
import fs from "node:fs";
import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { craftJpegSegmentBomb, craftMp4BoxBomb, craftPngChunkBomb } from "../../../test/fixtures/crafted.js";
import { dir, expectFailure, expectOk, inspect, POLICY } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";
import { type FileKind, inspectFile } from "./index.js";
import {
  DEFAULT_MAX_IMAGE_PIXELS,
  DEFAULT_MAX_IMAGE_SIDE,
  type ImageLimits,
  MAX_JPEG_SCANS,
  MAX_JPEG_SEGMENTS,
  MAX_JPEG_SEGMENTS_BEFORE_SCAN,
  MAX_MP4_TOP_LEVEL_BOXES,
  MAX_PNG_ANCILLARY_CHUNKS,
  MAX_PNG_CHUNKS,
  MAX_WEBP_CHUNKS,
} from "./limits.js";

const TOO_COMPLEX = /^The file's structure is too complex to inspect: /;

function write(stem: string, ext: string, bytes: Buffer): string {
  const file = media.uniquePath(dir, stem, ext);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Inspects and logs how long it took (a measurement, not an assertion). */
async function timed(label: string, file: string, kind: FileKind) {
  const started = performance.now();
  const result = await inspect(file, kind);
  const ms = performance.now() - started;
  console.log(`${label}: ${(fs.statSync(file).size / 1e6).toFixed(1)} MB inspected in ${ms.toFixed(0)} ms`);
  return result;
}

function withLimits(file: string, limits: ImageLimits) {
  return inspectFile(file, { kind: "image", allowedMimeTypes: POLICY.image, ffmpegPath: media.ffmpegPath, limits });
}

// --- PNG helpers ---------------------------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface PngChunk {
  type: string;
  /** The whole chunk: length, type, data, CRC. */
  bytes: Buffer;
}

function pngChunks(png: Buffer): PngChunk[] {
  const chunks: PngChunk[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    chunks.push({ type: png.toString("latin1", at + 4, at + 8), bytes: png.subarray(at, at + 12 + length) });
    at += 12 + length;
  }
  return chunks;
}

/** Rebuilds a PNG with `extra` inserted right after IHDR. */
function pngWith(png: Buffer, extra: Buffer[]): Buffer {
  const [ihdr, ...rest] = pngChunks(png);
  return Buffer.concat([PNG_SIGNATURE, (ihdr as PngChunk).bytes, ...extra, ...rest.map((c) => c.bytes)]);
}

/** A hand-made PNG: IHDR, one IDAT holding `raw` deflated, IEND. */
function makePng(width: number, height: number, colorType: number, bitDepth: number, raw: Buffer, level = 9) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  return Buffer.concat([
    PNG_SIGNATURE,
    media.pngChunk("IHDR", ihdr),
    media.pngChunk("IDAT", deflateSync(raw, { level })),
    media.pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** All-zero 1-bit greyscale scanlines (the smallest raw data for a size). */
function blankRows(width: number, height: number): Buffer {
  return Buffer.alloc(height * (1 + Math.ceil(width / 8)));
}

const PNG_IMAGE_CHUNKS = new Set(["IHDR", "PLTE", "IDAT", "IEND", "fdAT", "fcTL", "acTL"]);

// --- JPEG helpers ---------------------------------------------------------------------------------

/** Offset of the first SOS marker and the number of markers from SOI (excluded) to it (included). */
function jpegHead(jpeg: Buffer): { sosAt: number; markers: number } {
  let markers = 0;
  for (let at = 2; ; ) {
    const code = jpeg[at + 1] as number;
    markers++;
    if (code === 0xda) return { sosAt: at, markers };
    at += 2 + jpeg.readUInt16BE(at + 2);
  }
}

/** `count` empty APP5 segments (FF E5 00 02): the cheapest marker segment there is. */
function emptyApp5(count: number): Buffer {
  return Buffer.alloc(count * 4).fill(Buffer.from([0xff, 0xe5, 0x00, 0x02]));
}

function emptyComments(count: number): Buffer {
  return Buffer.alloc(count * 4).fill(Buffer.from([0xff, 0xfe, 0x00, 0x02]));
}

// --- WEBP and MP4 helpers ----------------------------------------------------------------------------

/** A WEBP with `count` empty private chunks appended (RIFF size updated). */
function webpWith(webp: Buffer, count: number): Buffer {
  const extra = Buffer.alloc(8 * count).fill(Buffer.from("XTRA\0\0\0\0", "latin1"));
  const out = Buffer.concat([webp, extra]);
  out.writeUInt32LE(out.length - 8, 4);
  return out;
}

function mp4Boxes(mp4: Buffer): { type: string; start: number; end: number }[] {
  const boxes = [];
  for (let at = 0; at < mp4.length; ) {
    const size = mp4.readUInt32BE(at);
    boxes.push({ type: mp4.toString("latin1", at + 4, at + 8), start: at, end: at + size });
    at += size;
  }
  return boxes;
}

function freeBoxes(count: number): Buffer {
  return Buffer.alloc(8 * count).fill(Buffer.from("\0\0\0\x08free", "latin1"));
}

// --- Tests ---------------------------------------------------------------------------------------------

describe("crafted structures (issue #11 attacks)", () => {
  it("refuses a 10 MB JPEG of 2.5 million empty APP5 segments before a valid image", async () => {
    const file = await craftJpegSegmentBomb(dir, 2_500_000);
    expectFailure(
      await timed("JPEG, 2.5M APP5 segments", file, "image"),
      "validation_failed",
      new RegExp(`${TOO_COMPLEX.source}the JPEG has more than ${MAX_JPEG_SEGMENTS_BEFORE_SCAN} marker segments`),
    );
  });

  it.each([
    ["tEXt", /the PNG has more than 1024 metadata chunks/],
    ["IDAT", /the PNG has more than 100000 chunks/],
  ])("refuses a PNG with 700,000 empty %s chunks", async (type, message) => {
    const file = await craftPngChunkBomb(dir, 700_000, type);
    const result = await timed(`PNG, 700k empty ${type} chunks`, file, "image");
    expectFailure(result, "validation_failed", TOO_COMPLEX);
    expectFailure(result, "validation_failed", message);
  });

  it("refuses an MP4 with 650,000 free boxes before its moov", async () => {
    const file = await craftMp4BoxBomb(dir, 650_000);
    expectFailure(
      await timed("MP4, 650k free boxes", file, "video"),
      "validation_failed",
      new RegExp(`${TOO_COMPLEX.source}the MP4 file has more than ${MAX_MP4_TOP_LEVEL_BOXES} top-level boxes`),
    );
  });
});

describe("files exactly at each cap pass, one more is refused", () => {
  it("PNG: total chunks", async () => {
    const png = fs.readFileSync(await media.makeImage(dir, { format: "png", width: 64, height: 48 }));
    const room = MAX_PNG_CHUNKS - pngChunks(png).length;
    const emptyIdat = media.pngChunk("IDAT", Buffer.alloc(0));
    const at = write("png-at-cap", "png", pngWith(png, [Buffer.alloc(12 * room).fill(emptyIdat)]));
    expect(expectOk(await inspect(at, "image"))).toMatchObject({ width: 64, height: 48 });
    const over = write("png-over-cap", "png", pngWith(png, [Buffer.alloc(12 * (room + 1)).fill(emptyIdat)]));
    expectFailure(await inspect(over, "image"), "validation_failed", /more than 100000 chunks/);
  });

  it("PNG: metadata chunks", async () => {
    const png = fs.readFileSync(await media.makeImage(dir, { format: "png", width: 64, height: 48 }));
    const existing = pngChunks(png).filter((c) => !PNG_IMAGE_CHUNKS.has(c.type)).length;
    const text = media.pngChunk("tEXt", Buffer.from("Comment\0ok", "latin1"));
    const texts = (n: number) => Array.from({ length: n }, () => text);
    const at = write("png-text-at-cap", "png", pngWith(png, texts(MAX_PNG_ANCILLARY_CHUNKS - existing)));
    expectOk(await inspect(at, "image"));
    const over = write("png-text-over-cap", "png", pngWith(png, texts(MAX_PNG_ANCILLARY_CHUNKS - existing + 1)));
    expectFailure(await inspect(over, "image"), "validation_failed", /more than 1024 metadata chunks/);
  });

  it("JPEG: marker segments before the image data", async () => {
    const jpeg = fs.readFileSync(await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 }));
    const room = MAX_JPEG_SEGMENTS_BEFORE_SCAN - jpegHead(jpeg).markers;
    const withApp5 = (n: number) => Buffer.concat([jpeg.subarray(0, 2), emptyApp5(n), jpeg.subarray(2)]);
    expectOk(await inspect(write("jpeg-at-cap", "jpg", withApp5(room)), "image"));
    expectFailure(
      await inspect(write("jpeg-over-cap", "jpg", withApp5(room + 1)), "image"),
      "validation_failed",
      /more than 1024 marker segments before its image data/,
    );
  });

  it("JPEG: scans, and marker segments in the whole file", async () => {
    const jpeg = fs.readFileSync(await media.makeImage(dir, { format: "jpeg", width: 64, height: 48 }));
    const { sosAt, markers } = jpegHead(jpeg);
    const head = jpeg.subarray(0, sosAt);
    const scan = jpeg.subarray(sosAt, jpeg.length - 2); // SOS and its entropy-coded data
    const eoi = jpeg.subarray(jpeg.length - 2);
    const scans = (n: number) => Buffer.concat([head, ...Array.from({ length: n }, () => scan), eoi]);
    expectOk(await inspect(write("scans-at-cap", "jpg", scans(MAX_JPEG_SCANS)), "image"));
    expectFailure(
      await inspect(write("scans-over-cap", "jpg", scans(MAX_JPEG_SCANS + 1)), "image"),
      "validation_failed",
      /the JPEG has more than 500 scans/,
    );
    // After the first scan: comments until the total reaches the cap (EOI counts as a marker too).
    const room = MAX_JPEG_SEGMENTS - markers - 1;
    const comments = (n: number) => Buffer.concat([head, scan, emptyComments(n), eoi]);
    expectOk(await inspect(write("segments-at-cap", "jpg", comments(room)), "image"));
    expectFailure(
      await inspect(write("segments-over-cap", "jpg", comments(room + 1)), "image"),
      "validation_failed",
      new RegExp(`the JPEG has more than ${MAX_JPEG_SEGMENTS} marker segments;`),
    );
  });

  it("WEBP: chunks", async () => {
    const webp = fs.readFileSync(await media.makeImage(dir, { format: "webp", width: 64, height: 48 }));
    const existing = 1; // a simple lossy WEBP is one VP8 chunk
    expect(webp.toString("latin1", 12, 16)).toBe("VP8 ");
    expect(webp.length).toBe(20 + webp.readUInt32LE(16) + (webp.readUInt32LE(16) & 1));
    const room = MAX_WEBP_CHUNKS - existing;
    expectOk(await inspect(write("webp-at-cap", "webp", webpWith(webp, room)), "image"));
    expectFailure(
      await inspect(write("webp-over-cap", "webp", webpWith(webp, room + 1)), "image"),
      "validation_failed",
      /the WEBP has more than 256 chunks/,
    );
  });

  it("MP4: top-level boxes (frees appended after the last box keep the file valid)", async () => {
    const mp4 = fs.readFileSync(await media.makeVideo(dir, { format: "mp4", width: 64, height: 48, seconds: 1 }));
    const room = MAX_MP4_TOP_LEVEL_BOXES - mp4Boxes(mp4).length;
    const at = write("mp4-at-cap", "mp4", Buffer.concat([mp4, freeBoxes(room)]));
    expect(expectOk(await inspect(at, "video"))).toMatchObject({ width: 64, height: 48 });
    const over = write("mp4-over-cap", "mp4", Buffer.concat([mp4, freeBoxes(room + 1)]));
    expectFailure(await inspect(over, "video"), "validation_failed", /more than 200000 top-level boxes/);
  });
});

describe("pixel limits", () => {
  it("defaults: 20000 px per side and 210 million pixels, both inclusive", async () => {
    expect([DEFAULT_MAX_IMAGE_SIDE, DEFAULT_MAX_IMAGE_PIXELS]).toEqual([20_000, 210_000_000]);
    const png = (w: number, h: number) => write(`png-${w}x${h}`, "png", makePng(w, h, 0, 1, blankRows(w, h)));
    expect(expectOk(await inspect(png(20_000, 1), "image"))).toMatchObject({ width: 20_000, height: 1 });
    expectFailure(
      await inspect(png(20_001, 1), "image"),
      "validation_failed",
      /^The PNG image is 20001×1 pixels; at most 20000 pixels per side are accepted\.$/,
    );
    expectFailure(await inspect(png(1, 20_001), "image"), "validation_failed", /at most 20000 pixels per side/);
    expect(expectOk(await inspect(png(15_000, 14_000), "image"))).toMatchObject({ width: 15_000, height: 14_000 });
    expectFailure(
      await inspect(png(15_000, 14_001), "image"),
      "validation_failed",
      /^The PNG image is 15000×14001 = 210015000 pixels; at most 210000000 pixels are accepted\.$/,
    );
  });

  it.each(["png", "jpeg", "webp"] as const)("applies configured limits to %s", async (format) => {
    const file = await media.makeImage(dir, { format, width: 120, height: 80 });
    expectOk(await withLimits(file, { maxImageSide: 120, maxImagePixels: 9600 }));
    expectFailure(await withLimits(file, { maxImageSide: 119 }), "validation_failed", /120×80 pixels; at most 119/);
    expectFailure(await withLimits(file, { maxImagePixels: 9599 }), "validation_failed", /= 9600 pixels; at most 9599/);
  });

  it("refuses a PNG that declares far more pixels than its data can hold", async () => {
    // 10000×10000 RGBA with the data of a single row.
    const ihdrOnly = makePng(10_000, 10_000, 6, 8, Buffer.alloc(1 + 40_000));
    expectFailure(
      await inspect(write("png-hollow", "png", ihdrOnly), "image"),
      "validation_failed",
      /^The PNG declares 10000×10000 pixels but holds too little image data \(\d+ bytes; .* needs 387607\)\.$/,
    );
  });

  it("accepts the most compressible PNG there is (all zero, deflate level 9): the bound is not too tight", async () => {
    const [w, h] = [4000, 4000];
    const file = write("png-zeros", "png", makePng(w, h, 6, 8, Buffer.alloc(h * (1 + 4 * w))));
    expect(expectOk(await inspect(file, "image"))).toMatchObject({ width: w, height: h });
  });
});
