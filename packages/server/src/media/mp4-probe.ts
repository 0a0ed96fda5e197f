/**
 * A small ISO-BMFF (MP4) reader: just enough to check what a provider handed us (dimensions,
 * duration, codecs, audio or not) without shipping ffprobe. Only the top-level box headers and
 * the moov box are read, so multi-gigabyte files cost a handful of reads: headers come from a
 * read-ahead window, so a file of many small boxes costs one read per window, not one per box.
 *
 * Crafted files cannot make the walk long: the number of top-level boxes and of boxes inside
 * moov are capped (Mp4TooComplexError), far above what encoders and recorders write.
 */
import { type FileHandle, open } from "node:fs/promises";

export interface Mp4Info {
  /** Display size of the first video track (0 when the file has no video track). */
  width: number;
  height: number;
  /** Movie duration in seconds, rounded to 3 decimals. */
  durationSeconds: number;
  hasAudio: boolean;
  /** Sample entry fourcc of the first video track, e.g. "avc1". */
  videoCodec: string | null;
  /** Sample entry fourcc of the first audio track, e.g. "mp4a". */
  audioCodec: string | null;
}

/** A moov box bigger than this is not something our providers produce; refuse to buffer it. */
const MAX_MOOV_BYTES = 64 * 1024 * 1024;
/**
 * Top-level box headers are read through a window of this size: small enough that jumping over
 * each fragment's mdat in a large fragmented file does not read much of it, large enough that a
 * run of tiny boxes costs one read per 2,000 of them.
 */
const HEADER_WINDOW_BYTES = 16 * 1024;

export interface Mp4Limits {
  /**
   * Top-level boxes. Ordinary files have 3–6; a fragmented recording one moof + mdat pair per
   * fragment, so the default 200,000 allows over 27 hours of 1-second fragments.
   */
  maxTopLevelBoxes?: number;
  /**
   * Boxes visited inside moov (its children and those on the path to each track's sample
   * description: about 10 per track). Real files have a few dozen tracks at most. Only fixed
   * paths are descended (moov/trak/mdia/minf/stbl/stsd), so nesting depth is at most 6.
   */
  maxMoovBoxes?: number;
}

export const DEFAULT_MP4_LIMITS: Required<Mp4Limits> = { maxTopLevelBoxes: 200_000, maxMoovBoxes: 10_000 };

/** The file is well-formed so far but has more boxes than any real file: refused, not parsed. */
export class Mp4TooComplexError extends Error {
  constructor(
    /** Client-safe predicate, e.g. "has more than 200000 top-level boxes; …" (the subject is the caller's). */
    readonly detail: string,
    readonly limit: number,
  ) {
    super(`MP4 structure too complex: ${detail}`);
    this.name = "Mp4TooComplexError";
  }
}

/** Box types that may legitimately open an MP4/QuickTime file. */
const LEADING_BOX_TYPES = new Set(["ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "pdin"]);

/** Cheap sniff of the first box header: does this buffer look like the start of an MP4 file? */
export function isMp4(buffer: Uint8Array): boolean {
  if (buffer.length < 8) return false;
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const size = view.getUint32(0);
  const type = fourcc(buffer, 4);
  return LEADING_BOX_TYPES.has(type) && (size === 0 || size === 1 || size >= 8);
}

export async function probeMp4(path: string, limits: Mp4Limits = {}): Promise<Mp4Info> {
  const caps = { ...DEFAULT_MP4_LIMITS, ...limits };
  const fh = await open(path, "r");
  try {
    const moov = await readMoov(fh, path, caps.maxTopLevelBoxes);
    try {
      return parseMoov(moov, new BoxBudget(caps.maxMoovBoxes));
    } catch (err) {
      // Buffer reads past a box's end throw RangeError; report it as the corrupt file it is.
      if (err instanceof RangeError) throw new Error(`corrupt MP4 (${path}): box extends past its parent`);
      throw err;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Walks every top-level box header (validating that each fits in the file, which catches
 * truncated downloads even when moov sits before mdat) and returns the moov payload.
 */
async function readMoov(fh: FileHandle, path: string, maxBoxes: number): Promise<Buffer> {
  const fileSize = (await fh.stat()).size;
  if (fileSize < 8) throw new Error(`not an MP4 file (${path}): too short`);
  const headers = new HeaderWindow(fh, fileSize);
  let moov: Buffer | null = null;
  let offset = 0;
  let boxes = 0;
  while (offset < fileSize) {
    const remaining = fileSize - offset;
    if (remaining < 8) throw new Error(`truncated MP4 (${path}): ${remaining} stray bytes at offset ${offset}`);
    if (++boxes > maxBoxes) {
      throw new Mp4TooComplexError(
        `has more than ${maxBoxes} top-level boxes; even long fragmented recordings have far fewer`,
        maxBoxes,
      );
    }
    const header = await headers.at(offset, Math.min(16, remaining));
    const type = fourcc(header, 4);
    if (offset === 0 && !LEADING_BOX_TYPES.has(type)) {
      throw new Error(`not an MP4 file (${path}): starts with ${JSON.stringify(type)} instead of an ftyp box`);
    }
    if (!/^[\x20-\x7e\xa9]{4}$/.test(type)) {
      throw new Error(`corrupt MP4 (${path}): invalid box type at offset ${offset}`);
    }
    let size = header.readUInt32BE(0);
    let headerSize = 8;
    if (size === 1) {
      // 64-bit "largesize" follows the type.
      if (header.length < 16) throw new Error(`truncated MP4 (${path}): box header at offset ${offset}`);
      const large = header.readBigUInt64BE(8);
      if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`corrupt MP4 (${path}): box too large`);
      size = Number(large);
      headerSize = 16;
    } else if (size === 0) {
      // Size 0 means "extends to the end of the file" (only valid for the last box).
      size = remaining;
    }
    if (size < headerSize) throw new Error(`corrupt MP4 (${path}): invalid size for box '${type}' at ${offset}`);
    if (size > remaining) {
      throw new Error(
        `truncated MP4 (${path}): box '${type}' at offset ${offset} needs ${size} bytes, only ${remaining} left`,
      );
    }
    if (type === "moov" && moov === null) {
      if (size > MAX_MOOV_BYTES) throw new Error(`MP4 moov box too large (${size} bytes) in ${path}`);
      const payload = Buffer.alloc(size - headerSize);
      const read = await fh.read(payload, 0, payload.length, offset + headerSize);
      if (read.bytesRead !== payload.length) throw new Error(`truncated MP4 (${path}): short read of moov`);
      moov = payload;
    }
    offset += size;
  }
  if (!moov) throw new Error(`invalid MP4 (${path}): no moov box (incomplete or fragmented-only file?)`);
  return moov;
}

/**
 * Box headers through a read-ahead window: small boxes in a row (free, moof, …) are served from
 * memory; a large box (mdat) makes the next header one fresh read.
 */
class HeaderWindow {
  private window: Buffer = Buffer.alloc(0);
  private start = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly fileSize: number,
  ) {}

  /** `length` bytes at `offset` (the caller keeps within the file). */
  async at(offset: number, length: number): Promise<Buffer> {
    if (offset < this.start || offset + length > this.start + this.window.length) {
      const want = Math.min(HEADER_WINDOW_BYTES, this.fileSize - offset);
      const buf = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const { bytesRead } = await this.fh.read(buf, done, want - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < length) throw new Error("truncated MP4: the file shrank while being read");
      this.window = buf.subarray(0, done);
      this.start = offset;
    }
    return this.window.subarray(offset - this.start, offset - this.start + length);
  }
}

/** Counts boxes visited inside moov, so a moov of millions of tiny boxes is refused early. */
class BoxBudget {
  private used = 0;
  constructor(private readonly max: number) {}

  spend(): void {
    if (++this.used > this.max) {
      throw new Mp4TooComplexError(
        `has more than ${this.max} boxes in its moov box; files from cameras and editors have a few dozen`,
        this.max,
      );
    }
  }
}

interface Box {
  type: string;
  /** The box payload (after the header). */
  data: Buffer;
}

/** Child boxes of a container payload. Throws RangeError on sizes that overrun the parent. */
function* children(parent: Buffer, budget: BoxBudget): Generator<Box> {
  let offset = 0;
  while (offset + 8 <= parent.length) {
    budget.spend();
    let size = parent.readUInt32BE(offset);
    const type = fourcc(parent, offset + 4);
    let headerSize = 8;
    if (size === 1) {
      size = Number(parent.readBigUInt64BE(offset + 8));
      headerSize = 16;
    } else if (size === 0) {
      size = parent.length - offset;
    }
    if (size < headerSize || offset + size > parent.length) throw new RangeError(`bad size for box '${type}'`);
    yield { type, data: parent.subarray(offset + headerSize, offset + size) };
    offset += size;
  }
}

function child(parent: Buffer, type: string, budget: BoxBudget): Buffer | null {
  for (const box of children(parent, budget)) if (box.type === type) return box.data;
  return null;
}

interface TrackInfo {
  handler: string | null;
  width: number;
  height: number;
  codec: string | null;
  durationSeconds: number | null;
}

function parseMoov(moov: Buffer, budget: BoxBudget): Mp4Info {
  let movieDuration: number | null = null;
  const tracks: TrackInfo[] = [];
  for (const box of children(moov, budget)) {
    if (box.type === "mvhd") movieDuration = parseTimedHeader(box.data);
    else if (box.type === "trak") tracks.push(parseTrak(box.data, budget));
  }
  // Fragmented files and some muxers leave mvhd's duration at 0 (or "unknown"): use the longest track.
  if (movieDuration === null || movieDuration === 0) {
    movieDuration = Math.max(0, ...tracks.map((t) => t.durationSeconds ?? 0));
  }
  const video = tracks.find((t) => t.handler === "vide");
  const audio = tracks.find((t) => t.handler === "soun");
  return {
    width: video?.width ?? 0,
    height: video?.height ?? 0,
    durationSeconds: Math.round(movieDuration * 1000) / 1000,
    hasAudio: audio !== undefined,
    videoCodec: video?.codec ?? null,
    audioCodec: audio?.codec ?? null,
  };
}

/**
 * Duration in seconds from mvhd or mdhd, which share their layout: after version/flags, v0 has
 * 32-bit creation/modification times and duration, v1 has 64-bit ones. All-ones means unknown.
 */
function parseTimedHeader(data: Buffer): number | null {
  const version = data.readUInt8(0);
  let timescale: number;
  let duration: number;
  if (version === 1) {
    timescale = data.readUInt32BE(20);
    const raw = data.readBigUInt64BE(24);
    if (raw === 0xffffffffffffffffn) return null;
    duration = Number(raw);
  } else {
    timescale = data.readUInt32BE(12);
    duration = data.readUInt32BE(16);
    if (duration === 0xffffffff) return null;
  }
  return timescale > 0 ? duration / timescale : null;
}

function parseTrak(trak: Buffer, budget: BoxBudget): TrackInfo {
  const info: TrackInfo = { handler: null, width: 0, height: 0, codec: null, durationSeconds: null };
  const tkhd = child(trak, "tkhd", budget);
  if (tkhd) {
    // width/height are 16.16 fixed point after the matrix; their offset depends on the version.
    const at = tkhd.readUInt8(0) === 1 ? 88 : 76;
    info.width = Math.round(tkhd.readUInt32BE(at) / 65536);
    info.height = Math.round(tkhd.readUInt32BE(at + 4) / 65536);
  }
  const mdia = child(trak, "mdia", budget);
  if (!mdia) return info;
  const hdlr = child(mdia, "hdlr", budget);
  if (hdlr) info.handler = fourcc(hdlr, 8);
  const mdhd = child(mdia, "mdhd", budget);
  if (mdhd) info.durationSeconds = parseTimedHeader(mdhd);
  const minf = child(mdia, "minf", budget);
  const stbl = minf ? child(minf, "stbl", budget) : null;
  const stsd = stbl ? child(stbl, "stsd", budget) : null;
  // stsd: version/flags, entry_count, then sample entries whose box type is the codec fourcc.
  if (stsd && stsd.length >= 16 && stsd.readUInt32BE(4) > 0) {
    info.codec = fourcc(stsd, 12);
    if (info.handler === "vide" && (info.width === 0 || info.height === 0) && stsd.length >= 16 + 28) {
      // No usable tkhd size: fall back to the coded size in the VisualSampleEntry.
      info.width = stsd.readUInt16BE(16 + 24);
      info.height = stsd.readUInt16BE(16 + 26);
    }
  }
  return info;
}

function fourcc(buf: Uint8Array, at: number): string {
  return String.fromCharCode(buf[at] ?? 0, buf[at + 1] ?? 0, buf[at + 2] ?? 0, buf[at + 3] ?? 0);
}
