/**
 * GET /docs: the API reference, rendered in the browser by Redoc from the live document
 * (GET /api/v1/openapi.json), with every file it needs served from here (docs/assets.ts).
 *
 * Like /api/v1/models it needs no key. It follows PUBLIC_API_ENABLED: the page only renders the
 * public API's own document, which is off with it, so a disabled API answers /docs with the same
 * 503 public_api_disabled rather than a page that can only show a load error.
 */
import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";
import { sendStaticFile } from "../http/static-file.js";
import { type DocsAsset, docsAssets } from "./assets.js";

export const DOCS_PATH = "/docs";
const ASSETS_PATH = `${DOCS_PATH}/assets`;

/**
 * Everything the page loads comes from this origin. Two allowances beyond 'self', both needed
 * by Redoc itself: its styles are injected at run time as <style> elements and style attributes
 * (styled-components, which has no nonce support in a prebuilt bundle), hence 'unsafe-inline'
 * for styles only (scripts stay 'self'); and its search index runs in a Web Worker made from a
 * blob: URL of code inside the bundle, hence worker-src blob:. Images are 'self' and data: (the
 * bundle's inline icons); the sidebar's "API docs by Redocly" logo, the one remote file the
 * bundle names, is rewritten to an empty data: URL when the bundle is loaded (assets.ts).
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SHARED_HEADERS = { "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" };

const escapeAttr = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The page; `prefix` is the path of PUBLIC_BASE_URL ("" at a host's root), so links survive a proxy's path. */
export function docsPage(prefix: string, assets: { bundle: DocsAsset; init: DocsAsset }): string {
  const at = (path: string) => escapeAttr(`${prefix}${path}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Framegate API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<noscript>The API reference needs JavaScript. The OpenAPI document itself is at <a href="${at("/api/v1/openapi.json")}">${at("/api/v1/openapi.json")}</a>.</noscript>
<div id="redoc" data-spec-url="${at("/api/v1/openapi.json")}"></div>
<script src="${at(`${ASSETS_PATH}/${assets.bundle.name}`)}"></script>
<script src="${at(`${ASSETS_PATH}/${assets.init.name}`)}"></script>
</body>
</html>
`;
}

function send(c: Context<AppEnv>, asset: DocsAsset, headers: Record<string, string>): Response {
  return sendStaticFile(c, asset, { ...SHARED_HEADERS, ...headers });
}

export function mountDocsRoutes(app: Hono<AppEnv>, deps: { publicApiEnabled: boolean; baseUrl: () => string }) {
  const prefix = () => new URL(deps.baseUrl()).pathname.replace(/\/+$/, "");
  const requireApi = () => {
    if (!deps.publicApiEnabled) {
      throw new ApiError("public_api_disabled", "The public API is temporarily disabled by the operator.");
    }
  };

  // The page for the current prefix, built once (the base URL is settled once the server listens).
  let cached: { prefix: string; page: DocsAsset } | undefined;
  const page = async (): Promise<DocsAsset> => {
    const current = prefix();
    if (cached?.prefix !== current) {
      const body = Buffer.from(docsPage(current, await docsAssets()));
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"`;
      const html = { name: "docs.html", contentType: "text/html; charset=utf-8", body, gzipped: undefined, etag };
      cached = { prefix: current, page: html };
    }
    return cached.page;
  };

  // Hono answers HEAD with these GET handlers (headers only).
  app.get(DOCS_PATH, async (c) => {
    requireApi();
    // Revalidated on every visit (a new bundle is a new asset name in the page).
    return send(c, await page(), { "Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP });
  });

  // The page's links are absolute, so /docs/ would work too; one address keeps caches and bookmarks simple.
  app.get(`${DOCS_PATH}/`, (c) => {
    requireApi();
    return c.redirect(`${prefix()}${DOCS_PATH}`, 301);
  });

  app.get(`${ASSETS_PATH}/:name`, async (c) => {
    requireApi();
    const asset = (await docsAssets()).byName.get(c.req.param("name"));
    if (!asset) throw new ApiError("not_found", `No file ${c.req.path} in the API reference.`);
    // Hashed names never change content; the licence notice keeps its fixed name, so it is revalidated.
    const immutable = asset.name !== "redoc.standalone.js.LICENSE.txt";
    return send(c, asset, { "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "no-cache" });
  });
}
