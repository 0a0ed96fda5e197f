/**
 * index.html behind a proxy's path (console/static-routes.ts withPrefix): the build's /console/
 * URLs get PUBLIC_BASE_URL's path and a meta tag tells the console's script the prefix; at a
 * host's root the file is sent untouched. The browser side is console-prefix-browser.test.ts.
 */
import { describe, expect, it } from "vitest";
import { withPrefix } from "../src/console/static-routes.js";
import type { StaticFile } from "../src/http/static-file.js";

const BUILT = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <link rel="icon" href="/console/favicon.svg" type="image/svg+xml" />
    <script type="module" crossorigin src="/console/assets/index-abc.js"></script>
    <link rel="stylesheet" crossorigin href="/console/assets/index-def.css">
  </head>
  <body><div id="app"><p>Loading the console…</p></div><a href="/docs">/console/ in text stays</a></body>
</html>
`;
const file = (): StaticFile => ({
  contentType: "text/html; charset=utf-8",
  body: Buffer.from(BUILT),
  gzipped: Buffer.from("stale"),
  etag: '"built"',
});

describe("index.html under a path prefix", () => {
  it("is sent as built at a host's root", () => {
    const index = file();
    expect(withPrefix(index, "")).toBe(index);
  });

  it("prefixes every /console/ URL, names the prefix in a meta tag, and gets its own ETag", () => {
    const out = withPrefix(file(), "/gw");
    const html = out.body.toString("utf8");
    expect(html).toContain('href="/gw/console/favicon.svg"');
    expect(html).toContain('src="/gw/console/assets/index-abc.js"');
    expect(html).toContain('href="/gw/console/assets/index-def.css"');
    expect(html).toContain('<meta name="framegate-prefix" content="/gw" />');
    expect(html).toContain(">/console/ in text stays<");
    expect(html.match(/"\/console\//g)).toBeNull();
    expect(out.etag).not.toBe('"built"');
    expect(out.gzipped).toBeUndefined();
  });

  it("escapes the prefix in attributes", () => {
    const html = withPrefix(file(), '/a"b&c').body.toString("utf8");
    expect(html).toContain('content="/a&quot;b&amp;c"');
    expect(html).toContain('src="/a&quot;b&amp;c/console/assets/index-abc.js"');
  });
});
