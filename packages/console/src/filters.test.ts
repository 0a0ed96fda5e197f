import { describe, expect, it } from "vitest";
import { filtersToQuery, inDateRange, parseFilters, pastRange } from "./filters.js";

describe("generation list filters", () => {
  it("keeps valid values and drops malformed ones", () => {
    expect(
      parseFilters(new URLSearchParams("status=failed&client_request_id=%20order-7%20&from=2026-12-01&to=2026-12-07")),
    ).toEqual({ status: "failed", clientRequestId: "order-7", from: "2026-12-01", to: "2026-12-07" });
    expect(
      parseFilters(
        new URLSearchParams(`status=done&client_request_id=${"x".repeat(129)}&from=2026-13-45&to=yesterday`),
      ),
    ).toEqual({ status: undefined, clientRequestId: undefined, from: undefined, to: undefined });
  });

  it("round-trips through the URL query", () => {
    const filters = parseFilters(new URLSearchParams("status=queued&from=2026-01-02"));
    expect(filtersToQuery(filters)).toEqual({
      status: "queued",
      client_request_id: undefined,
      from: "2026-01-02",
      to: undefined,
    });
  });

  it("treats the date range as inclusive UTC days", () => {
    expect(inDateRange("2026-12-01T00:00:00Z", "2026-12-01", "2026-12-01")).toBe(true);
    expect(inDateRange("2026-12-01T23:59:59Z", "2026-12-01", "2026-12-01")).toBe(true);
    expect(inDateRange("2026-12-02T00:00:00Z", "2026-12-01", "2026-12-01")).toBe(false);
    expect(inDateRange("2026-11-30T23:59:59Z", "2026-12-01", undefined)).toBe(false);
    expect(inDateRange("2020-01-01T00:00:00Z", undefined, undefined)).toBe(true);
  });

  it("knows when newest-first pages have gone past the start of the range", () => {
    expect(pastRange("2026-11-30T12:00:00Z", "2026-12-01")).toBe(true);
    expect(pastRange("2026-12-01T12:00:00Z", "2026-12-01")).toBe(false);
    expect(pastRange(undefined, "2026-12-01")).toBe(false);
    expect(pastRange("2026-11-30T12:00:00Z", undefined)).toBe(false);
  });
});
