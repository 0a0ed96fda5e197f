/**
 * Poster frames: one JPEG per result video, taken from the mirrored file with ffmpeg when the
 * result is finalized, stored beside the video and signed like it (`poster_url`).
 *
 * The video is the product and the poster a convenience: a frame that cannot be made leaves
 * `poster_url` null and the task still succeeds. ffmpeg reads only the local file (no protocol but
 * `file`, so a crafted MP4 cannot make it fetch anything), is killed at a deadline, and its output
 * must be a JPEG of the video's size before it is kept.
 *
 * The same upstream file can be the result of several tasks (the simulator's reuse mode, a
 * finalize run twice): the posters of the last few distinct videos are kept as files in a cache
 * directory, by the video's SHA-256, so those tasks cost a hard link (local storage) or an upload,
 * not another ffmpeg run. Writing each poster anew cost the end-to-end bench a third of its
 * throughput: every write is several file-system calls on libuv's four threads.
 */
import { spawn } from "node:child_process";
import { hash } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";

/** Where the frame is taken: a tenth into the video, at most 1 s (past fade-ins, still early). */
export function posterTimeSeconds(durationSeconds: number): number {
  return Math.min(1, Math.max(0, durationSeconds * 0.1));
}

const DEFAULT_TIMEOUT_MS = 20_000;
const CACHE_ENTRIES = 32;

export interface PosterInput {
  path: string;
  width: number;
  height: number;
  durationSeconds: number;
  /** The video's digest: posters of the same video are made once. */
  sha256: string;
}

/** A poster ready to store: a file of the cache (do not change or delete it), its size and digest. */
export interface PosterFile {
  path: string;
  size: number;
  sha256: string;
}

export class PosterMaker {
  /** Posters by video digest, least recently used first. */
  private readonly cache = new Map<string, PosterFile>();
  /** Posters being made now, by digest: a second task of the same video waits for the first. */
  private readonly making = new Map<string, Promise<PosterFile | undefined>>();

  /** `cacheDir` is emptied now and holds the cached posters while this process runs. */
  constructor(
    private readonly ffmpegPath: string,
    private readonly cacheDir: string,
    private readonly log: Logger,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    rmSync(cacheDir, { recursive: true, force: true });
    mkdirSync(cacheDir, { recursive: true });
  }

  /** The poster of `video`, or undefined when no frame could be taken (logged). */
  async make(video: PosterInput): Promise<PosterFile | undefined> {
    const key = video.sha256;
    const cached = this.cache.get(key);
    if (cached) {
      // Most recently used last: the oldest entry is the one evicted.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    let pending = this.making.get(key);
    if (!pending) {
      pending = this.extract(video, `${key}.jpg`).finally(() => this.making.delete(key));
      this.making.set(key, pending);
    }
    const poster = await pending;
    if (poster && !this.cache.has(key)) {
      this.cache.set(key, poster);
      if (this.cache.size > CACHE_ENTRIES) {
        const [oldest, evicted] = this.cache.entries().next().value as [string, PosterFile];
        this.cache.delete(oldest);
        // A task still storing it fails that store and goes on without a poster (mirror.ts).
        void rm(evicted.path, { force: true });
      }
    }
    return poster;
  }

  /** Takes the frame into the cache directory as `name`. */
  private async extract(video: PosterInput, name: string): Promise<PosterFile | undefined> {
    const dir = await mkdtemp(join(this.cacheDir, "making-"));
    const out = join(dir, "poster.jpg");
    try {
      const failure = await this.runFfmpeg(video, out);
      if (failure) {
        this.log.warn({ reason: failure }, "no poster frame: ffmpeg could not take one");
        return undefined;
      }
      const jpeg = await readFile(out);
      const size = jpegSize(jpeg);
      // The video's size, or its transpose (a rotated video's frame comes out upright).
      const fits =
        size !== undefined &&
        ((size.width === video.width && size.height === video.height) ||
          (size.width === video.height && size.height === video.width));
      if (!fits) {
        this.log.warn(
          { size, video: { width: video.width, height: video.height } },
          "no poster frame: unexpected output",
        );
        return undefined;
      }
      const path = join(this.cacheDir, name);
      await rename(out, path);
      return { path, size: jpeg.length, sha256: hash("sha256", jpeg) };
    } catch (error) {
      this.log.warn({ err: error }, "no poster frame");
      return undefined;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Runs ffmpeg; a short reason on failure, undefined on success. */
  private runFfmpeg(video: PosterInput, out: string): Promise<string | undefined> {
    const args = [
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "error",
      "-protocol_whitelist",
      "file",
      "-ss",
      posterTimeSeconds(video.durationSeconds).toFixed(3),
      // "file:" so that a path can never be taken for another protocol.
      "-i",
      `file:${video.path}`,
      "-map",
      "0:v:0",
      "-frames:v",
      "1",
      "-q:v",
      "3",
      "-f",
      "image2",
      "-c:v",
      "mjpeg",
      "-y",
      `file:${out}`,
    ];
    return new Promise((resolve) => {
      const child = spawn(this.ffmpegPath, args, { stdio: ["ignore", "ignore", "pipe"], windowsHide: true });
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        if (stderr.length < 2000) stderr += chunk;
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, this.timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        resolve(`could not start ffmpeg: ${err.message}`);
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        if (timedOut) resolve(`timed out after ${this.timeoutMs} ms`);
        else if (code !== 0) resolve(`exit code ${code}: ${stderr.trim().slice(0, 300)}`);
        else resolve(undefined);
      });
    });
  }
}

/** Width and height from a baseline or progressive JPEG's SOF segment; undefined if it is not a JPEG. */
export function jpegSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] as number;
    // Fill bytes and markers without a length.
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const length = bytes.readUInt16BE(at + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (at + 9 > bytes.length) return undefined;
      return { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) };
    }
    at += 2 + length;
  }
  return undefined;
}
