/**
 * Video and audio: MP4/QuickTime through the box probe in ../../media/mp4-probe.ts (ffmpeg only
 * for the duration of fragmented files, whose moov carries none); everything else demuxed by ffmpeg.
 */
import { Mp4TooComplexError, probeMp4 } from "../../media/mp4-probe.js";
import { checkAdts, checkOggPages, checkRiffSize } from "./audio-framing.js";
import { parseFfmpegReport, runFfmpeg } from "./ffmpeg.js";
import { FFMPEG_TIMEOUT_MS } from "./limits.js";
import type { Reader } from "./reader.js";
import { checkAborted, corrupt, Rejection, tooComplex } from "./rejection.js";
import type { InspectOptions } from "./types.js";

export interface MediaInfo {
  hasVideo: boolean;
  hasAudio: boolean;
  width: number;
  height: number;
  durationSeconds: number | null;
}

// --- Video and audio -------------------------------------------------------------------------

/** ISO-BMFF types: read with the box probe. */
const ISO_BMFF_TYPES = new Set(["video/mp4", "video/quicktime", "audio/mp4", "video/3gpp", "video/3gpp2"]);

export async function analyseMedia(
  reader: Reader,
  path: string,
  mimeType: string,
  opts: InspectOptions,
): Promise<MediaInfo> {
  if (!ISO_BMFF_TYPES.has(mimeType)) return analyseWithFfmpeg(reader, path, mimeType, opts);
  checkAborted(opts.signal);
  const container = mimeType === "video/quicktime" ? "QuickTime" : "MP4";
  let info: Awaited<ReturnType<typeof probeMp4>>;
  try {
    info = await probeMp4(path);
  } catch (err) {
    if (err instanceof Mp4TooComplexError) throw tooComplex(`the ${container} file ${err.detail}`);
    // I/O errors are ours; anything else is the file's structure.
    if ((err as NodeJS.ErrnoException).code !== undefined) throw err;
    throw corrupt(`the ${container} structure could not be read`);
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

export async function analyseWithFfmpeg(
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
