/**
 * The usage chart's arithmetic, apart from its SVG so it can be tested: a "nice" y-axis (the top
 * rounded up to 1, 2, 2.5 or 5 × 10ⁿ so the gridlines land on round numbers) and the bar geometry.
 */

/** The smallest nice number ≥ value (0 → 1, so an all-zero range still draws an axis). */
export function niceCeil(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    const candidate = step * magnitude;
    if (candidate >= value - 1e-9) return candidate;
  }
  return 10 * magnitude;
}

/** `count + 1` evenly spaced tick values from 0 to `max` inclusive. */
export function ticks(max: number, count = 4): number[] {
  const out: number[] = [];
  for (let i = 0; i <= count; i++) out.push((max * i) / count);
  return out;
}

export interface Bar {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface BarLayout {
  /** The top of the y-axis (a nice number ≥ the largest value). */
  max: number;
  bars: Bar[];
  /** Maps a value to its y coordinate. */
  y: (value: number) => number;
}

/**
 * Bars for `values` inside a plot area `width` × `height` (origin top-left, as in SVG), each
 * separated by `gap` px. Negative or non-finite values draw as zero-height bars.
 */
export function layoutBars(values: readonly number[], width: number, height: number, gap = 2): BarLayout {
  const clean = values.map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const max = niceCeil(Math.max(0, ...clean));
  const y = (value: number) => height - (Math.max(0, value) / max) * height;
  const slot = clean.length > 0 ? width / clean.length : width;
  const barWidth = Math.max(1, slot - gap);
  const bars = clean.map((value, i) => {
    const top = y(value);
    return { x: i * slot + (slot - barWidth) / 2, y: top, width: barWidth, height: height - top };
  });
  return { max, bars, y };
}
