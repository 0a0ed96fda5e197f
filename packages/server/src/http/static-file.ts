/**
 * Sending files held in memory (the API reference's bundle, the console's build): ETag and 304,
 * gzip when the client takes it, the caller's caching and security headers.
 */
import type { Context } from "hono";
import type { AppEnv } from "./context.js";

export interface StaticFile {
  contentType: string;
  body: Buffer;
  /** The body gzipped, when that is worth sending. */
  gzipped: Buffer | undefined;
  /** A strong validator: a hash of the body, quoted. */
  etag: string;
}

/** True when the client's Accept-Encoding takes gzip (not `gzip;q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(",")) {
    const [coding, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (coding !== "gzip" && coding !== "*") continue;
    const q = params.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** If-None-Match holds this ETag (or `*`): the client's copy is current. */
function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const tag = t.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}

/** Answers with `file` (200, or 304 when the client's copy is current), with `headers` added. */
export function sendStaticFile(c: Context<AppEnv>, file: StaticFile, headers: Record<string, string>): Response {
  const common = { ...headers, ETag: file.etag, Vary: "Accept-Encoding" };
  if (notModified(c.req.header("if-none-match"), file.etag)) return c.body(null, 304, common);
  const gzipped = file.gzipped && acceptsGzip(c.req.header("accept-encoding")) ? file.gzipped : undefined;
  const body = gzipped ?? file.body;
  // A view of the same bytes, no copy; read and gzipped buffers never sit on a SharedArrayBuffer.
  const bytes = new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength);
  return c.body(bytes, 200, {
    ...common,
    "Content-Type": file.contentType,
    "Content-Length": String(body.byteLength),
    ...(gzipped ? { "Content-Encoding": "gzip" } : {}),
  });
}
