import { describe, expect, it } from "vitest";
import { ApiError } from "../errors.js";
import { parseInstant, resolveBucketRange } from "./time-range.js";

const now = new Date("2026-12-06T22:38:07.123Z");

function issueOf(fn: () => unknown): { path: string; issue: string } | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError && error.code === "validation_failed") return error.details?.[0];
    throw error;
  }
  return undefined;
}

describe("parseInstant", () => {
  it("normalises date-times with a zone, and dates, to the stored ISO form", () => {
    expect(parseInstant("x", "2026-12-01T10:00:00+02:00")).toBe("2026-12-01T08:00:00.000Z");
    expect(parseInstant("x", "2026-12-01T10:00:00.5Z")).toBe("2026-12-01T10:00:00.500Z");
    expect(parseInstant("x", "2026-12-01")).toBe("2026-12-01T00:00:00.000Z");
  });

  it("refuses instants without a zone, impossible dates and other text", () => {
    for (const bad of ["2026-12-01T10:00:00", "2026-02-30", "yesterday", "1733011200", "", "2026-12-01Z"]) {
      expect(issueOf(() => parseInstant("since", bad))?.path, bad).toBe("since");
    }
  });
});

describe("resolveBucketRange", () => {
  it("defaults to 30 whole UTC days ending with today, or 24 hours ending with this hour", () => {
    const days = resolveBucketRange({}, now);
    expect(days).toMatchObject({
      granularity: "day",
      start: "2026-11-07T00:00:00.000Z",
      end: "2026-12-07T00:00:00.000Z",
    });
    expect(days.buckets).toHaveLength(30);
    expect(days.buckets.at(-1)).toBe("2026-12-06T00:00:00.000Z");
    const hours = resolveBucketRange({ granularity: "hour" }, now);
    expect(hours).toMatchObject({ start: "2026-12-05T23:00:00.000Z", end: "2026-12-06T23:00:00.000Z" });
    expect(hours.buckets).toHaveLength(24);
  });

  it("moves start back and end forward to bucket boundaries; one bound alone spans the default", () => {
    const r = resolveBucketRange(
      { granularity: "hour", start: "2026-12-01T10:15:00Z", end: "2026-12-01T12:00:01Z" },
      now,
    );
    expect(r.buckets).toEqual(["2026-12-01T10:00:00.000Z", "2026-12-01T11:00:00.000Z", "2026-12-01T12:00:00.000Z"]);
    expect(resolveBucketRange({ start: "2026-01-01" }, now).end).toBe("2026-01-31T00:00:00.000Z");
    expect(resolveBucketRange({ end: "2026-01-31" }, now).start).toBe("2026-01-01T00:00:00.000Z");
  });

  it("caps a request at 31 days of days and 168 hours of hours", () => {
    expect(resolveBucketRange({ start: "2026-01-01", end: "2026-02-01" }, now).buckets).toHaveLength(31);
    expect(issueOf(() => resolveBucketRange({ start: "2026-01-01", end: "2026-02-01T00:00:00.001Z" }, now))?.path).toBe(
      "end",
    );
    expect(
      resolveBucketRange({ granularity: "hour", start: "2026-01-01", end: "2026-01-08" }, now).buckets,
    ).toHaveLength(168);
    expect(
      issueOf(() => resolveBucketRange({ granularity: "hour", start: "2026-01-01", end: "2026-01-08T00:30:00Z" }, now))
        ?.path,
    ).toBe("end");
  });

  it("refuses an unknown granularity and an empty or reversed range", () => {
    expect(issueOf(() => resolveBucketRange({ granularity: "week" }, now))?.path).toBe("granularity");
    expect(issueOf(() => resolveBucketRange({ start: "2026-12-02", end: "2026-12-01" }, now))?.path).toBe("end");
    expect(issueOf(() => resolveBucketRange({ start: "2026-12-01", end: "2026-12-01" }, now))?.path).toBe("end");
  });
});
