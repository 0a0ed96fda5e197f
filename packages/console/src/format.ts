/** Display formatting: pure functions, so they are unit-tested without a browser (format.test.ts). */
import type { TaskStatus } from "@framegate/sdk";

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Credits are whole numbers in the API; grouped for reading ("12,500 credits"). */
export function formatCredits(amount: number): string {
  return `${integer.format(amount)} ${Math.abs(amount) === 1 ? "credit" : "credits"}`;
}

/** A compact axis label: 950, 1.2k, 3.4M. */
export function formatCompact(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1_000_000) return `${trimZero((value / 1_000_000).toFixed(1))}M`;
  if (abs >= 1_000) return `${trimZero((value / 1_000).toFixed(1))}k`;
  return integer.format(value);
}

const trimZero = (s: string) => s.replace(/\.0$/, "");

/** An ISO 8601 instant as "2026-12-07 14:03 UTC": unambiguous whatever the viewer's locale. */
export function formatInstant(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** A UTC day ("2026-12-07") as a short axis label ("Dec 7"). */
export function formatDay(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

/** Milliseconds between two instants as "4 s", "2 min 5 s", "1 h 3 min"; "—" when either is missing. */
export function formatElapsed(fromIso: string | null | undefined, toIso: string | null | undefined): string {
  if (!fromIso || !toIso) return "—";
  const ms = Date.parse(toIso) - Date.parse(fromIso);
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

/** Bytes for people: 512 B, 1.5 MB (decimal units, as the API's limits are written). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${trimZero(value.toFixed(1))} ${units[unit]}`;
}

/** What a status is called on screen; a failed task whose error says "canceled" reads as canceled. */
export function statusLabel(status: TaskStatus, reason?: string | null): string {
  if (status === "failed" && reason === "canceled") return "Canceled";
  return { queued: "Queued", processing: "Processing", succeeded: "Succeeded", failed: "Failed" }[status];
}

/** A task can be canceled until it settles (the server may still refuse: not_cancelable). */
export function isCancelable(status: TaskStatus): boolean {
  return status === "queued" || status === "processing";
}
