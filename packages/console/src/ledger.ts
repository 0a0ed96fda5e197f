/**
 * The ledger page's plain logic: the type filter read from and written to the URL, and the CSV
 * export (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a comma, quote
 * or line break, quotes doubled). Unit-tested in ledger.test.ts.
 */
import type { LedgerEntry, LedgerEntryType } from "@framegate/sdk";
import { LEDGER_TYPE_NAMES } from "./vocabulary.js";

/** `?type=reserve,refund`: known types only, each once, in the catalog's order; none means all. */
export function parseLedgerTypes(query: URLSearchParams): LedgerEntryType[] {
  const asked = new Set(
    query
      .getAll("type")
      .flatMap((v) => v.split(","))
      .map((v) => v.trim()),
  );
  return LEDGER_TYPE_NAMES.filter((t) => asked.has(t));
}

/** The URL query of a filter: all types or none is no filter at all. */
export function ledgerQuery(types: readonly LedgerEntryType[]): Record<string, string | undefined> {
  const known = LEDGER_TYPE_NAMES.filter((t) => types.includes(t));
  return { type: known.length === 0 || known.length === LEDGER_TYPE_NAMES.length ? undefined : known.join(",") };
}

export const CSV_COLUMNS = ["id", "created_at", "type", "amount", "balance_after", "task_id", "reason"] as const;

/**
 * One CSV field. Besides RFC 4180 quoting, a text that a spreadsheet would read as a formula
 * (starting with =, +, -, @, tab or carriage return) gets a leading apostrophe: reasons are
 * free text an operator typed. Numbers are written as they are (a negative amount is a number).
 */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The ledger as CSV, a header row first, entries in the order given (the API's: newest first). */
export function ledgerCsv(entries: readonly LedgerEntry[]): string {
  const rows = [CSV_COLUMNS.join(",")];
  for (const entry of entries) rows.push(CSV_COLUMNS.map((column) => csvField(entry[column])).join(","));
  return `${rows.join("\r\n")}\r\n`;
}

/** "ledger-2026-12-07.csv", or "ledger-refund-2026-12-07.csv" when filtered. */
export function ledgerFileName(types: readonly LedgerEntryType[], now: Date): string {
  const filter = ledgerQuery(types).type;
  return `ledger${filter ? `-${filter.replaceAll(",", "-")}` : ""}-${now.toISOString().slice(0, 10)}.csv`;
}
