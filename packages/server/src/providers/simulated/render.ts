/**
 * Renders the simulated provider's output: a real, playable H.264 MP4 (plus AAC when sound is
 * on) that shows the prompt and a big "SIMULATED" label, optionally starting from a reference
 * image. ffmpeg runs as a child process so rendering never blocks the event loop.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { configureSharp } from "../../media/image-decode.js";

export interface RenderSpec {
  /** Text drawn in the video (directives already stripped by the caller). */
  prompt: string;
  durationSeconds: number;
  width: number;
  height: number;
  fps: number;
  /** Adds an AAC audio track; when false the file has no audio stream at all. */
  sound: boolean;
  referenceImagePath?: string;
  outputPath: string;
}

export interface RenderOptions {
  ffmpegPath: string;
  /**
   * Font for drawtext. A missing file falls back to `findFont()`. `null` forces the text-free
   * fallback (a drawbox banner), which is what machines without any font get anyway.
   */
  fontPath?: string | null;
  signal?: AbortSignal;
}

const FONT_CANDIDATES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSans.ttf",
  "/System/Library/Fonts/Supplemental/Arial.ttf",
  "/Library/Fonts/Arial.ttf",
  "C:\\Windows\\Fonts\\arial.ttf",
];
const FONT_DIRS = ["/usr/share/fonts", "/usr/local/share/fonts"];

/** The directory scan is the only slow part of font lookup, so it runs once per process. */
let scannedFont: string | null | undefined;

/**
 * Finds a TrueType font for drawtext: `preferred` if it exists, then well-known paths, then any
 * .ttf under the system font directories. Returns null when the machine has no usable font.
 */
export function findFont(preferred?: string): string | null {
  if (preferred && isFile(preferred)) return preferred;
  for (const candidate of FONT_CANDIDATES) {
    if (isFile(candidate)) return candidate;
  }
  if (scannedFont === undefined) scannedFont = scanFontDirs();
  return scannedFont;
}

function scanFontDirs(): string | null {
  const found: string[] = [];
  for (const dir of FONT_DIRS) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir, { recursive: true, encoding: "utf8" });
    } catch {
      continue;
    }
    for (const entry of entries) {
      // Colour emoji fonts are bitmap-only and make drawtext fail at init.
      if (/\.ttf$/i.test(entry) && !/emoji/i.test(entry)) found.push(path.join(dir, entry));
    }
  }
  // Prefer a plain sans face so the output looks the same across distributions.
  found.sort((a, b) => fontRank(a) - fontRank(b) || a.localeCompare(b));
  return found.find(isFile) ?? null;
}

function fontRank(file: string): number {
  const name = path.basename(file);
  if (/^DejaVuSans\.ttf$/i.test(name)) return 0;
  if (/sans/i.test(name) && !/(mono|italic|oblique|light|condensed)/i.test(name)) return 1;
  if (/sans/i.test(name)) return 2;
  return 3;
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Escapes a value used as a filter option inside a -filter_complex graph. ffmpeg unescapes twice
 * (graph level, then option level), see "Notes on filtergraph escaping" in ffmpeg-filters(1).
 */
export function escapeFilterValue(value: string): string {
  const optionLevel = value.replace(/[\\':]/g, (c) => `\\${c}`);
  return optionLevel.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
}

/**
 * Word-wraps the prompt into at most `maxLines` lines of `maxChars` code points. Counting code
 * points (not UTF-16 units) keeps emoji and other astral characters intact.
 */
export function wrapText(text: string, maxChars: number, maxLines: number): string[] {
  // Control characters would show up as boxes (or as line breaks we did not choose).
  const words = text
    .replace(/\p{Cc}/gu, " ")
    .split(/\s+/u)
    .filter((w) => w.length > 0);
  const lines: string[] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length > 0) lines.push(current.join(""));
    current = [];
  };
  for (const word of words) {
    let chars = Array.from(word);
    if (current.length > 0 && current.length + 1 + chars.length <= maxChars) {
      current.push(" ", ...chars);
      continue;
    }
    flush();
    // Words longer than a line are hard-broken rather than overflowing the frame.
    while (chars.length > maxChars) {
      lines.push(chars.slice(0, maxChars).join(""));
      chars = chars.slice(maxChars);
    }
    current = chars;
  }
  flush();
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    const last = Array.from(kept[maxLines - 1] ?? "").slice(0, Math.max(0, maxChars - 1));
    kept[maxLines - 1] = `${last.join("").trimEnd()}…`;
    return kept;
  }
  return lines;
}

function validateSpec(spec: RenderSpec): void {
  const { width, height, fps, durationSeconds } = spec;
  // libx264 with yuv420p needs even dimensions; catching it here gives a clearer error.
  for (const [name, value] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isInteger(value) || value < 16 || value > 7680 || value % 2 !== 0) {
      throw new Error(`invalid render ${name} ${value}: must be an even integer between 16 and 7680`);
    }
  }
  if (!Number.isFinite(fps) || fps < 1 || fps > 120) throw new Error(`invalid render fps ${fps}`);
  if (!Number.isFinite(durationSeconds) || durationSeconds <= 0 || durationSeconds > 3600) {
    throw new Error(`invalid render duration ${durationSeconds}`);
  }
}

/** Builds the -filter_complex graph; labels the video output [v] and the audio output [a]. */
function buildFilterGraph(spec: RenderSpec, font: string | null, textFile: string | null): string {
  const { width: W, height: H, fps, durationSeconds: D } = spec;
  const frames = Math.max(1, Math.round(D * fps));
  const short = Math.min(W, H);
  const chains: string[] = [];

  if (spec.referenceImagePath) {
    // Cover-crop to twice the output size first: zoompan pans on whole pixels, and the extra
    // resolution halves the visible jitter of the slow zoom.
    chains.push(
      `[0:v]scale=${2 * W}:${2 * H}:force_original_aspect_ratio=increase,crop=${2 * W}:${2 * H},setsar=1,` +
        `zoompan=z='1+0.15*on/${frames}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=${frames}:s=${W}x${H}:fps=${fps}[bg]`,
    );
  } else {
    // A slowly hue-cycling backdrop with two drifting blocks and a progress bar that fills over
    // the clip's duration, so motion and length are obvious when scrubbing.
    const block = Math.max(8, Math.round(short / 4));
    chains.push(
      `color=c=0x2b4a8a:s=${W}x${H}:r=${fps},hue=h='360*t/${D}'[base]`,
      `color=c=0xff7a59:s=${block}x${block}:r=${fps}[b1]`,
      `color=c=0x4fd1c5:s=${Math.round(block * 0.6)}x${Math.round(block * 0.6)}:r=${fps}[b2]`,
      `color=c=0xffffff:s=${W}x${Math.max(2, Math.round(H / 60))}:r=${fps}[bar]`,
      `[base][b1]overlay=x='(W-w)/2+(W-w)/2*sin(2*PI*t/4)':y='(H-h)/2+(H-h)/2*0.8*cos(2*PI*t/3)':shortest=1[m1]`,
      `[m1][b2]overlay=x='(W-w)/2+(W-w)/2*cos(2*PI*t/5)':y='(H-h)/2+(H-h)/2*sin(2*PI*t/2.5)':shortest=1[m2]`,
      `[m2][bar]overlay=x='-W+W*t/${D}':y='H-h':shortest=1[bg]`,
    );
  }

  // "SIMULATED" is 9 glyphs of roughly 0.65em; size it to fit the narrow side of 9:16 too.
  const labelSize = Math.max(8, Math.round(Math.min(H / 8, (W * 0.85) / 6.2)));
  const labelY = Math.round(H * 0.07);
  const overlays: string[] = [];
  if (font) {
    const fontOpt = `fontfile=${escapeFilterValue(font)}`;
    overlays.push(
      `drawtext=${fontOpt}:text=SIMULATED:expansion=none:fontsize=${labelSize}:fontcolor=white:` +
        `box=1:boxcolor=0xd7263d@0.85:boxborderw=${Math.round(labelSize / 4)}:x=(w-text_w)/2:y=${labelY}`,
    );
    if (textFile) {
      const textSize = Math.max(8, Math.round(short / 20));
      overlays.push(
        `drawtext=${fontOpt}:textfile=${escapeFilterValue(textFile)}:expansion=none:fontsize=${textSize}:` +
          `fontcolor=white:line_spacing=${Math.round(textSize / 3)}:box=1:boxcolor=black@0.55:` +
          `boxborderw=${Math.round(textSize / 2)}:x=(w-text_w)/2:y=max(${labelY + labelSize * 2}\\,(h-text_h)/2)`,
      );
    }
  } else {
    // No font on this machine: a solid banner where the label would be still marks the video.
    const bannerH = Math.round(labelSize * 1.6);
    overlays.push(
      `drawbox=x=0:y=${labelY}:w=iw:h=${bannerH}:color=0xd7263d@0.85:t=fill`,
      `drawbox=x=0:y=${labelY}:w=iw:h=${bannerH}:color=white:t=${Math.max(2, Math.round(bannerH / 10))}`,
    );
  }
  chains.push(`[bg]${[...overlays, "format=yuv420p"].join(",")}[v]`);

  if (spec.sound) {
    // A tone that steps through four notes, one per second, so it is audibly "generated".
    chains.push(`aevalsrc=0.2*sin(2*PI*t*(330+110*mod(floor(t)\\,4))):s=44100:c=mono[a]`);
  }
  return chains.join(";");
}

function buildArgs(spec: RenderSpec, graph: string, tmpOutput: string): string[] {
  const args = ["-hide_banner", "-nostdin", "-v", "error", "-y"];
  if (spec.referenceImagePath) args.push("-i", spec.referenceImagePath);
  args.push("-filter_complex", graph, "-map", "[v]");
  if (spec.sound) args.push("-map", "[a]", "-c:a", "aac", "-b:a", "96k", "-ar", "44100");
  else args.push("-an");
  args.push(
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "26",
    "-pix_fmt",
    "yuv420p",
    "-r",
    String(spec.fps),
    // The sources are infinite; -t on the output is what makes the duration exact.
    "-t",
    String(spec.durationSeconds),
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    tmpOutput,
  );
  return args;
}

function abortError(): Error {
  const err = new Error("render aborted");
  err.name = "AbortError";
  return err;
}

/**
 * Renders `spec` to `spec.outputPath`. The file appears atomically (temp file + rename), so a
 * present output is always complete. Rejects with the tail of ffmpeg's stderr on failure.
 */
export async function renderSimulatedVideo(spec: RenderSpec, opts: RenderOptions): Promise<void> {
  validateSpec(spec);
  const { signal } = opts;
  if (signal?.aborted) throw abortError();

  const font = opts.fontPath === null ? null : findFont(opts.fontPath);
  const dir = path.dirname(spec.outputPath);
  await mkdir(dir, { recursive: true });
  const base = `${path.basename(spec.outputPath)}.${randomBytes(6).toString("hex")}`;
  const tmpOutput = path.join(dir, `${base}.tmp`);
  let textFile: string | null = null;
  let referenceCopy: string | null = null;

  try {
    if (font) {
      const short = Math.min(spec.width, spec.height);
      const textSize = Math.max(8, Math.round(short / 20));
      const maxChars = Math.max(8, Math.floor((spec.width * 0.86) / (textSize * 0.6)));
      const maxLines = Math.max(1, Math.min(8, Math.floor((spec.height * 0.55) / (textSize * 1.4))));
      const lines = wrapText(spec.prompt, maxChars, maxLines);
      // drawtext fails on an empty text file, so an empty prompt simply draws no text.
      if (lines.length > 0) {
        textFile = path.join(dir, `${base}.txt`);
        await writeFile(textFile, lines.join("\n"), "utf8");
      }
    }
    let input = spec;
    if (spec.referenceImagePath) {
      referenceCopy = path.join(dir, `${base}.ref.png`);
      await boundedReference(spec.referenceImagePath, referenceCopy, spec);
      input = { ...spec, referenceImagePath: referenceCopy };
    }
    const args = buildArgs(input, buildFilterGraph(input, font, textFile), tmpOutput);
    await runFfmpeg(opts.ffmpegPath, args, signal);
    await rename(tmpOutput, spec.outputPath);
  } catch (err) {
    await rm(tmpOutput, { force: true });
    throw err;
  } finally {
    if (textFile) await rm(textFile, { force: true });
    if (referenceCopy) await rm(referenceCopy, { force: true });
  }
}

/**
 * ffmpeg decodes its input image whole, so a 200 MP upload would cost it 600 MB or more. The
 * filter graph cover-crops the reference to 2W×2H first anyway, so sharp does that crop here
 * (streaming: sequential read, shrink-on-load) and ffmpeg gets a PNG of exactly 2W×2H, which it
 * decodes in 2W × 2H × 4 bytes (15 MB for 1280×720). sharp's own peak is a few scanlines, except
 * for layouts decoded whole (progressive JPEG, interlaced PNG, lossless WEBP), which upload
 * inspection caps at 512 MiB (media/image-decode.ts). Animated images give their first frame.
 */
async function boundedReference(source: string, target: string, spec: RenderSpec): Promise<void> {
  configureSharp();
  try {
    await sharp(source, { sequentialRead: true })
      .resize(2 * spec.width, 2 * spec.height, { fit: "cover", position: "centre" })
      .png({ compressionLevel: 1 })
      .toFile(target);
  } catch (err) {
    // libvips names the file in its messages; the task's failure message should not.
    const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0]?.replaceAll(source, "<file>");
    throw new Error(`could not read the reference image: ${reason}`);
  }
}

function runFfmpeg(ffmpegPath: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const child = spawn(ffmpegPath, args, { stdio: ["ignore", "ignore", "pipe"], windowsHide: true });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      // Only the tail matters for the error message; cap memory for chatty failures.
      stderr = (stderr + chunk).slice(-4000);
    });
    // SIGKILL: the temp output is deleted anyway, so there is nothing for ffmpeg to finalize.
    const onAbort = () => child.kill("SIGKILL");
    signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (err) => {
      signal?.removeEventListener("abort", onAbort);
      reject(new Error(`could not start ffmpeg (${ffmpegPath}): ${err.message}`));
    });
    child.once("close", (code, killSignal) => {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) reject(abortError());
      else if (code === 0) resolve();
      else {
        const tail = stderr.trim().split("\n").slice(-8).join("\n");
        const status = code === null ? `was killed by ${killSignal}` : `exited with code ${code}`;
        reject(new Error(`ffmpeg ${status}${tail ? `: ${tail}` : ""}`));
      }
    });
  });
}
