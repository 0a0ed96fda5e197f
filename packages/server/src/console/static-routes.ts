/**
 * GET /console: the web console's built files (packages/console/dist), served from this origin.
 *
 * - `/console/assets/<name>`: Vite's output, whose names carry a content hash, so they are cached
 *   for a year as immutable; a name not on disk is a 404 in the error envelope (never index.html,
 *   which a browser would then try to run as a script).
 * - Any other `/console…` path: a top-level file of dist (the favicon) when one has that name,
 *   else index.html, so the console's client-side routes (/console/generations/task_…) survive
 *   a reload. index.html is revalidated on every visit: a rebuild changes the asset names in it.
 * - `/console/api/…` is left to the session routes (console/session-routes).
 *
 * Files are read on first request and kept in memory with their gzip form (the whole console is
 * about 100 kB); index.html is re-read each time (0.7 kB), so a console built after the server
 * started is picked up without a restart. When dist has no index.html the console was never
 * built: a 503 page says how to build it.
 *
 * Every response carries a CSP of this origin only (no inline script or style, no CDN): the
 * console is static files plus same-origin API calls.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { Context, Hono } from "hono";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";
import { type StaticFile, sendStaticFile } from "../http/static-file.js";

const gzipAsync = promisify(gzip);

export const CONSOLE_PATH = "/console";
const ASSETS_PREFIX = `${CONSOLE_PATH}/assets/`;
const API_PREFIX = `${CONSOLE_PATH}/api/`;

/**
 * Where `npm run build` puts the console, relative to this module in both layouts it runs from
 * (packages/server/src/console under tsx, packages/server/dist/console when compiled).
 */
export const DEFAULT_CONSOLE_DIST_DIR = fileURLToPath(new URL("../../../console/dist/", import.meta.url));

/**
 * 'self' for everything the console loads: scripts, styles, images (posters, references), media
 * (the player) and API calls. No 'unsafe-inline' anywhere: the build emits no inline script or
 * style. Nothing may frame the console (clickjacking) and forms post only here. `mediaOrigin`:
 * the one other origin images and media may come from, the bucket that /media URLs redirect to
 * under S3 redirect delivery (console/media-origin.ts); scripts and connections stay 'self'.
 */
export function consoleCsp(mediaOrigin?: string): string {
  const media = mediaOrigin ? `'self' ${mediaOrigin}` : "'self'";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${media}`,
    `media-src ${media}`,
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** The CSP when media come from this server (filesystem storage, or S3 with proxy delivery). */
export const CONSOLE_CSP = consoleCsp();

function securityHeaders(mediaOrigin: string | undefined): Record<string, string> {
  return {
    "Content-Security-Policy": consoleCsp(mediaOrigin),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
  };
}

const IMMUTABLE = "public, max-age=31536000, immutable";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
};
const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".svg", ".json", ".map", ".txt"]);

/** One path segment of Vite's output: letters, digits, `.`, `_`, `-`; no traversal, no hidden files. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

async function load(path: string): Promise<StaticFile | undefined> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") return undefined;
    throw error;
  }
  const ext = extname(path).toLowerCase();
  let gzipped: Buffer | undefined;
  if (COMPRESSIBLE.has(ext) && body.byteLength > 1024) {
    const packed = await gzipAsync(body);
    if (packed.byteLength < body.byteLength * 0.9) gzipped = packed;
  }
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { contentType: CONTENT_TYPES[ext] ?? "application/octet-stream", body, gzipped, etag };
}

/** The page a browser gets when dist/index.html is missing: what happened and the command that fixes it. */
const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Framegate console not built</title></head>
<body>
<main>
<h1>The Framegate console is not built</h1>
<p>This server has no console files to serve. Build them from the repository root with <code>npm run build</code>
(or only the console: <code>npm run build -w @framegate/console</code>), or point <code>CONSOLE_DIST_DIR</code> at a built console, then reload this page.</p>
<p>The API itself works without the console; its reference is at <a href="/docs">/docs</a>.</p>
</main>
</body>
</html>
`;

const escapeAttr = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * index.html for a server behind a proxy's path (PUBLIC_BASE_URL https://x/gw/, prefix "/gw"):
 * the build's absolute /console/ URLs (script, stylesheet, icon) get the prefix, and a
 * <meta name="framegate-prefix"> tells the console's script to put it in front of its links and
 * API calls (console/src/prefix.ts). At a host's root the file is sent as built.
 */
export function withPrefix(index: StaticFile, prefix: string): StaticFile {
  if (!prefix) return index;
  const html = index.body
    .toString("utf8")
    .replace(/(\s(?:href|src)=")\/console\//g, `$1${escapeAttr(prefix)}/console/`)
    .replace(/<head>/, `<head>\n    <meta name="framegate-prefix" content="${escapeAttr(prefix)}" />`);
  const body = Buffer.from(html);
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { ...index, body, gzipped: undefined, etag };
}

export function mountConsoleStaticRoutes(
  app: Hono<AppEnv>,
  options: {
    distDir: string | undefined;
    /** The path of PUBLIC_BASE_URL ("" at a host's root), which index.html's URLs get (withPrefix). */
    prefix?: (() => string) | undefined;
    /** The bucket's origin under S3 redirect delivery (console/media-origin.ts); absent: 'self' only. */
    mediaOrigin?: (() => Promise<string | undefined>) | undefined;
  },
): void {
  const distDir = options.distDir ?? DEFAULT_CONSOLE_DIST_DIR;
  const headers = async () => securityHeaders(await options.mediaOrigin?.());
  const send = async (c: Context<AppEnv>, file: StaticFile, cacheControl: string) =>
    sendStaticFile(c, file, { ...(await headers()), "Cache-Control": cacheControl });
  // Hashed assets and top-level files, by name; a rebuild adds names, never changes one's bytes.
  const assets = new Map<string, Promise<StaticFile | undefined>>();
  const topLevel = new Map<string, Promise<StaticFile | undefined>>();

  const cached = (map: Map<string, Promise<StaticFile | undefined>>, key: string, path: string) => {
    let entry = map.get(key);
    if (!entry) {
      entry = load(path).then((file) => {
        // A miss is not remembered: the file may appear with the next build.
        if (!file) map.delete(key);
        return file;
      });
      entry.catch(() => map.delete(key));
      map.set(key, entry);
    }
    return entry;
  };

  app.get(`${ASSETS_PREFIX}:name`, async (c) => {
    const name = c.req.param("name");
    const file = SAFE_NAME.test(name) ? await cached(assets, name, join(distDir, "assets", name)) : undefined;
    if (!file) throw new ApiError("not_found", `No file ${c.req.path} in the console.`);
    return send(c, file, IMMUTABLE);
  });

  const page = async (c: Context<AppEnv>) => {
    const rest = c.req.path.slice(CONSOLE_PATH.length).replace(/^\/+/, "");
    // A top-level file of dist (favicon.svg), looked up only for single-segment names with an extension.
    if (rest && !rest.includes("/") && extname(rest) && SAFE_NAME.test(rest) && rest !== "index.html") {
      const file = await cached(topLevel, rest, join(distDir, rest));
      if (file) return send(c, file, "public, max-age=3600");
    }
    const index = await load(join(distDir, "index.html"));
    if (!index) {
      return c.html(NOT_BUILT_PAGE, 503, { ...(await headers()), "Cache-Control": "no-store", "Retry-After": "60" });
    }
    return send(c, withPrefix(index, options.prefix?.() ?? ""), "no-cache");
  };

  app.get(CONSOLE_PATH, page);
  app.get(`${CONSOLE_PATH}/*`, async (c, next) => {
    // The session endpoints are the session module's; assets 404 above rather than fall back to the page.
    if (c.req.path.startsWith(API_PREFIX) || c.req.path.startsWith(ASSETS_PREFIX)) return next();
    return page(c);
  });
}
