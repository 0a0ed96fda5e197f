/**
 * GET /docs, the API reference: an HTML page whose every script comes from this server (no CDN),
 * pointed at the live OpenAPI document, under a CSP of 'self'; its assets cached by content hash.
 * (Rendering in a real browser is issue #17's check.)
 */
import { createRequire } from "node:module";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptsGzip } from "../src/http/static-file.js";
import { startTestServer, type TestServer } from "./harness.js";

/** Every src/href attribute value of the page. */
const references = (html: string) => [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] as string);

describe("API reference page", () => {
  let t: TestServer;
  let html: string;
  let page: Response;

  beforeAll(async () => {
    t = await startTestServer();
    page = await fetch(`${t.url}/docs`);
    html = await page.text();
  });
  afterAll(() => t?.close());

  it("is an HTML page with a CSP of this origin only, needing no key", () => {
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html).toMatch(/^<!doctype html>/);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    // No source in the policy other than 'self', 'none', 'unsafe-inline' (styles), data: and blob:.
    for (const directive of csp.split(";")) {
      const [, ...sources] = directive.trim().split(/\s+/);
      for (const source of sources) expect(["'self'", "'none'", "'unsafe-inline'", "data:", "blob:"]).toContain(source);
    }
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    expect(page.headers.get("etag")).toMatch(/^"[\w-]+"$/);
  });

  it("references only same-origin files and no external URL", () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/\/\/[a-z]/i);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const refs = references(html);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) expect(ref === "data:," || ref.startsWith("/")).toBe(true);
  });

  it("points Redoc at the live OpenAPI document", async () => {
    expect(html).toMatch(/<div id="redoc" data-spec-url="\/api\/v1\/openapi\.json">/);
    const doc = await t.request("/api/v1/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    const init = references(html).find((r) => /\/docs\/assets\/init\.[\w-]+\.js$/.test(r));
    expect(init).toBeDefined();
    const script = await (await fetch(`${t.url}${init}`)).text();
    expect(script).toContain('Redoc.init(\n    root.getAttribute("data-spec-url")');
  });

  it("serves every referenced asset with its type, an immutable cache and an ETag", async () => {
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1] as string);
    expect(scripts).toHaveLength(2);
    for (const src of scripts) {
      expect(src).toMatch(/^\/docs\/assets\/[\w.-]+\.[\w-]{16}\.js$/);
      const res = await fetch(`${t.url}${src}`);
      const body = Buffer.from(await res.arrayBuffer());
      expect(res.status, src).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const etag = res.headers.get("etag") as string;
      expect(etag).toMatch(/^"[\w-]{16}"$/);
      expect(body.length).toBeGreaterThan(100);
      // A revalidation with the ETag costs no body.
      const again = await fetch(`${t.url}${src}`, { headers: { "if-none-match": etag } });
      expect(again.status).toBe(304);
      expect((await again.arrayBuffer()).byteLength).toBe(0);
    }
    const bundle = scripts[0] as string;
    expect(bundle).toMatch(/redoc\.standalone\./);
    // The bundle is the real Redoc, not a stub.
    const plain = Buffer.from(await (await fetch(`${t.url}${bundle}`)).arrayBuffer());
    expect(plain.length).toBeGreaterThan(500_000);
    expect(plain.toString("utf8")).toContain("Redoc");
    // Its one remote file, the sidebar logo, is pointed at an empty data: URL (assets.ts).
    expect(plain.toString("utf8")).not.toContain("https://cdn.redoc.ly/");
  });

  it("sends the bundle gzipped to clients that take gzip, and plain to others", async () => {
    const bundle = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1] as string)[0] as string;
    const { request } = await import("node:http");
    const raw = (encoding: string) =>
      new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        const req = request(`${t.url}${bundle}`, { headers: { "accept-encoding": encoding } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on("error", reject);
        req.end();
      });
    const gz = await raw("gzip, deflate");
    const plain = await raw("identity");
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.headers.vary).toBe("Accept-Encoding");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(gz.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
  });

  it("answers HEAD with the headers of GET and no body", async () => {
    for (const path of ["/docs", ...[...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1] as string)]) {
      const get = await fetch(`${t.url}${path}`, { headers: { "accept-encoding": "identity" } });
      await get.arrayBuffer();
      const head = await fetch(`${t.url}${path}`, { method: "HEAD", headers: { "accept-encoding": "identity" } });
      expect(head.status, path).toBe(200);
      expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
      expect(head.headers.get("content-length")).toBe(get.headers.get("content-length"));
      expect(head.headers.get("etag")).toBe(get.headers.get("etag"));
      expect((await head.arrayBuffer()).byteLength).toBe(0);
    }
  });

  it("answers an unknown or outdated asset with 404 in the error envelope", async () => {
    for (const path of ["/docs/assets/nope.js", "/docs/assets/redoc.standalone.0000000000000000.js"]) {
      const res = await t.request(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        error: { code: "not_found", message: expect.any(String), requestId: expect.any(String) },
      });
    }
    const slash = await fetch(`${t.url}/docs/`, { redirect: "manual" });
    expect(slash.status).toBe(301);
    expect(slash.headers.get("location")).toBe("/docs");
    const post = await t.request("/docs", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    expect(post.body.error.code).toBe("method_not_allowed");
  });
});

describe("Redoc and the live document", () => {
  it("renders every operation of GET /api/v1/openapi.json (the redoc package the bundle comes from, server-side)", async () => {
    const t = await startTestServer();
    try {
      const doc = (await t.request("/api/v1/openapi.json")).body;
      // Redoc's library build, its React and styled-components peers: the code of the browser bundle.
      const require = createRequire(import.meta.url);
      const redoc = require("redoc") as typeof import("redoc");
      // React ships no types here (only the bundle needs it): the two calls used, typed by hand.
      const React = require("react") as { createElement(type: unknown, props: unknown): unknown };
      const { renderToString } = require("react-dom/server") as { renderToString(element: unknown): string };
      const { ServerStyleSheet } = require("styled-components") as typeof import("styled-components");
      const store = await redoc.createStore(doc, "/api/v1/openapi.json", {});
      const operationIds = Object.values(doc.paths as Record<string, Record<string, { operationId?: string }>>)
        .flatMap((item) => Object.values(item))
        .map((op) => op.operationId)
        .filter((id): id is string => typeof id === "string");
      expect(operationIds.length).toBeGreaterThan(10);
      const menu = new Set(
        store.menu.flatItems
          .filter((i) => i.type === "operation")
          .map((i) => (i as { operationId?: string }).operationId),
      );
      for (const id of operationIds) expect(menu.has(id), id).toBe(true);
      const html = renderToString(
        new ServerStyleSheet().collectStyles(React.createElement(redoc.Redoc, { store }) as never),
      );
      for (const id of operationIds) expect(html, id).toContain(`operation/${id}`);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe("API reference page, other configurations", () => {
  it("follows the base URL's path behind a proxy", async () => {
    const t = await startTestServer({ PUBLIC_BASE_URL: "https://api.example.com/framegate/" });
    try {
      // t.url is the public base URL: ask the listener itself.
      const html = await (await fetch(`http://127.0.0.1:${t.server.port}/docs`)).text();
      expect(html).toContain('data-spec-url="/framegate/api/v1/openapi.json"');
      for (const ref of references(html)) expect(ref === "data:," || ref.startsWith("/framegate/")).toBe(true);
      expect(html).not.toContain("api.example.com");
    } finally {
      await t.close();
    }
  });

  it("is off with the public API (PUBLIC_API_ENABLED=false), as the document it renders is", async () => {
    const t = await startTestServer({ PUBLIC_API_ENABLED: "false" });
    try {
      for (const path of ["/docs", "/docs/assets/nope.js"]) {
        const res = await t.request(path);
        expect(res.status, path).toBe(503);
        expect(res.body.error.code).toBe("public_api_disabled");
      }
    } finally {
      await t.close();
    }
  });

  it("reads Accept-Encoding's q values", () => {
    expect(acceptsGzip("gzip")).toBe(true);
    expect(acceptsGzip("br, gzip;q=0.5")).toBe(true);
    expect(acceptsGzip("gzip;q=0")).toBe(false);
    expect(acceptsGzip("identity")).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
  });
});
