import { describe, expect, it } from "vitest";
import {
  operatorFiltersToQuery,
  parseCreditAmount,
  parseLimit,
  parseOperatorFilters,
  toAdminQuery,
} from "./operator-filters.js";

describe("operator task filters", () => {
  it("keeps well-formed values and drops the rest", () => {
    const f = parseOperatorFilters(
      new URLSearchParams(
        "account_id=acct_1&status=failed&model=kling-2-6&provider=sim%20x&from=2026-12-01&to=2026-02-30",
      ),
    );
    expect(f).toEqual({
      accountId: "acct_1",
      status: "failed",
      model: "kling-2-6",
      provider: undefined,
      from: "2026-12-01",
      to: undefined,
    });
    expect(parseOperatorFilters(new URLSearchParams("status=done")).status).toBeUndefined();
  });

  it("round-trips through the URL", () => {
    const f = parseOperatorFilters(
      new URLSearchParams("account_id=acct_1&status=queued&from=2026-12-01&to=2026-12-02"),
    );
    const query = new URLSearchParams(
      Object.entries(operatorFiltersToQuery(f)).filter((e): e is [string, string] => e[1] !== undefined),
    );
    expect(parseOperatorFilters(query)).toEqual(f);
  });

  it("sends the day range as created_after (inclusive) and created_before (the next day's start)", () => {
    const f = parseOperatorFilters(new URLSearchParams("from=2026-12-01&to=2026-12-01&account_id=acct_1"));
    expect(toAdminQuery(f)).toEqual({
      account_id: "acct_1",
      created_after: "2026-12-01T00:00:00.000Z",
      created_before: "2026-12-02T00:00:00.000Z",
    });
    expect(toAdminQuery(parseOperatorFilters(new URLSearchParams("from=2026-12-03&to=2026-12-01")))).toBeUndefined();
    expect(toAdminQuery(parseOperatorFilters(new URLSearchParams("")))).toEqual({});
  });
});

describe("operator forms", () => {
  it("reads a credit amount: a whole number from 1 to 1e9", () => {
    expect(parseCreditAmount("500")).toBe(500);
    expect(parseCreditAmount(" 12,500 ")).toBe(12_500);
    for (const bad of ["", "0", "-5", "1.5", "abc", "1000000001"]) expect(parseCreditAmount(bad)).toBeNull();
  });

  it("reads a limit: empty is the default (null), else 1..max, else undefined", () => {
    expect(parseLimit("", 10)).toBeNull();
    expect(parseLimit(" 3 ", 10)).toBe(3);
    expect(parseLimit("0", 10)).toBeUndefined();
    expect(parseLimit("11", 10)).toBeUndefined();
    expect(parseLimit("2.5", 10)).toBeUndefined();
  });
});
