import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { parseTrustedProxies, resolveClientAddress } from "./client-address.js";

describe("client address behind trusted proxies", () => {
  const trusted = parseTrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);

  it("without trusted proxies the peer is the client, whatever the header says", () => {
    expect(resolveClientAddress("127.0.0.1", "203.0.113.9", undefined)).toBe("127.0.0.1");
  });

  it("an untrusted peer's X-Forwarded-For is ignored (it could name anyone)", () => {
    expect(resolveClientAddress("198.51.100.7", "203.0.113.9", trusted)).toBe("198.51.100.7");
  });

  it("from a trusted peer, the right-most untrusted hop is the client", () => {
    expect(resolveClientAddress("10.1.2.3", "203.0.113.9", trusted)).toBe("203.0.113.9");
    // A client forging a left-most entry does not escape its own address.
    expect(resolveClientAddress("10.1.2.3", "1.2.3.4, 203.0.113.9, 10.9.9.9", trusted)).toBe("203.0.113.9");
    expect(resolveClientAddress("::ffff:127.0.0.1", "2001:db8::5, fd00::1", trusted)).toBe("2001:db8::5");
    expect(resolveClientAddress("10.1.2.3", "[2001:db8::7]:5000, 198.51.100.1:443", trusted)).toBe("198.51.100.1");
  });

  it("garbage and all-trusted chains fall back sensibly", () => {
    expect(resolveClientAddress("10.1.2.3", "not-an-ip, also bad", trusted)).toBe("10.1.2.3");
    expect(resolveClientAddress("10.1.2.3", "10.0.0.5, 127.0.0.1", trusted)).toBe("10.0.0.5");
    expect(resolveClientAddress("10.1.2.3", "", trusted)).toBe("10.1.2.3");
  });

  it("TRUSTED_PROXIES is validated at start-up", () => {
    expect(loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, ::1" }).trustedProxies).toEqual(["10.0.0.0/8", "::1"]);
    expect(() => loadConfig({ TRUSTED_PROXIES: "10.0.0.0/33" })).toThrow(/TRUSTED_PROXIES: bad prefix length/);
    expect(() => loadConfig({ TRUSTED_PROXIES: "nginx" })).toThrow(/TRUSTED_PROXIES: not an IP address/);
  });
});
