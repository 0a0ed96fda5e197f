/**
 * Downloading a finished task's media (its video, or the video's poster) through the signed URL
 * in its result: no API key is sent, as the URL carries its own signature.
 *
 * To a file path (Node): the bytes go to `<path>.<random>.part` beside it, are checked (the size the
 * server declared, and for a video the SHA-256 in the task's result), and only then renamed into
 * place, so an interrupted or corrupt download never leaves a file under the final name.
 * To a stream (a web WritableStream or a Node Writable): the bytes are written as they come, and
 * the same checks run at the end; the stream is closed when the download succeeds, aborted
 * otherwise.
 */
import { APIConnectionError, errorFromResponse, FramegateError } from "./errors.js";
import { Sha256 } from "./sha256.js";
import type { Task } from "./types.js";

export interface DownloadProgress {
  /** Bytes received so far. */
  received: number;
  /** The size the server declared (Content-Length), when it did. */
  total: number | undefined;
}

export interface DownloadOptions {
  /** Which item of `result.media` (default 0, the primary video). */
  media?: number;
  /** The item's poster frame (JPEG) instead of its video. */
  poster?: boolean;
  /** Called as bytes arrive (at most once per chunk). */
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface DownloadResult {
  bytes: number;
  /** Where the file is, for a path destination. */
  path?: string;
  /** Hex SHA-256 of the bytes (checked against the task's result for a video). */
  sha256: string;
}

/** Something to write the bytes to: a web WritableStream, or anything with Node's write/end. */
export type DownloadDestination = string | WritableStream<Uint8Array> | NodeWritableLike;

export interface NodeWritableLike {
  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean;
  end(callback?: () => void): unknown;
  destroy(error?: Error): unknown;
}

export async function downloadMedia(
  fetchImpl: typeof fetch,
  baseUrl: string,
  task: Task,
  destination: DownloadDestination,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const index = options.media ?? 0;
  const item = task.status === "succeeded" ? task.result?.media[index] : undefined;
  if (!item) {
    const what = task.status === "succeeded" ? `no media item ${index}` : `status ${task.status}, no result`;
    throw new FramegateError(`task ${task.id} has nothing to download (${what})`, { code: "no_result" });
  }
  const url = options.poster ? item.poster_url : item.url;
  if (!url) throw new FramegateError(`task ${task.id}'s media item ${index} has no poster`, { code: "no_poster" });

  let response: Response;
  try {
    response = await fetchImpl.call(
      globalThis,
      new URL(url, `${baseUrl}/`),
      options.signal ? { signal: options.signal } : {},
    );
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new APIConnectionError(`download of ${task.id} failed: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    throw errorFromResponse(response.status, response.headers, await response.text().catch(() => ""));
  }
  const declared = Number(response.headers.get("content-length") ?? "");
  const total = Number.isFinite(declared) && declared > 0 ? declared : undefined;
  // The video's digest is in the result; a poster's is not.
  const expectedSha256 = options.poster ? undefined : item.sha256;

  if (typeof destination === "string") {
    return toFile(response.body, destination, { total, expectedSha256, options });
  }
  const sink = isWebWritable(destination) ? destination.getWriter() : nodeWriter(destination);
  try {
    const { bytes, sha256 } = await copy(response.body, sink, { total, expectedSha256, options });
    await sink.close();
    return { bytes, sha256 };
  } catch (error) {
    await sink.abort(error).catch(() => {});
    throw error;
  }
}

interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(reason: unknown): Promise<void>;
}

function isWebWritable(value: DownloadDestination): value is WritableStream<Uint8Array> {
  return typeof (value as WritableStream).getWriter === "function";
}

function nodeWriter(stream: NodeWritableLike): Sink {
  return {
    write: (chunk) =>
      new Promise((resolve, reject) => {
        stream.write(chunk, (error) => (error ? reject(error) : resolve()));
      }),
    close: () => new Promise((resolve) => stream.end(() => resolve())),
    abort: async (reason) => {
      stream.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    },
  };
}

async function toFile(
  body: ReadableStream<Uint8Array>,
  path: string,
  check: { total: number | undefined; expectedSha256: string | undefined; options: DownloadOptions },
): Promise<DownloadResult> {
  // Loaded only here, for a path: the rest of the SDK runs wherever fetch does.
  const { open, rename, rm, mkdir } = (await import("node:fs")).promises;
  await mkdir(parentOf(path), { recursive: true });
  const part = `${path}.${Math.random().toString(36).slice(2, 10)}.part`;
  const file = await open(part, "w", 0o644);
  let closed = false;
  try {
    const result = await copy(
      body,
      {
        write: async (chunk) => {
          await file.write(chunk);
        },
        close: async () => {},
        abort: async () => {},
      },
      check,
    );
    await file.close();
    closed = true;
    await rename(part, path);
    return { ...result, path };
  } catch (error) {
    if (!closed) await file.close().catch(() => {});
    await rm(part, { force: true }).catch(() => {});
    throw error;
  }
}

/** Streams the body into `sink`, reporting progress, then checks the size and the digest. */
async function copy(
  body: ReadableStream<Uint8Array>,
  sink: Sink,
  check: { total: number | undefined; expectedSha256: string | undefined; options: DownloadOptions },
): Promise<{ bytes: number; sha256: string }> {
  const hash = new Sha256();
  const reader = body.getReader();
  let received = 0;
  const { signal, onProgress } = check.options;
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      hash.update(value);
      await sink.write(value);
      onProgress?.({ received, total: check.total });
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    if (signal?.aborted) throw signal.reason;
    if (error instanceof FramegateError) throw error;
    throw new APIConnectionError(`download interrupted after ${received} bytes: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (check.total !== undefined && received !== check.total) {
    throw new FramegateError(`download incomplete: received ${received} of ${check.total} bytes`, {
      code: "download_incomplete",
    });
  }
  const sha256 = hash.hex();
  if (check.expectedSha256 !== undefined && sha256 !== check.expectedSha256) {
    throw new FramegateError("downloaded bytes do not match the result's sha256", { code: "download_corrupt" });
  }
  return { bytes: received, sha256 };
}

/** The directory part of a file path ("." for a bare name), for POSIX and Windows separators. */
function parentOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (cut < 0) return ".";
  return cut === 0 ? path.slice(0, 1) : path.slice(0, cut);
}
