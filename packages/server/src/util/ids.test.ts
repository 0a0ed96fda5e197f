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
