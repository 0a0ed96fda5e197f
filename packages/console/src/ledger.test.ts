import type { LedgerEntry } from "@framegate/sdk";
import { describe, expect, it } from "vitest";
import { csvField, ledgerCsv, ledgerFileName, ledgerQuery, parseLedgerTypes } from "./ledger.js";

const entry = (over: Partial<LedgerEntry>): LedgerEntry => ({
  id: "led_1",
  object: "ledger_entry",
  type: "reserve",
  amount: -55,
  balance_after: 945,
  task_id: "task_a",
  reason: null,
  created_at: "2026-12-07T04:00:00.000Z",
  ...over,
});

describe("ledger type filter", () => {
  it("keeps known types once, in the catalog's order, from one or repeated parameters", () => {
    expect(parseLedgerTypes(new URLSearchParams("type=refund,grant,refund"))).toEqual(["grant", "refund"]);
    expect(parseLedgerTypes(new URLSearchParams("type=release&type= reserve"))).toEqual(["reserve", "release"]);
    expect(parseLedgerTypes(new URLSearchParams("type=bonus,,"))).toEqual([]);
    expect(parseLedgerTypes(new URLSearchParams(""))).toEqual([]);
  });

  it("writes no filter for none or all types", () => {
    expect(ledgerQuery([])).toEqual({ type: undefined });
    expect(ledgerQuery(["refund", "grant", "reserve", "release"])).toEqual({ type: undefined });
    expect(ledgerQuery(["refund", "grant"])).toEqual({ type: "grant,refund" });
  });
});

describe("ledger CSV", () => {
  it("quotes commas, quotes and line breaks as RFC 4180 says", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField('say "hi", then go')).toBe('"say ""hi"", then go"');
    expect(csvField("two\r\nlines")).toBe('"two\r\nlines"');
    expect(csvField("one\nline")).toBe('"one\nline"');
    expect(csvField(null)).toBe("");
    expect(csvField(-55)).toBe("-55");
    expect(csvField(0)).toBe("0");
  });

  it("defuses text a spreadsheet would run as a formula", () => {
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvField("+1")).toBe("'+1");
    expect(csvField("-x")).toBe("'-x");
    expect(csvField("@sum")).toBe("'@sum");
    expect(csvField("=a,b")).toBe(`"'=a,b"`);
  });

  it("writes a header and one CRLF-ended row per entry, in the order given", () => {
    const csv = ledgerCsv([
      entry({}),
      entry({ id: "led_0", type: "grant", amount: 1000, balance_after: 1000, task_id: null, reason: 'welcome, "new"' }),
    ]);
    expect(csv).toBe(
      "id,created_at,type,amount,balance_after,task_id,reason\r\n" +
        "led_1,2026-12-07T04:00:00.000Z,reserve,-55,945,task_a,\r\n" +
        'led_0,2026-12-07T04:00:00.000Z,grant,1000,1000,,"welcome, ""new"""\r\n',
    );
    expect(ledgerCsv([])).toBe("id,created_at,type,amount,balance_after,task_id,reason\r\n");
  });

  it("names the file after the filter and the day", () => {
    const now = new Date("2026-12-07T23:59:00Z");
    expect(ledgerFileName([], now)).toBe("ledger-2026-12-07.csv");
    expect(ledgerFileName(["refund", "grant"], now)).toBe("ledger-grant-refund-2026-12-07.csv");
  });
});
