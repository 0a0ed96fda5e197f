import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { HttpDurations } from "./http-durations.js";

const NAME = "framegate_test_duration_seconds";
const BUCKETS = [0.001, 0.01, 0.1, 1];

/** A registry's text exposition as sorted sample lines (label order within a line does not matter). */
async function samples(registry: Registry): Promise<string[]> {
  const text = await registry.metrics();
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-z_]+)(?:\{(.*)\})? (.+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = (match[2] ?? "").split(",").filter(Boolean).sort().join(",");
      return `${match[1]}{${labels}} ${match[3]}`;
    })
    .sort();
}

describe("HttpDurations", () => {
  it("exposes exactly what prom-client's Histogram does for the same observations", async () => {
    const ours = new Registry();
    const durations = new HttpDurations(NAME, "help", BUCKETS, ours);
    const theirs = new Registry();
    const histogram = new Histogram({
      name: NAME,
      help: "help",
      labelNames: ["route", "method", "status_class"] as const,
      buckets: BUCKETS,
      registers: [theirs],
    });
    // Values on bucket bounds, between them, below the first and above the last.
    const observations: [string, string, string, number][] = [
      ["/a/:id", "GET", "2xx", 0.0005],
      ["/a/:id", "GET", "2xx", 0.001],
      ["/a/:id", "GET", "2xx", 0.0011],
      ["/a/:id", "GET", "4xx", 0.5],
      ["/b", "POST", "2xx", 1],
      ["/b", "POST", "2xx", 7.25],
      ["unmatched", "other", "4xx", 0],
    ];
    for (const [route, method, status_class, seconds] of observations) {
      durations.observe(route, method, status_class, seconds);
      histogram.observe({ route, method, status_class }, seconds);
    }
    const expected = await samples(theirs);
    expect(expected.length).toBe(4 * 7);
    expect(await samples(ours)).toEqual(expected);
    expect(await ours.metrics()).toContain(`# TYPE ${NAME} histogram`);
  });

  it("starts over on reset, and refuses buckets that do not increase", async () => {
    const registry = new Registry();
    const durations = new HttpDurations(NAME, "help", BUCKETS, registry);
    durations.observe("/a", "GET", "2xx", 0.2);
    expect(await samples(registry)).toContain(`${NAME}_count{method="GET",route="/a",status_class="2xx"} 1`);
    registry.resetMetrics();
    expect(await samples(registry)).toEqual([]);
    expect(() => new HttpDurations("other_seconds", "help", [0.1, 0.1], new Registry())).toThrow(RangeError);
  });
});
