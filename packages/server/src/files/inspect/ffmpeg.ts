import { spawn } from "node:child_process";
import { abortError } from "./rejection.js";

export interface FfmpegRun {
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
export function runFfmpeg(
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
