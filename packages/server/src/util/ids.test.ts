import { describe, expect, it } from "vitest";
import { newId, randomBase62 } from "./ids.js";

describe("ids", () => {
  it("are prefixed base62 of 22 characters, and distinct across many pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newId("req");
      expect(id).toMatch(/^req_[0-9A-Za-z]{22}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  it("sort by the time they were made, across digit boundaries and far years", () => {
    const times = [
      0,
      1,
      61,
      62,
      63,
      3843,
      3844,
      Date.parse("2026-12-07T10:00:00Z"),
      Date.parse("2100-01-01T00:00:00Z"),
    ];
    const ids = times.map((t) => newId("task", t));
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^task_[0-9A-Za-z]{22}$/);
    // Within one millisecond the order is random, not by creation: only the prefix is shared.
    const now = Date.parse("2026-12-07T10:00:00Z");
    const sameMs = Array.from({ length: 1000 }, () => newId("task", now));
    expect(new Set(sameMs.map((id) => id.slice(0, 13))).size).toBe(1);
    expect(new Set(sameMs).size).toBe(1000);
    expect(newId("task", now + 1) > ([...sameMs].sort().at(-1) as string)).toBe(true);
  });

  it("keep 14 random characters after the time, evenly spread over the alphabet", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++)
      for (const ch of newId("evt", 0).slice(12)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect([...counts.values()].reduce((a, b) => a + b)).toBe(140_000);
    expect(counts.size).toBe(62);
    // Each symbol expects about 2,258.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(1950);
      expect(n).toBeLessThan(2550);
    }
  });

  it("spread over the whole alphabet about evenly (no modulo bias, no stuck pool)", () => {
    const counts = new Map<string, number>();
    const text = randomBase62(62 * 2000);
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Each symbol expects 2,000; a biased or repeating source lands far outside this band.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(1700);
      expect(n).toBeLessThan(2300);
    }
  });
});
