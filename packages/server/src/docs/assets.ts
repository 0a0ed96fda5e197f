/**
 * The files behind GET /docs: Redoc's standalone browser bundle (from the `redoc` npm package,
 * so nothing is fetched from a CDN at run time), its licence notice, and the few lines that start
 * it. Each is read once, on the first request for the reference (a process that never serves
 * /docs never reads the 1 MB bundle), and kept in memory with its gzip form and a content hash:
 * the hash is part of the file name, so a browser may cache a file for good and a new version of
 * the bundle is a new URL.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

const gzipAsync = promisify(gzip);

export interface DocsAsset {
  /** The name under /docs/assets/. */
  name: string;
  contentType: string;
  body: Buffer;
  /** Smaller than body, or undefined when gzip would not save anything worth a header. */
  gzipped: Buffer | undefined;
  etag: string;
}

export interface DocsAssets {
  bundle: DocsAsset;
  init: DocsAsset;
  byName: Map<string, DocsAsset>;
}

/**
 * Starts Redoc on the page's #redoc element, with the document URL the page carries in a data
 * attribute. A file of its own rather than an inline script, so the page's CSP allows scripts
 * from 'self' only. Fonts: the system's (Redoc's theme names web fonts it never loads).
 */
const INIT_SCRIPT = `"use strict";
(function () {
  var root = document.getElementById("redoc");
  var systemFont = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  Redoc.init(
    root.getAttribute("data-spec-url"),
    {
      expandResponses: "200,201,202",
      jsonSampleExpandLevel: 3,
      requiredPropsFirst: true,
      theme: {
        typography: {
          fontFamily: systemFont,
          headings: { fontFamily: systemFont },
          code: { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace' },
        },
      },
    },
    root,
  );
})();
`;

const JS = "text/javascript; charset=utf-8";

/**
 * The one remote file the bundle loads: the sidebar's Redocly logo, an <img> that no Redoc option
 * leaves out. The page's CSP blocks it, but a blocked load is still a console error and a CSP
 * violation report in every reader's browser. Pointed at an empty data: URL (which img-src
 * allows) the image simply fails to decode, and Redoc's own onError handler drops it; the
 * "API docs by Redocly" link stays, as text. The real-browser test of /docs notices if a new
 * bundle names this URL differently or loads another remote file.
 */
const REMOTE_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const withoutRemoteLogo = (bundle: Buffer) =>
  Buffer.from(bundle.toString("utf8").replaceAll(REMOTE_LOGO_URL, "data:,"));

async function makeAsset(base: string, ext: string, contentType: string, body: Buffer): Promise<DocsAsset> {
  const hash = createHash("sha256").update(body).digest("base64url").slice(0, 16);
  const compressed = await gzipAsync(body, { level: 9 });
  return {
    name: `${base}.${hash}.${ext}`,
    contentType,
    body,
    gzipped: compressed.length < body.length * 0.9 ? compressed : undefined,
    etag: `"${hash}"`,
  };
}

async function loadAssets(): Promise<DocsAssets> {
  // Resolved through Node's module resolution, so it works from src (tests), dist and the image.
  const bundlePath = createRequire(import.meta.url).resolve("redoc/bundles/redoc.standalone.js");
  const [bundleBytes, licence] = await Promise.all([
    readFile(bundlePath),
    readFile(`${bundlePath}.LICENSE.txt`).catch(() => undefined),
  ]);
  const bundle = await makeAsset("redoc.standalone", "js", JS, withoutRemoteLogo(bundleBytes));
  const init = await makeAsset("init", "js", JS, Buffer.from(INIT_SCRIPT));
  const byName = new Map([bundle, init].map((a) => [a.name, a]));
  if (licence) {
    // The bundle's first line points at this file by a name relative to its own URL.
    const notice = await makeAsset("redoc.standalone.js.LICENSE", "txt", "text/plain; charset=utf-8", licence);
    byName.set("redoc.standalone.js.LICENSE.txt", { ...notice, name: "redoc.standalone.js.LICENSE.txt" });
  }
  return { bundle, init, byName };
}

let loading: Promise<DocsAssets> | undefined;

/** The assets, read on the first call; a failed read is retried on the next call. */
export function docsAssets(): Promise<DocsAssets> {
  loading ??= loadAssets().catch((error) => {
    loading = undefined;
    throw error;
  });
  return loading;
}
