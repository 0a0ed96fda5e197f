/**
 * SSRF guard (api-contract §7 URL rules): the syntax check, the address classifier and resolve-and-check.
 * No network traffic: every lookup here is injected.
 */
import type { LookupAddress } from "node:dns";
import { describe, expect, it } from "vitest";
import { checkUrl, INSECURE, isForbiddenAddress, type LookupFn, resolveAndCheck, STRICT } from "./url-guard.js";

/** A lookup answering from a table; unknown names fail with ENOTFOUND. */
function tableLookup(table: Record<string, string[]>): LookupFn & { calls: string[] } {
  const calls: string[] = [];
  const fn = ((hostname, _options, callback) => {
    calls.push(hostname);
    const list = table[hostname];
    setImmediate(() => {
      if (!list) {
        const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        err.code = "ENOTFOUND";
        callback(err, []);
        return;
      }
      callback(
        null,
        list.map((address): LookupAddress => ({ address, family: address.includes(":") ? 6 : 4 })),
      );
    });
  }) as LookupFn & { calls: string[] };
  fn.calls = calls;
  return fn;
}

describe("isForbiddenAddress", () => {
  const forbidden = [
    // IPv4 loopback, private, link-local, CGNAT, "this network"
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    // multicast, reserved, broadcast, benchmarking, documentation, IETF
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "192.0.2.10",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "192.88.99.1",
    // IPv6
    "::",
    "::1",
    "[::1]",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "2001:0db8:0:0:0:0:0:1",
    "2001::1", // Teredo
    "3fff::1", // documentation (RFC 9637)
    "100::1", // discard-only
    "64:ff9b:1::1", // local-use NAT64
    "fec0::1", // site-local (deprecated)
    // IPv6 forms embedding a forbidden IPv4 address
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1", // IPv4-compatible
    "::ffff:0:127.0.0.1", // IPv4-translated
    "64:ff9b::127.0.0.1",
    "64:ff9b::a00:1",
    "2002:7f00:1::1", // 6to4 of 127.0.0.1
    "2002:c0a8:101::", // 6to4 of 192.168.1.1
    // not a canonical IP literal: refused rather than guessed
    "0177.0.0.1",
    "0x7f.0.0.1",
    "2130706433",
    "127.1",
    "fe80::1%eth0",
    "localhost",
    "",
    "1.2.3.4.5",
  ];
  const allowed = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "192.167.255.255",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.255",
    "2606:4700::1",
    "[2606:4700::1]",
    "2a00:1450:4001:80b::200e",
    "2001:4860:4860::8888",
    "::ffff:93.184.216.34",
    "::ffff:5db8:d822",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
  ];

  it.each(forbidden)("refuses %s", (ip) => {
    expect(isForbiddenAddress(ip)).toBe(true);
  });
  it.each(allowed)("allows %s", (ip) => {
    expect(isForbiddenAddress(ip)).toBe(false);
  });
});

describe("checkUrl", () => {
  /** [url, allowed under STRICT, allowed under INSECURE] */
  const table: [string, boolean, boolean][] = [
    ["https://example.com/image.png", true, true],
    ["https://example.com:8443/hook?x=1&y=2", true, true],
    ["https://93.184.216.34/", true, true],
    ["https://[2606:4700::1]/", true, true],
    ["https://xn--bcher-kva.example/", true, true],
    ["https://example.com./", true, true],
    // scheme
    ["http://example.com/", false, true],
    ["ftp://example.com/", false, false],
    ["file:///etc/passwd", false, false],
    ["javascript:alert(1)", false, false],
    ["data:text/plain,hi", false, false],
    ["gopher://example.com/", false, false],
    // loopback, private, unspecified as literals
    ["https://127.0.0.1/", false, true],
    ["https://127.0.0.1:8080/", false, true],
    ["https://10.1.2.3/", false, true],
    ["https://172.20.0.1/", false, true],
    ["https://192.168.0.10/", false, true],
    ["https://169.254.169.254/latest/meta-data/", false, true],
    ["https://100.64.1.1/", false, true],
    ["https://0.0.0.0/", false, true],
    ["https://[::1]/", false, true],
    ["https://[::]/", false, true],
    ["https://[fe80::1]/", false, true],
    ["https://[fd00::1]/", false, true],
    ["https://[::ffff:127.0.0.1]/", false, true],
    ["https://[::ffff:7f00:1]/", false, true],
    ["https://[::ffff:10.0.0.1]/", false, true],
    // numeric IPv4 forms, normalized to 127.0.0.1 by WHATWG parsing
    ["https://2130706433/", false, true],
    ["https://0177.0.0.1/", false, true],
    ["https://0x7f.1/", false, true],
    ["https://0x7f000001/", false, true],
    ["https://127.1/", false, true],
    ["https://017700000001/", false, true],
    // localhost
    ["https://localhost/", false, true],
    ["https://LOCALHOST:3000/", false, true],
    ["https://localhost./", false, true],
    ["https://foo.localhost/", false, true],
    ["https://a.b.localhost/", false, true],
    ["https://localhost.example.com/", true, true],
    // userinfo and fragment: refused in every mode
    ["https://alice:s3cr3t@example.com/", false, false],
    ["https://alice@example.com/", false, false],
    ["https://@example.com/", false, false],
    ["https://:s3cr3t@example.com/", false, false],
    ["https://example.com/#frag", false, false],
    ["https://example.com/#", false, false],
    // garbage and non-ASCII
    ["", false, false],
    ["not a url", false, false],
    ["example.com", false, false],
    ["//example.com/", false, false],
    ["/relative/path", false, false],
    ["https://", false, false],
    ["https://exa mple.com/", false, false],
    ["https://example.com/a b", false, false],
    [" https://example.com/", false, false],
    ["https://example.com/\n", false, false],
    ["https://exa\tmple.com/", false, false],
    ["https://ex\u0000ample.com/", false, false],
    ["https://example.com:99999/", false, false],
    ["https://[::1/", false, false],
    ["https://1.2.3.4.5/", false, false],
    ["https://bücher.example/", false, false],
    ["https://example.com/vidéo.mp4", false, false],
    ["https://１２７.０.０.１/", false, false], // fullwidth digits would normalize to 127.0.0.1
    ["https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", false, false], // would normalize to localhost
    ["https://example.com\u3002evil.com/", false, false],
    ["\u{1F4A9}", false, false],
    ["https://\uD800/", false, false],
    [`https://example.com/${"a".repeat(9000)}`, false, false],
  ];

  it.each(table)("%s → strict %s, insecure %s", (raw, strictOk, insecureOk) => {
    const strict = checkUrl(raw, STRICT);
    const insecure = checkUrl(raw, INSECURE);
    expect(strict.ok).toBe(strictOk);
    expect(insecure.ok).toBe(insecureOk);
    for (const result of [strict, insecure]) {
      if (!result.ok) {
        expect(result.reason).toMatch(/^The .+\.$/);
        expect(result.reason).not.toContain("alice");
        expect(result.reason).not.toContain("s3cr3t");
      }
    }
  });

  it("normalizes decimal, octal and hex IPv4 forms to the dotted quad before judging", () => {
    for (const raw of ["http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/"]) {
      const res = checkUrl(raw, INSECURE);
      expect(res.ok && res.url.hostname).toBe("127.0.0.1");
      const strict = checkUrl(raw, { allowHttp: true, allowPrivateAddresses: false });
      expect(strict.ok).toBe(false);
    }
  });

  it("http is allowed on its own with allowHttp (private still refused)", () => {
    const opts = { allowHttp: true, allowPrivateAddresses: false };
    expect(checkUrl("http://example.com/", opts).ok).toBe(true);
    expect(checkUrl("http://127.0.0.1/", opts).ok).toBe(false);
    expect(checkUrl("http://localhost/", opts).ok).toBe(false);
  });

  it("returns the parsed URL and clear reasons", () => {
    const ok = checkUrl("https://Example.COM:443/a/../b?q=1", STRICT);
    expect(ok.ok && ok.url.href).toBe("https://example.com/b?q=1");
    const reasonOf = (raw: string) => {
      const res = checkUrl(raw, STRICT);
      return res.ok ? "" : res.reason;
    };
    expect(reasonOf("http://example.com/")).toBe("The URL must use https.");
    expect(reasonOf("https://u:p@example.com/")).toMatch(/credentials/);
    expect(reasonOf("https://example.com/#x")).toMatch(/fragment/);
    expect(reasonOf("https://localhost/")).toMatch(/localhost/);
    expect(reasonOf("https://127.0.0.1/")).toMatch(/loopback, private/);
    expect(reasonOf("example.com/path")).toMatch(/not a valid absolute URL/);
    expect(reasonOf("https://exämple.com/")).toMatch(/ASCII/);
  });
});

describe("resolveAndCheck", () => {
  const lookup = tableLookup({
    "public.test": ["93.184.216.34"],
    "public6.test": ["2606:4700::1"],
    "private.test": ["10.0.0.5"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "empty.test": [],
  });

  it("accepts a name whose addresses are all public", async () => {
    expect(await resolveAndCheck("public.test", STRICT, lookup)).toEqual({ ok: true, addresses: ["93.184.216.34"] });
    expect(await resolveAndCheck("public6.test", STRICT, lookup)).toEqual({ ok: true, addresses: ["2606:4700::1"] });
  });

  it("refuses when ANY resolved address is forbidden, without naming the address", async () => {
    for (const host of ["private.test", "mixed.test", "mapped.test"]) {
      const res = await resolveAndCheck(host, STRICT, lookup);
      expect(res.ok).toBe(false);
      if (!res.ok) {
        expect(res.reason).toMatch(/resolves to a loopback, private/);
        expect(res.reason).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
      }
    }
  });

  it("allows private addresses when told to", async () => {
    expect(await resolveAndCheck("mixed.test", INSECURE, lookup)).toEqual({
      ok: true,
      addresses: ["93.184.216.34", "127.0.0.1"],
    });
  });

  it("refuses names that do not resolve", async () => {
    expect(await resolveAndCheck("nope.test", STRICT, lookup)).toEqual({
      ok: false,
      reason: "The host name could not be resolved.",
    });
    expect((await resolveAndCheck("empty.test", STRICT, lookup)).ok).toBe(false);
  });

  it("judges literal IPs without a lookup", async () => {
    const before = lookup.calls.length;
    expect((await resolveAndCheck("127.0.0.1", STRICT, lookup)).ok).toBe(false);
    expect((await resolveAndCheck("[::1]", STRICT, lookup)).ok).toBe(false);
    expect(await resolveAndCheck("[2606:4700::1]", STRICT, lookup)).toEqual({ ok: true, addresses: ["2606:4700::1"] });
    expect(await resolveAndCheck("127.0.0.1", INSECURE, lookup)).toEqual({ ok: true, addresses: ["127.0.0.1"] });
    expect(lookup.calls.length).toBe(before);
  });

  it("survives a lookup that throws synchronously", async () => {
    const throwing: LookupFn = () => {
      throw new Error("boom");
    };
    expect(await resolveAndCheck("x.test", STRICT, throwing)).toEqual({
      ok: false,
      reason: "The host name could not be resolved.",
    });
  });
});
