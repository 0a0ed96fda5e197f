import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import ffmpeg from "@ffmpeg-installer/ffmpeg";
import { createFile, type Movie, MP4BoxBuffer } from "mp4box";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderSimulatedVideo } from "../providers/simulated/render.js";
import { DEFAULT_MP4_LIMITS, isMp4, Mp4TooComplexError, probeMp4 } from "./mp4-probe.js";

/** Independent reference parser, so probeMp4 is not only checked against itself. */
function mp4boxInfo(file: string): Movie {
  const data = fs.readFileSync(file);
  const iso = createFile();
  let info: Movie | undefined;
  iso.onReady = (movie) => {
    info = movie;
  };
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  iso.appendBuffer(MP4BoxBuffer.fromArrayBuffer(ab, 0));
  iso.flush();
  if (!info) throw new Error(`mp4box could not parse ${file}`);
  return info;
}

// --- helpers to hand-build ISO-BMFF boxes ---------------------------------------------------

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.write(type, 4, "latin1");
  return Buffer.concat([header, body]);
}

/** A box using the 64-bit largesize form (size field = 1). */
function largeBox(type: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(1, 0);
  header.write(type, 4, "latin1");
  header.writeBigUInt64BE(BigInt(16 + payload.length), 8);
  return Buffer.concat([header, payload]);
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => {
    b.writeUInt32BE(v, 4 * i);
  });
  return b;
}

function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return b;
}

/** mvhd/mdhd share the timing layout; the rest of the box is irrelevant for the probe. */
function timed(type: "mvhd" | "mdhd", version: 0 | 1, timescale: number, duration: number): Buffer {
  const times =
    version === 1 ? Buffer.concat([u64(0), u64(0), u32(timescale), u64(duration)]) : u32(0, 0, timescale, duration);
  return box(type, u32(version << 24), times, Buffer.alloc(type === "mvhd" ? 80 : 4));
}

function tkhd(version: 0 | 1, width: number, height: number): Buffer {
  const head = version === 1 ? Buffer.concat([u64(0), u64(0), u32(1, 0), u64(0)]) : u32(0, 0, 1, 0, 0);
  // reserved(8) layer/alt/volume/reserved(8) matrix(36), then 16.16 width/height.
  return box("tkhd", u32(version << 24), head, Buffer.alloc(52), u32(width * 65536, height * 65536));
}

function trak(handler: string, codec: string, tkhdBox: Buffer, mdhdBox: Buffer): Buffer {
  const hdlr = box("hdlr", u32(0, 0), Buffer.from(handler, "latin1"), Buffer.alloc(13));
  const stsd = box("stsd", u32(0, 1), box(codec, Buffer.alloc(78)));
  return box("trak", tkhdBox, box("mdia", mdhdBox, hdlr, box("minf", box("stbl", stsd))));
}

function withTempDir(): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mp4-probe-"));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// --------------------------------------------------------------------------------------------

describe("probeMp4 on hand-built boxes", () => {
  const tmp = withTempDir();
  afterAll(tmp.cleanup);

  function write(name: string, ...parts: Buffer[]): string {
    const file = path.join(tmp.dir, name);
    fs.writeFileSync(file, Buffer.concat(parts));
    return file;
  }
  const ftyp = box("ftyp", Buffer.from("isom", "latin1"), u32(512), Buffer.from("isomavc1", "latin1"));

  it("reads v1 headers, 64-bit largesize boxes and a size-0 trailing mdat", async () => {
    const moov = box(
      "moov",
      timed("mvhd", 1, 1000, 7250),
      trak("vide", "avc1", tkhd(1, 1280, 720), timed("mdhd", 1, 12800, 92800)),
      trak("soun", "mp4a", tkhd(0, 0, 0), timed("mdhd", 0, 44100, 319725)),
    );
    const mdat = Buffer.concat([u32(0), Buffer.from("mdat", "latin1"), Buffer.alloc(1000, 7)]);
    const file = write("v1.mp4", ftyp, largeBox("free", Buffer.alloc(32)), moov, mdat);
    expect(await probeMp4(file)).toEqual({
      width: 1280,
      height: 720,
      durationSeconds: 7.25,
      hasAudio: true,
      videoCodec: "avc1",
      audioCodec: "mp4a",
    });
  });

  it("handles a largesize moov and falls back to track durations when mvhd has none", async () => {
    const moovPayload = Buffer.concat([
      timed("mvhd", 0, 1000, 0),
      trak("vide", "hvc1", tkhd(0, 720, 1280), timed("mdhd", 0, 90000, 450000)),
    ]);
    const file = write("large.mp4", ftyp, box("mdat", Buffer.alloc(64)), largeBox("moov", moovPayload));
    expect(await probeMp4(file)).toEqual({
      width: 720,
      height: 1280,
      durationSeconds: 5,
      hasAudio: false,
      videoCodec: "hvc1",
      audioCodec: null,
    });
  });

  it("rounds the duration to 3 decimals", async () => {
    const moov = box("moov", timed("mvhd", 0, 3, 10), trak("vide", "avc1", tkhd(0, 16, 16), timed("mdhd", 0, 3, 10)));
    expect((await probeMp4(write("round.mp4", ftyp, moov))).durationSeconds).toBe(3.333);
  });

  it("rejects non-MP4 input", async () => {
    await expect(probeMp4(write("text.mp4", Buffer.from("hello, this is not a video at all")))).rejects.toThrow(
      /not an MP4/,
    );
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
    await expect(probeMp4(write("image.png", png))).rejects.toThrow(/not an MP4/);
    await expect(probeMp4(write("empty.mp4"))).rejects.toThrow(/not an MP4/);
    await expect(probeMp4(path.join(tmp.dir, "missing.mp4"))).rejects.toThrow(/ENOENT/);
  });

  it("rejects files without moov and with corrupt child boxes", async () => {
    await expect(probeMp4(write("nomoov.mp4", ftyp, box("mdat", Buffer.alloc(10))))).rejects.toThrow(/no moov/);
    const badChild = box("moov", u32(0xffff), Buffer.from("mvhd", "latin1"), Buffer.alloc(8));
    await expect(probeMp4(write("badchild.mp4", ftyp, badChild))).rejects.toThrow(/corrupt MP4/);
  });

  it("caps the top-level boxes and the boxes inside moov (at the cap passes, one more is refused)", async () => {
    const moov = (extra: number) =>
      box("moov", timed("mvhd", 0, 1000, 2000), ...Array.from({ length: extra }, () => box("free")));
    const frees = (n: number) => Array.from({ length: n }, () => box("free"));
    // Top level: ftyp + moov + frees. Small caps keep the test quick; the defaults are checked below.
    const limits = { maxTopLevelBoxes: 50, maxMoovBoxes: 30 };
    expect((await probeMp4(write("top-at.mp4", ftyp, moov(0), ...frees(48)), limits)).durationSeconds).toBe(2);
    const over = probeMp4(write("top-over.mp4", ftyp, moov(0), ...frees(49)), limits);
    await expect(over).rejects.toBeInstanceOf(Mp4TooComplexError);
    await expect(over).rejects.toThrow(/has more than 50 top-level boxes/);
    // Inside moov: mvhd + frees.
    expect((await probeMp4(write("moov-at.mp4", ftyp, moov(29)), limits)).durationSeconds).toBe(2);
    await expect(probeMp4(write("moov-over.mp4", ftyp, moov(30)), limits)).rejects.toThrow(
      /has more than 30 boxes in its moov box/,
    );
    expect(DEFAULT_MP4_LIMITS).toEqual({ maxTopLevelBoxes: 200_000, maxMoovBoxes: 10_000 });
    await expect(probeMp4(write("moov-default.mp4", ftyp, moov(10_000)))).rejects.toThrow(/more than 10000 boxes/);
  });

  it("isMp4 sniffs the first box", () => {
    expect(isMp4(ftyp)).toBe(true);
    expect(isMp4(Buffer.from("GIF89a........"))).toBe(false);
    expect(isMp4(Buffer.alloc(4))).toBe(false);
  });
});

describe("probeMp4 on real renders", () => {
  const tmp = withTempDir();
  const silent = path.join(tmp.dir, "silent.mp4");
  const withSound = path.join(tmp.dir, "sound.mp4");

  beforeAll(async () => {
    const base = { prompt: "probe fixture", fps: 8 };
    await Promise.all([
      renderSimulatedVideo(
        { ...base, width: 160, height: 96, durationSeconds: 5, sound: false, outputPath: silent },
        { ffmpegPath: ffmpeg.path },
      ),
      renderSimulatedVideo(
        { ...base, width: 96, height: 160, durationSeconds: 10, sound: true, outputPath: withSound },
        { ffmpegPath: ffmpeg.path },
      ),
    ]);
  }, 30_000);
  afterAll(tmp.cleanup);

  it.each([
    { file: silent, width: 160, height: 96, duration: 5, audio: false },
    { file: withSound, width: 96, height: 160, duration: 10, audio: true },
  ])("agrees with mp4box ($width x $height, $duration s, audio $audio)", async (c) => {
    const info = await probeMp4(c.file);
    expect(info).toMatchObject({ width: c.width, height: c.height, hasAudio: c.audio, videoCodec: "avc1" });
    expect(info.audioCodec).toBe(c.audio ? "mp4a" : null);
    expect(Math.abs(info.durationSeconds - c.duration)).toBeLessThanOrEqual(0.1);

    const ref = mp4boxInfo(c.file);
    const video = ref.videoTracks[0];
    expect(video?.video).toEqual({ width: info.width, height: info.height });
    expect(video?.codec.startsWith("avc1")).toBe(true);
    expect(ref.audioTracks.length > 0).toBe(info.hasAudio);
    if (info.hasAudio) expect(ref.audioTracks[0]?.codec.startsWith("mp4a")).toBe(true);
    expect(Math.abs(ref.duration / ref.timescale - info.durationSeconds)).toBeLessThan(0.002);
  });

  it("rejects truncated files", async () => {
    const data = fs.readFileSync(withSound);
    const cut = path.join(tmp.dir, "cut.mp4");
    // Faststart puts moov first, so this keeps moov intact but cuts mdat short.
    fs.writeFileSync(cut, data.subarray(0, Math.floor(data.length * 0.6)));
    await expect(probeMp4(cut)).rejects.toThrow(/truncated MP4/);
    // And this cuts into moov itself.
    fs.writeFileSync(cut, data.subarray(0, 200));
    await expect(probeMp4(cut)).rejects.toThrow(/truncated MP4/);
  });
});
