/**
 * Content inspection for uploaded files (api-contract §6): the type is detected from the bytes
 * only, then the file is checked structurally and its metadata (dimensions, duration) measured.
 *
 * - Images (PNG, JPEG, WEBP) are parsed here, reading the file in blocks: truncated files and
 *   "polyglots" (an image with another file or markup hidden in its metadata or appended after
 *   its end) are refused, since the file is later served back from our own URLs.
 * - MP4/QuickTime use the box probe in ../media/mp4-probe.ts (ffmpeg only for the duration of
 *   fragmented files, whose moov carries none).
 * - Everything else (WebM, MP3, WAV, AAC, Ogg, …) is demuxed by ffmpeg (`-c copy -f null`, no
 *   decoding) with a timeout; its report gives the streams, the duration, and errors seen while
 *   reading every packet, which is what catches truncated files. Containers where a cut-off file
 *   looks like a shorter valid one to ffmpeg (ADTS AAC, Ogg, WAV) get a native framing check.
 *
 * Failures are returned as `{ ok: false }` with a message meant for API clients (never a server
 * path or raw tool output). Exceptions are reserved for server-side problems (I/O errors, ffmpeg
 * missing) and aborts.
 */
import { spawn } from "node:child_process";
import { type FileHandle, open } from "node:fs/promises";
import { inflateSync } from "node:zlib";
import { fileTypeFromBuffer } from "file-type";
import { probeMp4 } from "../media/mp4-probe.js";

export type FileKind = "image" | "video" | "audio";

/** First bytes of a file are enough for sniffing; callers capture this many while streaming. */
export const SNIFF_BYTES = 4100;

export type Inspection =
  | { ok: true; mimeType: string; width: number | null; height: number | null; durationSeconds: number | null }
  | { ok: false; code: "validation_failed" | "unsupported_media_type"; message: string };

export interface InspectOptions {
  /** The kind the client declared. */
  kind: FileKind;
  /** The policy's accepted types (aliases such as audio/x-wav are understood). */
  allowedMimeTypes: readonly string[];
  ffmpegPath: string;
  signal?: AbortSignal;
  /** How long ffmpeg may take to read the file (default FFMPEG_TIMEOUT_MS). */
  ffmpegTimeoutMs?: number;
}

/** Bytes tolerated after an image's logical end (some writers pad); more is treated as a hidden payload. */
export const MAX_TRAILING_BYTES = 16;
/** ffmpeg gets this long to read a file. */
export const FFMPEG_TIMEOUT_MS = 10_000;

const BLOCK_BYTES = 256 * 1024;
/** A ZIP reader looks for its end-of-central-directory record in the last 22 + 65535 bytes. */
const ZIP_TAIL_BYTES = 22 + 65_535;
/** Cap for decompressed PNG text (zTXt/iTXt); more is a decompression bomb, not metadata. */
const MAX_INFLATED_TEXT_BYTES = 8 * 1024 * 1024;

// --- MIME types ------------------------------------------------------------------------------

/** Spellings that name the same format, mapped to the names the API uses. */
const MIME_ALIASES: Readonly<Record<string, string>> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  // An APNG is a valid PNG (decoders that ignore animation show the default image).
  "image/apng": "image/png",
  "image/x-png": "image/png",
  "image/x-ms-bmp": "image/bmp",
  "image/x-bmp": "image/bmp",
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/vnd.wave": "audio/wav",
  "audio/x-pn-wav": "audio/wav",
  "audio/x-m4a": "audio/mp4",
  "audio/m4a": "audio/mp4",
  "video/x-m4v": "video/mp4",
  "audio/mp3": "audio/mpeg",
  "audio/x-mpeg": "audio/mpeg",
  "audio/x-mp3": "audio/mpeg",
  "audio/x-aac": "audio/aac",
  "audio/aacp": "audio/aac",
  "audio/x-ogg": "audio/ogg",
  "video/x-matroska": "video/matroska",
  "video/x-quicktime": "video/quicktime",
};

/** Lower-cases, drops parameters (`audio/ogg; codecs=opus` → `audio/ogg`) and resolves aliases. */
export function normalizeMimeType(mimeType: string): string {
  const base = (mimeType.split(";")[0] ?? "").trim().toLowerCase();
  return MIME_ALIASES[base] ?? base;
}

/** The file kind a (normalized) MIME type belongs to, if any. */
export function kindOfMimeType(mimeType: string): FileKind | undefined {
  const top = normalizeMimeType(mimeType).split("/")[0];
  return top === "image" || top === "video" || top === "audio" ? top : undefined;
}

/**
 * Detects the MIME type from magic numbers only (never filename/declared type), normalized to the
 * names the API uses: image/jpeg, image/png, image/webp, image/gif, image/bmp, video/mp4,
 * video/quicktime, video/webm, audio/mpeg, audio/mp4, audio/wav, audio/aac, audio/ogg, …;
 * undefined if unknown (e.g. text).
 *
 * ISO-BMFF files are named after their ftyp brand: `M4A ` is audio/mp4, but an audio-only file
 * with a generic brand (isom, mp42) is video/mp4 here; `inspectFile` refines that by looking at
 * the tracks.
 */
export async function sniffMimeType(head: Uint8Array): Promise<string | undefined> {
  if (head.length === 0) return undefined;
  const sample = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  try {
    const detected = await fileTypeFromBuffer(sample);
    return detected ? normalizeMimeType(detected.mime) : undefined;
  } catch {
    // file-type throws on some malformed structures; for us that is simply "not recognised".
    return undefined;
  }
}

// --- Failures --------------------------------------------------------------------------------

type FailureCode = "validation_failed" | "unsupported_media_type";

/** Internal: carries a client-facing rejection out of nested parsers. */
class Rejection extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = "Rejection";
  }
}

function corrupt(detail: string): Rejection {
  return new Rejection("validation_failed", `The file is truncated or corrupt (${detail}).`);
}

function unsupported(message: string): Rejection {
  return new Rejection("unsupported_media_type", message);
}

function abortError(signal: AbortSignal): Error {
  const err = new Error("file inspection aborted", { cause: signal.reason });
  err.name = "AbortError";
  return err;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

const KIND_NOUN: Record<FileKind, string> = { image: "an image", video: "a video", audio: "an audio file" };

// --- Entry point -----------------------------------------------------------------------------

/**
 * Full check of a stored file: sniff, then structural validation and metadata. `kind` is what the
 * client declared; the detected type must be of that kind and one of `allowedMimeTypes`.
 */
export async function inspectFile(path: string, opts: InspectOptions): Promise<Inspection> {
  checkAborted(opts.signal);
  const fh = await open(path, "r");
  try {
    const reader = new Reader(fh, (await fh.stat()).size, opts.signal);
    return await inspect(reader, path, opts);
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, code: err.code, message: err.message };
    throw err;
  } finally {
    await fh.close();
  }
}

interface MediaInfo {
  hasVideo: boolean;
  hasAudio: boolean;
  width: number;
  height: number;
  durationSeconds: number | null;
}

/** Containers whose audio-only files have a type of their own. */
const AUDIO_ONLY_VARIANT: Readonly<Record<string, string>> = {
  "video/mp4": "audio/mp4",
  "video/webm": "audio/webm",
};

async function inspect(reader: Reader, path: string, opts: InspectOptions): Promise<Inspection> {
  if (reader.size === 0) throw new Rejection("validation_failed", "The file is empty.");
  const allowedList = [...new Set(opts.allowedMimeTypes)];
  const allowedText = allowedList.length > 0 ? allowedList.join(", ") : "none";
  const allowed = new Set(allowedList.map(normalizeMimeType));

  const head = await reader.bytes(0, Math.min(reader.size, SNIFF_BYTES), "");
  let mimeType = await sniffMimeType(head);
  // file-type calls any ID3 tag longer than the sniffed head MP3; look at what follows the tag.
  const id3End = id3v2End(head);
  if (mimeType === "audio/mpeg" && id3End > head.length - 64 && id3End < reader.size) {
    const afterTag = await reader.bytes(id3End, Math.min(reader.size - id3End, SNIFF_BYTES), "");
    mimeType = (await sniffMimeType(afterTag)) ?? mimeType;
  }
  if (mimeType === undefined) {
    throw unsupported(`Could not recognise the file's type from its contents; allowed: ${allowedText}.`);
  }

  // An audio-only MP4/WebM is an audio file even when its header says "video".
  let media: MediaInfo | undefined;
  const audioVariant = AUDIO_ONLY_VARIANT[mimeType];
  if (opts.kind === "audio" && audioVariant !== undefined) {
    media = await analyseMedia(reader, path, mimeType, opts);
    if (!media.hasVideo && media.hasAudio) mimeType = audioVariant;
  }

  const detectedKind = kindOfMimeType(mimeType);
  if (detectedKind !== opts.kind) {
    const what = detectedKind ? `${mimeType} (${KIND_NOUN[detectedKind]})` : mimeType;
    throw unsupported(
      `The file's contents are ${what}, but it was uploaded with kind "${opts.kind}"; allowed: ${allowedText}.`,
    );
  }
  if (!allowed.has(mimeType)) {
    throw unsupported(`The file's contents are ${mimeType}, which is not accepted here; allowed: ${allowedText}.`);
  }

  if (opts.kind === "image") {
    const { width, height } = await inspectImage(reader, path, mimeType, opts);
    return { ok: true, mimeType, width, height, durationSeconds: null };
  }

  media ??= await analyseMedia(reader, path, mimeType, opts);
  if (opts.kind === "video") {
    if (!media.hasVideo) throw unsupported(`The file (${mimeType}) contains no video stream.`);
    if (media.width <= 0 || media.height <= 0) {
      throw new Rejection("validation_failed", "The video has no valid width and height.");
    }
  } else if (!media.hasAudio) {
    throw unsupported(`The file (${mimeType}) contains no audio stream.`);
  }
  if (media.durationSeconds === null || !(media.durationSeconds > 0)) {
    throw new Rejection("validation_failed", `The file is ${mimeType} but we could not read the duration.`);
  }
  const durationSeconds = Math.round(media.durationSeconds * 1000) / 1000;
  return opts.kind === "video"
    ? { ok: true, mimeType, width: media.width, height: media.height, durationSeconds }
    : { ok: true, mimeType, width: null, height: null, durationSeconds };
}

// --- Block reader ----------------------------------------------------------------------------

/** Random access to the file with a small read-ahead window; every read is bounds-checked. */
class Reader {
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Exactly `length` bytes at `offset`. A range past the end of the file is a truncated file:
   * `what` completes "The file is truncated or corrupt (…)".
   */
  async bytes(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) throw corrupt(what || "unexpected end of file");
    const inWindow = offset >= this.windowStart && offset + length <= this.windowStart + this.window.length;
    if (!inWindow) {
      const want = Math.min(Math.max(length, 64 * 1024), this.size - offset);
      this.window = await this.readAt(offset, want);
      this.windowStart = offset;
    }
    const at = offset - this.windowStart;
    return this.window.subarray(at, at + length);
  }

  /** Streams [start, end) in blocks. The yielded buffer is reused: consume it before the next one. */
  async *blocks(start: number, end: number): AsyncGenerator<{ offset: number; data: Buffer }> {
    const buf = Buffer.alloc(Math.min(BLOCK_BYTES, Math.max(0, end - start)));
    for (let offset = start; offset < end; ) {
      checkAborted(this.signal);
      const length = Math.min(buf.length, end - offset);
      await this.fill(buf, length, offset);
      yield { offset, data: buf.subarray(0, length) };
      offset += length;
    }
  }

  private async readAt(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    await this.fill(buf, length, offset);
    return buf;
  }

  private async fill(buf: Buffer, length: number, position: number): Promise<void> {
    checkAborted(this.signal);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
      // The file shrank under us (it should not: it is our own stored copy).
      if (bytesRead === 0) throw corrupt("unexpected end of file");
      done += bytesRead;
    }
  }
}

// --- Embedded-content scanning -----------------------------------------------------------------

interface Marker {
  /** Lower-case bytes when `ignoreCase` (data is then lower-cased, ASCII only, before matching). */
  bytes: Buffer;
  ignoreCase: boolean;
  description: string;
}

function textMarker(text: string, description: string): Marker {
  return { bytes: Buffer.from(text.toLowerCase(), "latin1"), ignoreCase: true, description };
}

function binaryMarker(bytes: string, description: string): Marker {
  return { bytes: Buffer.from(bytes, "latin1"), ignoreCase: false, description };
}

/** Local file header, central directory header, end of central directory. */
const ZIP_MARKERS: readonly Marker[] = [
  binaryMarker("PK\x03\x04", "a ZIP archive"),
  binaryMarker("PK\x01\x02", "a ZIP archive"),
  binaryMarker("PK\x05\x06", "a ZIP archive"),
];
/** Long enough that compressed pixel data will not contain them by chance: checked everywhere. */
const STRONG_MARKERS: readonly Marker[] = [textMarker("<?php", "PHP code"), textMarker("<script", "a script")];
/** Checked in metadata and in data after the image's end (short ones would hit pixel data by chance). */
const ALL_MARKERS: readonly Marker[] = [
  ...STRONG_MARKERS,
  textMarker("<html", "HTML"),
  textMarker("<!doctype html", "HTML"),
  textMarker("<svg", "SVG"),
  textMarker("%PDF", "a PDF document"),
  ...ZIP_MARKERS,
];

/** Finds markers in a byte stream fed in pieces (matches may straddle pieces). */
class MarkerScanner {
  private carry: Buffer = Buffer.alloc(0);
  private readonly keep: number;
  private readonly anyIgnoreCase: boolean;

  constructor(private readonly markers: readonly Marker[]) {
    this.keep = Math.max(...markers.map((m) => m.bytes.length)) - 1;
    this.anyIgnoreCase = markers.some((m) => m.ignoreCase);
  }

  push(data: Uint8Array): Marker | undefined {
    const raw = Buffer.concat([this.carry, data]);
    let lower = raw;
    if (this.anyIgnoreCase) {
      lower = Buffer.from(raw);
      for (let i = 0; i < lower.length; i++) {
        const c = lower[i] as number;
        if (c >= 0x41 && c <= 0x5a) lower[i] = c | 0x20;
      }
    }
    const found = this.markers.find((m) => (m.ignoreCase ? lower : raw).includes(m.bytes));
    this.carry = Buffer.from(raw.subarray(Math.max(0, raw.length - this.keep)));
    return found;
  }
}

interface Region {
  start: number;
  end: number;
  /** Where this is, for messages: "a PNG tEXt chunk", "the data after the image". */
  label: string;
}

async function scanRegion(reader: Reader, region: Region, markers: readonly Marker[]): Promise<void> {
  const scanner = new MarkerScanner(markers);
  for await (const { data } of reader.blocks(region.start, region.end)) {
    const found = scanner.push(data);
    if (found) throw embedded(found, region.label);
  }
}

function embedded(found: Marker, where: string): Rejection {
  return unsupported(`The file contains ${found.description} hidden in ${where}; only plain media files are accepted.`);
}

// --- Images ----------------------------------------------------------------------------------

interface ImageLayout {
  width: number;
  height: number;
  /** Offset just past the image's last byte (IEND chunk, EOI marker, RIFF end). */
  end: number;
  /** Non-pixel parts (metadata, comments, unknown chunks): scanned for every marker. */
  metadata: Region[];
  /** Decompressed text (PNG zTXt/iTXt) to scan as well. */
  texts: { label: string; data: Buffer }[];
  format: string;
}

async function inspectImage(
  reader: Reader,
  path: string,
  mimeType: string,
  opts: InspectOptions,
): Promise<{ width: number; height: number }> {
  let layout: ImageLayout;
  if (mimeType === "image/png") layout = await parsePng(reader);
  else if (mimeType === "image/jpeg") layout = await parseJpeg(reader);
  else if (mimeType === "image/webp") layout = await parseWebp(reader);
  else {
    // Another image type a policy chose to accept (GIF, BMP, …): ffmpeg reads the dimensions.
    const media = await analyseWithFfmpeg(reader, path, mimeType, opts);
    if (!media.hasVideo) throw corrupt(`it could not be read as ${mimeType}`);
    await scanRegion(reader, { start: 0, end: reader.size, label: "the file" }, STRONG_MARKERS);
    if (media.width <= 0 || media.height <= 0) throw new Rejection("validation_failed", "The image has no pixels.");
    return { width: media.width, height: media.height };
  }

  if (layout.width <= 0 || layout.height <= 0) {
    throw new Rejection("validation_failed", "The image has zero width or height.");
  }
  const trailing = reader.size - layout.end;
  if (trailing > MAX_TRAILING_BYTES) {
    throw unsupported(
      `The file has ${trailing} bytes of extra data after the end of the ${layout.format} image ` +
        "(another file may be hidden in it); only plain media files are accepted.",
    );
  }
  const regions = [...layout.metadata];
  if (trailing > 0) regions.push({ start: layout.end, end: reader.size, label: "the data after the image" });
  for (const region of regions) await scanRegion(reader, region, ALL_MARKERS);
  for (const text of layout.texts) {
    const found = new MarkerScanner(ALL_MARKERS).push(text.data);
    if (found) throw embedded(found, text.label);
  }
  // Script markers anywhere, ZIP signatures where a ZIP reader would look for them (the end).
  await scanRegion(reader, { start: 0, end: reader.size, label: "the image data" }, STRONG_MARKERS);
  const tail = { start: Math.max(0, reader.size - ZIP_TAIL_BYTES), end: reader.size, label: "the end of the file" };
  await scanRegion(reader, tail, ZIP_MARKERS);
  return { width: layout.width, height: layout.height };
}

// PNG: signature, then chunks (length, type, data, CRC); IHDR first, IEND last.

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Valid bit depths per colour type (PNG spec table 11.1). */
const PNG_BIT_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

async function parsePng(reader: Reader): Promise<ImageLayout> {
  const signature = await reader.bytes(0, 8, "the PNG signature is cut off");
  if (!signature.equals(PNG_SIGNATURE)) throw corrupt("bad PNG signature");
  const layout: ImageLayout = { width: 0, height: 0, end: 0, metadata: [], texts: [], format: "PNG" };
  let offset = 8;
  let sawHeader = false;
  let sawData = false;
  for (;;) {
    if (offset >= reader.size) throw corrupt("the PNG ends before its IEND chunk");
    const header = await reader.bytes(offset, 8, "a PNG chunk header is cut off");
    const length = header.readUInt32BE(0);
    const type = header.toString("latin1", 4, 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw corrupt("invalid PNG chunk type");
    if (length > 0x7fffffff) throw corrupt(`invalid length for PNG chunk ${type}`);
    const dataStart = offset + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > reader.size) throw corrupt(`the PNG chunk ${type} extends past the end of the file`);
    if (!sawHeader && type !== "IHDR") throw corrupt("the PNG does not start with an IHDR chunk");

    let crc = crc32Update(CRC_INITIAL, header.subarray(4, 8));
    for await (const { data } of reader.blocks(dataStart, dataEnd)) crc = crc32Update(crc, data);
    const stored = (await reader.bytes(dataEnd, 4, "")).readUInt32BE(0);
    if ((crc ^ CRC_INITIAL) >>> 0 !== stored) throw corrupt(`the PNG chunk ${type} has a bad checksum`);

    if (type === "IHDR") {
      if (sawHeader) throw corrupt("the PNG has two IHDR chunks");
      if (length !== 13) throw corrupt("invalid PNG IHDR chunk");
      const ihdr = await reader.bytes(dataStart, 13, "");
      layout.width = ihdr.readUInt32BE(0);
      layout.height = ihdr.readUInt32BE(4);
      const bitDepth = ihdr.readUInt8(8);
      const colorType = ihdr.readUInt8(9);
      if (!PNG_BIT_DEPTHS[colorType]?.includes(bitDepth)) throw corrupt("invalid PNG colour type or bit depth");
      sawHeader = true;
    } else if (type === "IDAT") {
      sawData = true;
    } else if (type === "IEND") {
      if (!sawData) throw corrupt("the PNG has no image data");
      layout.end = dataEnd + 4;
      return layout;
    } else if (type !== "fdAT") {
      // Everything else is metadata (text, colour profiles, private chunks).
      const label = `a PNG ${type} chunk`;
      layout.metadata.push({ start: dataStart, end: dataEnd, label });
      if (type === "zTXt" || type === "iTXt") {
        const text = await pngCompressedText(reader, type, dataStart, length);
        if (text) layout.texts.push({ label, data: text });
      }
    }
    offset = dataEnd + 4;
  }
}

/** The decompressed text of a zTXt chunk, or of an iTXt chunk with its compression flag set. */
async function pngCompressedText(reader: Reader, type: string, start: number, length: number): Promise<Buffer | null> {
  const data = await reader.bytes(start, length, "");
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 1) throw corrupt(`invalid PNG ${type} chunk`);
  let compressed: Buffer;
  if (type === "zTXt") {
    compressed = data.subarray(keywordEnd + 2);
  } else {
    if (data[keywordEnd + 1] !== 1) return null;
    const languageEnd = data.indexOf(0, keywordEnd + 3);
    const translatedEnd = languageEnd < 0 ? -1 : data.indexOf(0, languageEnd + 1);
    if (translatedEnd < 0) throw corrupt(`invalid PNG ${type} chunk`);
    compressed = data.subarray(translatedEnd + 1);
  }
  try {
    return inflateSync(compressed, { maxOutputLength: MAX_INFLATED_TEXT_BYTES });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw unsupported(
        `The file contains an oversized compressed text chunk (${type}); only plain media files are accepted.`,
      );
    }
    throw corrupt(`a compressed PNG ${type} chunk cannot be decompressed`);
  }
}

// JPEG: SOI, marker segments, entropy-coded scans after each SOS, EOI.

async function parseJpeg(reader: Reader): Promise<ImageLayout> {
  const soi = await reader.bytes(0, 2, "the JPEG is cut off");
  if (soi[0] !== 0xff || soi[1] !== 0xd8) throw corrupt("bad JPEG start marker");
  const layout: ImageLayout = { width: 0, height: 0, end: 0, metadata: [], texts: [], format: "JPEG" };
  let sawFrame = false;
  let offset = 2;
  const ended = "the JPEG ends before its EOI marker";
  for (;;) {
    if ((await reader.bytes(offset, 1, ended))[0] !== 0xff) throw corrupt("a JPEG segment is malformed");
    // Any number of 0xFF fill bytes may precede a marker code.
    let code = (await reader.bytes(offset + 1, 1, ended))[0] as number;
    while (code === 0xff) {
      offset++;
      code = (await reader.bytes(offset + 1, 1, ended))[0] as number;
    }
    if (code === 0xd9) {
      if (!sawFrame) throw corrupt("the JPEG has no frame header");
      layout.end = offset + 2;
      return layout;
    }
    if (code === 0x00 || code === 0xd8) throw corrupt("a JPEG segment is malformed");
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) {
      // Parameterless markers (RSTn, TEM).
      offset += 2;
      continue;
    }
    const length = (await reader.bytes(offset + 2, 2, ended)).readUInt16BE(0);
    if (length < 2) throw corrupt("a JPEG segment is malformed");
    const segmentEnd = offset + 2 + length;
    if (segmentEnd > reader.size) throw corrupt("a JPEG segment extends past the end of the file");

    if (isStartOfFrame(code)) {
      if (length < 8) throw corrupt("invalid JPEG frame header");
      const frame = await reader.bytes(offset + 4, 6, "");
      if (!sawFrame) {
        layout.height = frame.readUInt16BE(1);
        layout.width = frame.readUInt16BE(3);
        sawFrame = true;
      }
    } else if (code === 0xda) {
      if (!sawFrame) throw corrupt("the JPEG has image data before its frame header");
      offset = await findMarkerAfterScan(reader, segmentEnd);
      continue;
    } else if (code === 0xfe) {
      layout.metadata.push({ start: offset + 4, end: segmentEnd, label: "a JPEG comment" });
    } else if (code >= 0xe0 && code <= 0xef) {
      // Skipping APPn by its length also skips any EXIF thumbnail (a whole JPEG with its own EOI).
      layout.metadata.push({ start: offset + 4, end: segmentEnd, label: `a JPEG APP${code - 0xe0} segment` });
    }
    offset = segmentEnd;
  }
}

/** SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
function isStartOfFrame(code: number): boolean {
  return code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc;
}

/**
 * Skips entropy-coded data: returns the offset of the next real marker. Inside a scan 0xFF is
 * followed by 0x00 (stuffing), RSTn or more 0xFF fill bytes; anything else starts a marker.
 */
async function findMarkerAfterScan(reader: Reader, start: number): Promise<number> {
  let pendingFF = -1;
  for await (const { offset, data } of reader.blocks(start, reader.size)) {
    let i = 0;
    if (pendingFF >= 0) {
      const next = data[0] as number;
      if (next !== 0x00 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) return pendingFF;
      pendingFF = -1;
      i = next === 0xff ? 0 : 1;
    }
    for (;;) {
      const j = data.indexOf(0xff, i);
      if (j < 0) break;
      if (j + 1 >= data.length) {
        pendingFF = offset + j;
        break;
      }
      const next = data[j + 1] as number;
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i = j + 2;
      else if (next === 0xff) i = j + 1;
      else return offset + j;
    }
  }
  throw corrupt("the JPEG ends inside its image data (no EOI marker)");
}

// WEBP: RIFF container ("RIFF", size, "WEBP") holding VP8 / VP8L / VP8X (+ metadata) chunks.

/** Chunks holding image data (not scanned for short markers). */
const WEBP_IMAGE_CHUNKS = new Set(["VP8 ", "VP8L", "ALPH", "ANMF", "VP8X", "ANIM"]);

async function parseWebp(reader: Reader): Promise<ImageLayout> {
  const header = await reader.bytes(0, 12, "the WEBP header is cut off");
  if (header.toString("latin1", 0, 4) !== "RIFF" || header.toString("latin1", 8, 12) !== "WEBP") {
    throw corrupt("bad WEBP header");
  }
  const riffEnd = 8 + header.readUInt32LE(4);
  if (riffEnd > reader.size) throw corrupt("the WEBP file is shorter than its RIFF header says");
  const layout: ImageLayout = { width: 0, height: 0, end: riffEnd, metadata: [], texts: [], format: "WEBP" };
  let canvas: { width: number; height: number } | null = null;
  let hasImage = false;
  let offset = 12;
  while (offset < riffEnd) {
    const chunk = await reader.bytes(offset, 8, "a WEBP chunk header is cut off");
    if (offset + 8 > riffEnd) throw corrupt("a WEBP chunk header is cut off");
    const type = chunk.toString("latin1", 0, 4);
    const length = chunk.readUInt32LE(4);
    const dataStart = offset + 8;
    const dataEnd = dataStart + length;
    if (dataEnd > riffEnd)
      throw corrupt(`the WEBP chunk ${JSON.stringify(type.trim())} extends past the end of the file`);
    if (offset === 12 && type !== "VP8 " && type !== "VP8L" && type !== "VP8X") {
      throw corrupt("the WEBP has no image header");
    }
    if (type === "VP8X") {
      if (length < 10) throw corrupt("invalid WEBP VP8X chunk");
      const data = await reader.bytes(dataStart, 10, "");
      canvas = { width: 1 + data.readUIntLE(4, 3), height: 1 + data.readUIntLE(7, 3) };
    } else if (type === "VP8 ") {
      if (length < 10) throw corrupt("invalid WEBP VP8 chunk");
      const data = await reader.bytes(dataStart, 10, "");
      if (data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) throw corrupt("invalid WEBP VP8 chunk");
      if (!hasImage) {
        layout.width = data.readUInt16LE(6) & 0x3fff;
        layout.height = data.readUInt16LE(8) & 0x3fff;
      }
      hasImage = true;
    } else if (type === "VP8L") {
      if (length < 5) throw corrupt("invalid WEBP VP8L chunk");
      const data = await reader.bytes(dataStart, 5, "");
      if (data[0] !== 0x2f) throw corrupt("invalid WEBP VP8L chunk");
      const bits = data.readUInt32LE(1);
      if (!hasImage) {
        layout.width = (bits & 0x3fff) + 1;
        layout.height = ((bits >>> 14) & 0x3fff) + 1;
      }
      hasImage = true;
    } else if (type === "ANMF") {
      hasImage = true;
    }
    if (!WEBP_IMAGE_CHUNKS.has(type)) {
      layout.metadata.push({ start: dataStart, end: dataEnd, label: `a WEBP ${type.trim()} chunk` });
    }
    // Chunks are padded to an even size; tolerate a missing pad byte on the last one.
    offset = Math.min(dataEnd + (length & 1), riffEnd);
  }
  if (!hasImage) throw corrupt("the WEBP has no image data");
  if (canvas) {
    layout.width = canvas.width;
    layout.height = canvas.height;
  }
  return layout;
}

// CRC-32 (PNG chunks); zlib.crc32 only exists from Node 20.15.

const CRC_INITIAL = 0xffffffff;
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32Update(crc: number, data: Uint8Array): number {
  let c = crc;
  for (let i = 0; i < data.length; i++) c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

// --- Video and audio -------------------------------------------------------------------------

/** ISO-BMFF types: read with the box probe. */
const ISO_BMFF_TYPES = new Set(["video/mp4", "video/quicktime", "audio/mp4", "video/3gpp", "video/3gpp2"]);

async function analyseMedia(reader: Reader, path: string, mimeType: string, opts: InspectOptions): Promise<MediaInfo> {
  if (!ISO_BMFF_TYPES.has(mimeType)) return analyseWithFfmpeg(reader, path, mimeType, opts);
  checkAborted(opts.signal);
  let info: Awaited<ReturnType<typeof probeMp4>>;
  try {
    info = await probeMp4(path);
  } catch (err) {
    // I/O errors are ours; anything else is the file's structure.
    if ((err as NodeJS.ErrnoException).code !== undefined) throw err;
    throw corrupt(`the ${mimeType === "video/quicktime" ? "QuickTime" : "MP4"} structure could not be read`);
  }
  checkAborted(opts.signal);
  let durationSeconds: number | null = info.durationSeconds;
  if (!(durationSeconds > 0)) {
    // Fragmented MP4 (MediaRecorder, live recorders) has no durations in moov; ffmpeg reads the fragments.
    durationSeconds = (await analyseWithFfmpeg(reader, path, mimeType, opts)).durationSeconds;
  }
  return {
    hasVideo: info.videoCodec !== null || info.width > 0,
    hasAudio: info.hasAudio,
    width: info.width,
    height: info.height,
    durationSeconds,
  };
}

/** ffmpeg demuxer per type: forcing it keeps ffmpeg from reinterpreting the file (playlists, …). */
const FFMPEG_DEMUXERS: Readonly<Record<string, string>> = {
  "video/mp4": "mov",
  "video/quicktime": "mov",
  "audio/mp4": "mov",
  "video/3gpp": "mov",
  "video/3gpp2": "mov",
  "video/webm": "matroska",
  "audio/webm": "matroska",
  "video/matroska": "matroska",
  "audio/mpeg": "mp3",
  "audio/wav": "wav",
  "audio/aac": "aac",
  "audio/ogg": "ogg",
  "video/ogg": "ogg",
  "audio/flac": "flac",
  "image/gif": "gif",
  "image/bmp": "bmp_pipe",
};

async function analyseWithFfmpeg(
  reader: Reader,
  path: string,
  mimeType: string,
  opts: InspectOptions,
): Promise<MediaInfo> {
  // Containers whose end ffmpeg does not check: a cut-off file would pass as a shorter one.
  let exactDuration: number | null = null;
  if (mimeType === "audio/aac") exactDuration = await checkAdts(reader);
  else if (mimeType === "audio/ogg" || mimeType === "video/ogg") await checkOggPages(reader);
  else if (mimeType === "audio/wav") await checkRiffSize(reader);

  const demuxer = FFMPEG_DEMUXERS[mimeType];
  const timeoutMs = opts.ffmpegTimeoutMs ?? FFMPEG_TIMEOUT_MS;
  const run = await runFfmpeg(opts.ffmpegPath, path, demuxer, timeoutMs, opts.signal);
  if (run.timedOut) {
    throw new Rejection("validation_failed", `The file could not be analysed within ${timeoutMs / 1000} s.`);
  }
  const report = parseFfmpegReport(run.stderr);
  if (run.exitCode !== 0 || report.fatal || !report.opened) throw corrupt(`it could not be read as ${mimeType}`);

  // Header duration, unless ffmpeg only guessed it from the bitrate (ADTS AAC, CBR MP3 without
  // a Xing header) or it is missing (WebM from MediaRecorder): then the last packet's time.
  let duration = report.headerSeconds !== null && report.headerSeconds > 0 ? report.headerSeconds : null;
  if ((report.estimated || duration === null) && report.demuxedSeconds !== null && report.demuxedSeconds > 0) {
    duration = report.demuxedSeconds;
  }
  if (exactDuration !== null) duration = exactDuration;
  // Audio packets are short (≤ 0.52 s even for 8 kHz WAV), so a file whose packets stop well
  // before the announced duration has lost its end. Video frames may legitimately be sparse.
  if (
    report.hasAudio &&
    !report.hasVideo &&
    !report.estimated &&
    report.headerSeconds !== null &&
    report.demuxedSeconds !== null &&
    report.demuxedSeconds < report.headerSeconds - Math.max(0.6, 0.1 * report.headerSeconds)
  ) {
    throw corrupt("its audio stops before the duration its header announces");
  }
  return {
    hasVideo: report.hasVideo,
    hasAudio: report.hasAudio,
    width: report.width,
    height: report.height,
    durationSeconds: duration,
  };
}

/**
 * Walks the ADTS frames of a raw AAC stream (after an optional ID3v2 tag): a last frame that
 * runs past the end of the file means the file was cut. Returns the exact duration.
 */
async function checkAdts(reader: Reader): Promise<number | null> {
  let offset = id3v2End(await reader.bytes(0, Math.min(10, reader.size), ""));
  let samples = 0;
  let sampleRate = 0;
  while (offset + 7 <= reader.size) {
    const h = await reader.bytes(offset, 7, "");
    // Not a frame header: trailing tags (ID3v1, APE) or junk; ffmpeg judges the rest.
    if (h[0] !== 0xff || ((h[1] as number) & 0xf6) !== 0xf0) break;
    const frameLength = (((h[3] as number) & 0x03) << 11) | ((h[4] as number) << 3) | ((h[5] as number) >> 5);
    if (frameLength < 7) throw corrupt("an AAC frame header is invalid");
    if (offset + frameLength > reader.size) throw corrupt("the last AAC frame is cut off");
    const rate = ADTS_SAMPLE_RATES[((h[2] as number) >> 2) & 0x0f];
    if (rate === undefined) throw corrupt("an AAC frame header is invalid");
    sampleRate = rate;
    samples += 1024 * (((h[6] as number) & 0x03) + 1);
    offset += frameLength;
  }
  if (offset < reader.size && reader.size - offset < 7) throw corrupt("the last AAC frame is cut off");
  return sampleRate > 0 && samples > 0 ? samples / sampleRate : null;
}

/** Offset just past a leading ID3v2 tag (0 without one). */
function id3v2End(head: Uint8Array): number {
  if (head.length < 10 || head[0] !== 0x49 || head[1] !== 0x44 || head[2] !== 0x33) return 0;
  const size =
    ((head[6] as number) << 21) | ((head[7] as number) << 14) | ((head[8] as number) << 7) | (head[9] as number);
  return 10 + size + ((head[5] as number) & 0x10 ? 10 : 0);
}

const ADTS_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** Walks the Ogg pages: the file must end exactly at the end of a complete page. */
async function checkOggPages(reader: Reader): Promise<void> {
  let offset = 0;
  while (offset < reader.size) {
    const header = await reader.bytes(offset, 27, "the last Ogg page is cut off");
    if (header.toString("latin1", 0, 4) !== "OggS") throw corrupt("unexpected data in the Ogg stream");
    const segments = header[26] as number;
    const table = await reader.bytes(offset + 27, segments, "the last Ogg page is cut off");
    let bodySize = 0;
    for (const lacing of table) bodySize += lacing;
    const pageEnd = offset + 27 + segments + bodySize;
    if (pageEnd > reader.size) throw corrupt("the last Ogg page is cut off");
    offset = pageEnd;
  }
}

/** A WAV's RIFF header gives the file's length (0 and 0xFFFFFFFF mean "unknown", as streamed WAVs write). */
async function checkRiffSize(reader: Reader): Promise<void> {
  const header = await reader.bytes(0, 12, "the WAV header is cut off");
  const size = header.readUInt32LE(4);
  if (size === 0 || size === 0xffffffff) return;
  if (8 + size > reader.size) throw corrupt("the WAV file is shorter than its RIFF header says");
}

interface FfmpegRun {
  exitCode: number | null;
  timedOut: boolean;
  stderr: string;
}

/** Keeps the head (stream listing) and the tail (final stats) of ffmpeg's stderr. */
const STDERR_HEAD_CHARS = 64 * 1024;
const STDERR_TAIL_CHARS = 8 * 1024;

/**
 * `ffmpeg -i file -c copy -f null -`: opens the file, prints what it found, then reads every
 * packet without decoding (fast) so errors in the middle or at the end of the file show up.
 */
function runFfmpeg(
  ffmpegPath: string,
  file: string,
  demuxer: string | undefined,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<FfmpegRun> {
  return new Promise<FfmpegRun>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const args = ["-hide_banner", "-nostdin", "-nostats", "-protocol_whitelist", "file"];
    if (demuxer) args.push("-f", demuxer);
    // "file:" so that a name like "concat:…" or "http:…" can never be taken for a protocol.
    args.push("-i", `file:${file}`, "-c", "copy", "-f", "null", "-");
    const child = spawn(ffmpegPath, args, { stdio: ["ignore", "ignore", "pipe"], windowsHide: true });
    let head = "";
    let tail = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (head.length < STDERR_HEAD_CHARS) head += chunk.slice(0, STDERR_HEAD_CHARS - head.length);
      tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const onAbort = () => child.kill("SIGKILL");
    signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    child.once("error", (err) => {
      cleanup();
      reject(new Error(`could not start ffmpeg (${ffmpegPath}): ${err.message}`));
    });
    child.once("close", (code) => {
      cleanup();
      if (signal?.aborted) reject(abortError(signal));
      else resolve({ exitCode: code, timedOut, stderr: head.length < STDERR_HEAD_CHARS ? head : `${head}\n${tail}` });
    });
  });
}

export interface FfmpegReport {
  /** ffmpeg recognised the input (printed an "Input #0" section). */
  opened: boolean;
  headerSeconds: number | null;
  /** ffmpeg said "Estimating duration from bitrate": the header duration is a guess. */
  estimated: boolean;
  /** Timestamp of the last packet read (the final "time=" of the stats line). */
  demuxedSeconds: number | null;
  hasVideo: boolean;
  hasAudio: boolean;
  /** Size of the first video stream that is not cover art; 0 without one. */
  width: number;
  height: number;
  /** Messages that mean the data is damaged. */
  fatal: boolean;
}

const FATAL_PATTERNS = [
  /Invalid data found when processing input/i,
  /corrupt input packet/i,
  /\bRead error\b/i,
  /Truncating packet/i,
  /moov atom not found/i,
  /EBML header parsing failed/i,
  /no 'data' tag found/i,
  // MP3 whose Xing/Info header announces a different size: the end is missing.
  /filesize and duration do not match/i,
];

/** Parses `ffmpeg -hide_banner -i file -c copy -f null -` stderr (ffmpeg 4.x wording). Exported for tests. */
export function parseFfmpegReport(stderr: string): FfmpegReport {
  const text = stderr.replace(/\r/g, "\n");
  const inputAt = text.search(/^Input #0,/m);
  const report: FfmpegReport = {
    opened: inputAt >= 0,
    headerSeconds: null,
    estimated: /Estimating duration from bitrate/.test(text),
    demuxedSeconds: null,
    hasVideo: false,
    hasAudio: false,
    width: 0,
    height: 0,
    fatal: FATAL_PATTERNS.some((p) => p.test(text)),
  };
  for (const m of text.matchAll(/\btime=\s*(-?\d+):(\d{2}):(\d{2}(?:\.\d+)?)/g)) {
    report.demuxedSeconds = hms(m[1], m[2], m[3]);
  }
  if (inputAt < 0) return report;
  // The input section ends where the output section or stream mapping starts.
  const rest = text.slice(inputAt);
  const endAt = rest.search(/^(Output #0|Stream mapping:)/m);
  const input = endAt >= 0 ? rest.slice(0, endAt) : rest;
  const duration = /Duration: (?:(\d+):(\d{2}):(\d{2}(?:\.\d+)?)|N\/A)/.exec(input);
  if (duration?.[1] !== undefined) report.headerSeconds = hms(duration[1], duration[2], duration[3]);
  for (const m of input.matchAll(/^\s*Stream #0:\d+\S*: (Video|Audio): (.*)$/gm)) {
    const details = m[2] ?? "";
    if (m[1] === "Audio") {
      report.hasAudio = true;
    } else if (!/\(attached pic\)/.test(details)) {
      if (!report.hasVideo) {
        const size = /(?:^|[\s,])([1-9]\d{0,5})x([1-9]\d{0,5})(?=[\s,[]|$)/.exec(details);
        if (size) {
          report.width = Number(size[1]);
          report.height = Number(size[2]);
        }
      }
      report.hasVideo = true;
    }
  }
  return report;
}

function hms(h: string | undefined, m: string | undefined, s: string | undefined): number {
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}
