/**
 * Content inspection for uploaded files (api-contract §6): the type is detected from the bytes
 * only, then the file is checked structurally and its metadata (dimensions, duration) measured.
 *
 * - Images (PNG, JPEG, WEBP) are parsed here, reading the file in blocks: truncated files and
 *   "polyglots" (an image with another file or markup hidden in its metadata or appended after
 *   its end) are refused, since the file is later served back from our own URLs.
 * - MP4/QuickTime use the box probe in ../../media/mp4-probe.ts (ffmpeg only for the duration of
 *   fragmented files, whose moov carries none).
 * - Everything else (WebM, MP3, WAV, AAC, Ogg, …) is demuxed by ffmpeg (`-c copy -f null`, no
 *   decoding) with a timeout; its report gives the streams, the duration, and errors seen while
 *   reading every packet, which is what catches truncated files. Containers where a cut-off file
 *   looks like a shorter valid one to ffmpeg (ADTS AAC, Ogg, WAV) get a native framing check.
 *
 * Parsers read through one large window (reader.ts) and stop at structural caps (limits.ts): a
 * file built from millions of empty chunks, segments or boxes is refused as too complex after
 * reading only up to the cap. Images past the pixel limits (InspectOptions.limits) are refused
 * as soon as their header is read.
 *
 * Failures are returned as `{ ok: false }` with a message meant for API clients (never a server
 * path or raw tool output). Exceptions are reserved for server-side problems (I/O errors, ffmpeg
 * missing) and aborts.
 */
import { open } from "node:fs/promises";
import { inspectImage } from "./image.js";
import { analyseMedia, type MediaInfo } from "./media.js";
import { Reader } from "./reader.js";
import { checkAborted, Rejection, unsupported } from "./rejection.js";
import { type FileKind, id3v2End, kindOfMimeType, normalizeMimeType, SNIFF_BYTES, sniffMimeType } from "./sniff.js";
import type { Inspection, InspectOptions } from "./types.js";

export { type FfmpegReport, parseFfmpegReport } from "./ffmpeg.js";
export { FFMPEG_TIMEOUT_MS, MAX_TRAILING_BYTES } from "./limits.js";
export { type FileKind, kindOfMimeType, normalizeMimeType, SNIFF_BYTES, sniffMimeType } from "./sniff.js";
export type { Inspection, InspectOptions } from "./types.js";

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
