import { describe, expect, it } from "vitest";
import { layoutBars, niceCeil, ticks } from "./chart-scale.js";

describe("usage chart scale", () => {
  it("rounds the axis top up to a nice number", () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(-5)).toBe(1);
    expect(niceCeil(Number.NaN)).toBe(1);
    expect(niceCeil(1)).toBe(1);
    expect(niceCeil(7)).toBe(10);
    expect(niceCeil(13)).toBe(20);
    expect(niceCeil(21)).toBe(25);
    expect(niceCeil(260)).toBe(500);
    expect(niceCeil(1000)).toBe(1000);
    expect(niceCeil(0.3)).toBeCloseTo(0.5);
  });

  it("spaces ticks evenly from zero to the top", () => {
    expect(ticks(100)).toEqual([0, 25, 50, 75, 100]);
    expect(ticks(10, 2)).toEqual([0, 5, 10]);
  });

  it("lays bars out left to right, bottom-aligned, scaled to the nice top", () => {
    const { max, bars, y } = layoutBars([0, 5, 10], 300, 100, 0);
    expect(max).toBe(10);
    expect(bars).toEqual([
      { x: 0, y: 100, width: 100, height: 0 },
      { x: 100, y: 50, width: 100, height: 50 },
      { x: 200, y: 0, width: 100, height: 100 },
    ]);
    expect(y(10)).toBe(0);
    expect(y(0)).toBe(100);
  });

  it("draws negative and non-finite values as empty bars, and an empty series as nothing", () => {
    const { bars, max } = layoutBars([-3, Number.POSITIVE_INFINITY, 2], 30, 10, 0);
    expect(max).toBe(2);
    expect(bars.map((b) => b.height)).toEqual([0, 0, 10]);
    expect(layoutBars([], 100, 100).bars).toEqual([]);
  });
});
