/**
 * The list commands' common parts: `--limit` (how many items to show, walking as many API pages as
 * that takes) and a plain-text table.
 */
import type { PagePromise } from "@framegate/sdk";
import { usageError } from "./output.js";

/** The API's largest page: a long `--limit` is fetched in pages of this many. */
export const MAX_PAGE_SIZE = 100;

/** `--limit`: a whole number ≥ 1 (default `fallback`); it may exceed one page. */
export function parseLimit(raw: string | undefined, fallback = 20): number {
  if (raw === undefined) return fallback;
  const limit = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(limit) || limit < 1) throw usageError(`--limit must be a whole number ≥ 1 (got "${raw}")`);
  return limit;
}

/**
 * Up to `limit` items, newest first, across as many pages as needed. `has_more` says whether the
 * API holds more after the last one returned (so `--starting-after <last id>` continues).
 */
export async function collect<T extends { id: string }>(
  first: PagePromise<T>,
  limit: number,
): Promise<{ object: "list"; data: T[]; has_more: boolean }> {
  const data: T[] = [];
  for await (const page of (await first).iterPages()) {
    for (const [i, item] of page.data.entries()) {
      data.push(item);
      if (data.length === limit) {
        return { object: "list", data, has_more: i < page.data.length - 1 || page.hasNextPage() };
      }
    }
  }
  return { object: "list", data, has_more: false };
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
