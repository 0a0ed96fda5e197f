import { describe, expect, it } from "vitest";
import { formatAge, formatJson, formatRate } from "./operator-format.js";

describe("operator formatting", () => {
  it("formats ages", () => {
    expect(formatAge(null)).toBe("—");
    expect(formatAge(undefined)).toBe("—");
    expect(formatAge(2.4)).toBe("2 s");
    expect(formatAge(120)).toBe("2 min");
    expect(formatAge(185)).toBe("3 min 5 s");
    expect(formatAge(7800)).toBe("2 h 10 min");
    expect(formatAge(3 * 86_400 + 4 * 3600)).toBe("3 d 4 h");
    expect(formatAge(-1)).toBe("0 s");
  });

  it("formats error rates, and says when nothing finished", () => {
    expect(formatRate(1, 4, 0.25)).toBe("1 of 4 (25%)");
    expect(formatRate(0, 0, null)).toBe("no finished tasks");
    expect(formatRate(1, 3, 0.3333)).toBe("1 of 3 (33.3%)");
  });

  it("formats JSON for display", () => {
    expect(formatJson(null)).toBe("—");
    expect(formatJson({ a: 1 })).toBe('{\n  "a": 1\n}');
  });
});
