/**
 * GET /console: the built web console served from this origin (console/static-routes.ts), tested
 * against a small fixture dist directory (CONSOLE_DIST_DIR) so the suite needs no front-end build.
 * The console's behaviour in a real browser is the browser suite's.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP } from "../src/console/static-routes.js";
import { startTestServer, type TestServer } from "./harness.js";

const INDEX = `<!doctype html><html lang="en"><head><title>Framegate console</title>
<script type="module" crossorigin src="/console/assets/index-Ab12_x.js"></script></head><body><div id="app"></div></body></html>`;
// Over 1 kB and repetitive, so it is served gzipped to clients that take gzip.
const SCRIPT = `console.log("framegate console");\n${"export const pad = 1;\n".repeat(200)}`;

function fixtureDist(): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-console-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), INDEX);
  writeFileSync(join(dir, "assets", "index-Ab12_x.js"), SCRIPT);
  writeFileSync(join(dir, "favicon.svg"), `<svg xmlns="http://www.w3.org/2000/svg"/>`);
  return dir;
}

/**
 * The console's own CSP, 'self' only. With S3 redirect delivery (the PostgreSQL pass's storage)
 * img-src and media-src also name the bucket: console-media-csp.test.ts covers that, so these
 * servers proxy media and the header is the same on either pass.
 */
const SELF_ONLY = { CONSOLE_DIST_DIR: "", S3_MEDIA_DELIVERY: "proxy" };

function expectSecurityHeaders(res: Response) {
  expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
}

describe("web console static files", () => {
  let t: TestServer;
  let dist: string;

  beforeAll(async () => {
    dist = fixtureDist();
    t = await startTestServer({ ...SELF_ONLY, CONSOLE_DIST_DIR: dist });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dist, { recursive: true, force: true });
  });

  it("answers /console with index.html, revalidated on every visit, under a CSP of this origin only", async () => {
    const res = await fetch(`${t.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expectSecurityHeaders(res);
    expect(await res.text()).toBe(INDEX);
    // Only 'self' and 'none' as sources: no CDN, no inline script or style, no data: or blob:.
    for (const directive of CONSOLE_CSP.split(";")) {
      const [, ...sources] = directive.trim().split(/\s+/);
      for (const source of sources) expect(["'self'", "'none'"]).toContain(source);
    }
    const again = await fetch(`${t.url}/console`, { headers: { "if-none-match": res.headers.get("etag") ?? "" } });
    expect(again.status).toBe(304);
  });

  it("answers index.html for the console's client-side routes", async () => {
    for (const path of ["/console/", "/console/generations", "/console/generations/task_01abc?status=failed"]) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await res.text()).toBe(INDEX);
    }
  });

  it("serves hashed assets as immutable, gzipped when the client takes gzip", async () => {
    const plain = await fetch(`${t.url}/console/assets/index-Ab12_x.js`, {
      headers: { "accept-encoding": "identity" },
    });
    expect(plain.status).toBe(200);
    expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(plain.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(plain.headers.get("content-encoding")).toBeNull();
    expectSecurityHeaders(plain);
    expect(await plain.text()).toBe(SCRIPT);

    // node's fetch would decode gzip itself: ask over the raw bytes with a plain request.
    const { request } = await import("node:http");
    const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      const req = request(
        `${t.url}/console/assets/index-Ab12_x.js`,
        { headers: { "accept-encoding": "gzip" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(raw.body).toString()).toBe(SCRIPT);
  });

  it("serves a top-level file of dist by name", async () => {
    const res = await fetch(`${t.url}/console/favicon.svg`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml");
  });

  it("answers a missing or malformed asset name with a 404 envelope, never the page", async () => {
    for (const path of [
      "/console/assets/missing-123.js",
      "/console/assets/..%2Findex.html",
      "/console/assets/.hidden",
    ]) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status, path).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("not_found");
    }
  });

  it("leaves /console/api/ to the session routes (here: no such route, so 404)", async () => {
    const res = await fetch(`${t.url}/console/api/nothing-here`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("web console not built", () => {
  it("answers /console with a 503 page that says how to build it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "framegate-console-empty-"));
    const t = await startTestServer({ ...SELF_ONLY, CONSOLE_DIST_DIR: empty });
    try {
      for (const path of ["/console", "/console/generations"]) {
        const res = await fetch(`${t.url}${path}`);
        expect(res.status).toBe(503);
        expect(res.headers.get("content-type")).toMatch(/^text\/html/);
        expect(res.headers.get("cache-control")).toBe("no-store");
        expectSecurityHeaders(res);
        expect(await res.text()).toContain("npm run build");
      }
    } finally {
      await t.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
