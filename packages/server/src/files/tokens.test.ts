/**
 * duration_token (api-contract §6): binds a file id, the measured duration and an expiry; any
 * change to one of them, another file, another secret or an expired token proves nothing.
 * (kling-2-6 takes image references only, so this is checked here rather than end to end.)
 */
import { describe, expect, it } from "vitest";
import { DurationTokens } from "./tokens.js";

const SECRET = "duration-token-test-secret-0123456789";
const FILE = "file_abc123";
const NOW = new Date("2026-06-01T12:00:00.000Z");
const EXPIRES = new Date("2026-06-08T12:00:00.000Z");

describe("DurationTokens", () => {
  const tokens = new DurationTokens(SECRET);

  it("round-trips the duration, to the millisecond", () => {
    for (const seconds of [0.001, 2, 4.9999, 12.345, 3599.5]) {
      const token = tokens.issue(FILE, seconds, EXPIRES);
      expect(token).toMatch(/^dt1\.\d+\.\d+\.\d{3}\.[A-Za-z0-9_-]+$/);
      expect(tokens.verify(token, FILE, NOW)).toEqual({ ok: true, durationSeconds: Number(seconds.toFixed(3)) });
    }
  });

  it("is deterministic (the upload response and every GET hand out the same token)", () => {
    expect(tokens.issue(FILE, 5, EXPIRES)).toBe(tokens.issue(FILE, 5, EXPIRES));
  });

  it("does not prove anything for another file", () => {
    const token = tokens.issue(FILE, 5, EXPIRES);
    expect(tokens.verify(token, "file_abc124", NOW)).toEqual({ ok: false, reason: "does not belong to this file" });
  });

  it("a changed duration, expiry or MAC is refused", () => {
    const token = tokens.issue(FILE, 5, EXPIRES);
    const [v, expires, whole, millis, mac] = token.split(".") as [string, string, string, string, string];
    const variants = [
      [v, expires, "50", millis, mac],
      [v, expires, whole, "001", mac],
      [v, String(Number(expires) + 86_400), whole, millis, mac],
      [v, expires, whole, millis, `${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`],
      [v, expires, whole, millis, mac.slice(1)],
    ];
    for (const parts of variants) {
      expect(tokens.verify(parts.join("."), FILE, NOW), parts.join(".")).toEqual({
        ok: false,
        reason: "does not belong to this file",
      });
    }
  });

  it("a token from another secret is refused", () => {
    const other = new DurationTokens("another-secret-0123456789-0123456789");
    expect(tokens.verify(other.issue(FILE, 5, EXPIRES), FILE, NOW).ok).toBe(false);
  });

  it("an expired token is refused, even with a valid MAC", () => {
    const token = tokens.issue(FILE, 5, EXPIRES);
    expect(tokens.verify(token, FILE, new Date(EXPIRES.getTime() - 1000)).ok).toBe(true);
    expect(tokens.verify(token, FILE, EXPIRES)).toEqual({ ok: false, reason: "has expired" });
    expect(tokens.verify(token, FILE, new Date(EXPIRES.getTime() + 1))).toEqual({ ok: false, reason: "has expired" });
  });

  it.each([
    "",
    "dt1",
    "dt1.garbage",
    "dt2.1780920000.5.000.abc",
    "dt1.1780920000.5.abc",
    "dt1.1780920000.5.0000.abc",
    "dt1.-1.5.000.abc",
    "dt1.1780920000.-5.000.abc",
    "dt1.1780920000.5.000.abc.extra",
    "dt1.1780920000.1e3.000.abc",
  ])("malformed %j is refused", (token) => {
    expect(tokens.verify(token, FILE, NOW)).toEqual({ ok: false, reason: "is malformed" });
  });
});
