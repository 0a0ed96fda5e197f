import { describe, expect, it } from "vitest";
import {
  formatBytes,
  formatCompact,
  formatCredits,
  formatDay,
  formatElapsed,
  formatInstant,
  isCancelable,
  statusLabel,
} from "./format.js";

describe("console formatters", () => {
  it("groups credits and picks the singular", () => {
    expect(formatCredits(12500)).toBe("12,500 credits");
    expect(formatCredits(1)).toBe("1 credit");
    expect(formatCredits(-1)).toBe("-1 credit");
    expect(formatCredits(0)).toBe("0 credits");
  });

  it("abbreviates axis labels", () => {
    expect(formatCompact(950)).toBe("950");
    expect(formatCompact(1000)).toBe("1k");
    expect(formatCompact(1250)).toBe("1.3k");
    expect(formatCompact(2_500_000)).toBe("2.5M");
  });

  it("prints instants in UTC whatever the locale, and a dash for none", () => {
    expect(formatInstant("2026-12-07T14:03:59.123Z")).toBe("2026-12-07 14:03 UTC");
    expect(formatInstant(null)).toBe("—");
    expect(formatInstant("not a date")).toBe("—");
    expect(formatDay("2026-12-07T00:00:00Z")).toBe("Dec 7");
  });

  it("formats elapsed time", () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
    expect(formatElapsed(at(0), at(4))).toBe("4 s");
    expect(formatElapsed(at(0), at(125))).toBe("2 min 5 s");
    expect(formatElapsed(at(0), at(120))).toBe("2 min");
    expect(formatElapsed(at(0), at(3780))).toBe("1 h 3 min");
    expect(formatElapsed(at(10), at(0))).toBe("—");
    expect(formatElapsed(null, at(0))).toBe("—");
  });

  it("formats bytes in decimal units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1500)).toBe("1.5 kB");
    expect(formatBytes(10_000_000)).toBe("10 MB");
  });

  it("labels statuses, with a canceled failure as Canceled", () => {
    expect(statusLabel("failed", "canceled")).toBe("Canceled");
    expect(statusLabel("failed", "provider_error")).toBe("Failed");
    expect(statusLabel("processing")).toBe("Processing");
    expect(isCancelable("queued")).toBe(true);
    expect(isCancelable("succeeded")).toBe(false);
  });
});
