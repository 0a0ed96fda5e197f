/**
 * GET/HEAD /media/<key>?expires=…&signature=…: signed downloads with Range support.
 *
 * These URLs are the only download URLs the API hands out, whatever the storage: they are stable
 * until the object's expiry (every read of a task or file returns the same URL), while an S3
 * presigned URL embeds its signing time and lives at most 7 days. With a storage that can presign
 * (S3) and `mediaDelivery: "redirect"`, a valid GET answers 302 to a short-lived presigned URL, so the
 * bytes come from the bucket; the client re-sends its Range header to it. With "proxy" (or local
 * storage) the bytes are streamed through this server.
 */
import { Readable } from "node:stream";
import type { Hono } from "hono";
import { ApiError } from "../errors.js";
import { MIME_BY_EXTENSION } from "../media/mime.js";
import { MEDIA_PREFIX, type UrlSigner } from "../storage/signed-urls.js";
import type { Storage } from "../storage/storage.js";
import type { Clock } from "../util/clock.js";
import type { AppEnv } from "./context.js";

/** Parses a single "bytes=a-b" range; undefined = serve everything, null = unsatisfiable. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined | null {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined; // multiple or odd ranges: ignore and send the whole file
  const [, from, to] = match;
  if (from === "" && to === "") return undefined;
  if (from === "") {
    const suffix = Number(to);
    if (suffix === 0) return null;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return null;
  return { start, end };
}

/** Lifetime of the presigned URL a redirect points to; each request to our URL makes a new one. */
export const MEDIA_REDIRECT_SECONDS = 300;

export function mountMediaRoutes(
  app: Hono<AppEnv>,
  deps: { storage: Storage; signer: UrlSigner; clock: Clock; mediaDelivery?: "redirect" | "proxy" },
) {
  app.on(["GET", "HEAD"], `${MEDIA_PREFIX}*`, async (c) => {
    const path = c.req.path;
    const problem = deps.signer.verify(path, c.req.query("expires"), c.req.query("signature"), deps.clock.now());
    if (problem) throw new ApiError("signature_invalid", `The download link is not valid: ${problem}.`);
    const key = decodeURIComponent(path.slice(MEDIA_PREFIX.length));
    const stat = await deps.storage.stat(key).catch(() => undefined);
    if (!stat) throw new ApiError("not_found", "The file no longer exists.");
    const extension = key.split(".").pop()?.toLowerCase() ?? "";
    const expires = Number(c.req.query("expires"));
    const remainingSeconds = Math.max(1, expires - Math.floor(deps.clock.now().getTime() / 1000));
    if (c.req.method === "GET" && deps.mediaDelivery === "redirect" && deps.storage.presignGet) {
      // A presigned URL is for GET only, so HEAD is still answered here from the stat.
      const location = await deps.storage.presignGet(key, Math.min(MEDIA_REDIRECT_SECONDS, remainingSeconds));
      return c.body(null, 302, { Location: location, "Cache-Control": "private, no-store" });
    }
    const headers: Record<string, string> = {
      "Content-Type": MIME_BY_EXTENSION[extension] ?? "application/octet-stream",
      "Accept-Ranges": "bytes",
      "Cache-Control": `private, max-age=${Math.max(0, expires - Math.floor(deps.clock.now().getTime() / 1000))}`,
      "Last-Modified": stat.modifiedAt.toUTCString(),
      "X-Content-Type-Options": "nosniff",
    };
    const range = parseRange(c.req.header("range"), stat.size);
    if (range === null) {
      throw new ApiError("range_not_satisfiable", "The requested range is outside the file.", {
        headers: { "Content-Range": `bytes */${stat.size}` },
      });
    }
    const length = range ? range.end - range.start + 1 : stat.size;
    headers["Content-Length"] = String(length);
    if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end}/${stat.size}`;
    const status = range ? 206 : 200;
    if (c.req.method === "HEAD") return c.body(null, status, headers);
    const stream = Readable.toWeb(deps.storage.read(key, range)) as ReadableStream;
    return c.body(stream, status, headers);
  });
}
