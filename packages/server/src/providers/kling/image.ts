/**
 * The i2v start frame. Kling takes an http(s) URL or raw base64 (no `data:` prefix) of a
 * JPEG/PNG (kling-upstreams §1.3). Our references can also be WEBP: those are converted to PNG
 * with ffmpeg and always sent as base64, since our signed URL would serve the WEBP bytes.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ProviderError, type ProviderReference } from "../provider.js";

export type SendImagesAs = "url" | "base64";

/** Kling's documented image size limit. */
export const KLING_MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const DIRECT_TYPES = new Set(["image/jpeg", "image/jpg", "image/png"]);
const CONVERTED_TYPES = new Set(["image/webp"]);
const FFMPEG_TIMEOUT_MS = 60_000;

export interface ResolvedImage {
  /** What goes into the `image` field. */
  value: string;
  transport: "url" | "base64";
  /** Set when the file was converted (e.g. "image/webp→image/png"). */
  converted?: string;
}

export interface ResolveImageOptions {
  sendImagesAs: SendImagesAs;
  /** Resolves the ffmpeg binary (only called for conversions). */
  ffmpegPath: () => Promise<string>;
}

const internal = (message: string) => new ProviderError(message, { retryable: false });

export async function resolveImage(ref: ProviderReference, opts: ResolveImageOptions): Promise<ResolvedImage> {
  const mime = ref.mimeType.toLowerCase();
  if (DIRECT_TYPES.has(mime)) {
    const useUrl = ref.url && (opts.sendImagesAs === "url" || !ref.localPath);
    if (useUrl && ref.url) {
      if (!/^https?:\/\//i.test(ref.url)) throw internal("reference URL is not http(s)");
      return { value: ref.url, transport: "url" };
    }
    if (ref.localPath) return { value: await readBase64(ref.localPath), transport: "base64" };
    throw internal("image reference has neither a URL nor a local copy");
  }
  if (CONVERTED_TYPES.has(mime)) {
    if (!ref.localPath) throw internal(`${mime} reference needs a local copy to be converted for Kling`);
    const png = await convertToKlingImage(ref.localPath, await opts.ffmpegPath());
    return { value: png.toString("base64"), transport: "base64", converted: `${mime}→image/png` };
  }
  throw new ProviderError(`Kling accepts only JPEG or PNG images, not ${mime}`, {
    retryable: false,
    reason: "invalid_input",
  });
}

async function readBase64(file: string): Promise<string> {
  try {
    return (await readFile(file)).toString("base64");
  } catch (err) {
    // Our own storage failing to read is transient from the worker's point of view.
    throw new ProviderError(`could not read the reference image: ${(err as Error).message}`, {
      retryable: true,
      retryAfterMs: 1000,
    });
  }
}

/**
 * WEBP → PNG (keeps alpha). A PNG can be several times larger than the lossy WEBP it came from;
 * if it exceeds Kling's 10 MB, a high-quality JPEG is used instead (alpha flattened).
 */
export async function convertToKlingImage(input: string, ffmpegPath: string): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), "kling-img-"));
  try {
    const png = path.join(dir, "frame.png");
    await runFfmpeg(ffmpegPath, ["-i", input, "-frames:v", "1", "-c:v", "png", "-f", "image2", png]);
    const bytes = await readFile(png);
    if (bytes.length <= KLING_MAX_IMAGE_BYTES) return bytes;
    const jpg = path.join(dir, "frame.jpg");
    await runFfmpeg(ffmpegPath, [
      "-i",
      input,
      "-frames:v",
      "1",
      "-c:v",
      "mjpeg",
      "-pix_fmt",
      "yuvj444p",
      "-q:v",
      "2",
      "-f",
      "image2",
      jpg,
    ]);
    return await readFile(jpg);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runFfmpeg(ffmpegPath: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(ffmpegPath, ["-hide_banner", "-nostdin", "-v", "error", "-y", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), FFMPEG_TIMEOUT_MS);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new ProviderError(`could not start ffmpeg to convert the image: ${err.message}`, { retryable: false }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new ProviderError(
            `ffmpeg could not convert the reference image (${signal ?? `exit ${code}`}): ${stderr.trim().slice(-300)}`,
            { retryable: false, reason: "invalid_input" },
          ),
        );
    });
  });
}
