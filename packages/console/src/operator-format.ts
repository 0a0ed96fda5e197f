/** Formatting for the operator pages: pure, unit-tested in operator-format.test.ts. */

/** Seconds as a person reads them: "—" for none, "42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "1 of 4 (25%)", or "no finished tasks" when there is nothing to divide by. */
export function formatRate(errors: number, finished: number, rate: number | null): string {
  if (rate === null || finished === 0) return "no finished tasks";
  return `${errors} of ${finished} (${Math.round(rate * 1000) / 10}%)`;
}

/** A JSON value for a <pre>: pretty-printed; "—" for null or undefined. */
export function formatJson(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return JSON.stringify(value, null, 2);
}
