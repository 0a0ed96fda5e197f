/**
 * What `framegate verify`'s checks report into. Each domain's check (ledger/invariants.ts,
 * generations/invariants.ts, files/invariants.ts) counts what it looked at and records each
 * violation with the row or object it is about; only the first few violations of a check are
 * kept in full, so a badly broken database still verifies in bounded memory.
 */

/** The checks, in the order they run and are printed. */
export const CHECK_NAMES = [
  "balances",
  "ledger_references",
  "task_credits",
  "stale_jobs",
  "result_media",
  "file_bytes",
  "orphan_objects",
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface Violation {
  /** The row or object it is about: an account, task, ledger entry or job id, or a storage key. */
  subject: string;
  message: string;
}

export interface CheckResult {
  name: CheckName;
  /** What the check covered, in its own unit ("accounts", "tasks", "objects", …). */
  checked: number;
  unit: string;
  violations: number;
  /** The first violations, up to the report's limit (the count above is the whole). */
  examples: Violation[];
}

export class Findings {
  private readonly results = new Map<CheckName, CheckResult>();

  constructor(private readonly keepPerCheck: number) {}

  /** Starts (or returns) a check's entry; `unit` names what `checked` counts. */
  check(name: CheckName, unit: string): CheckResult {
    let result = this.results.get(name);
    if (!result) {
      result = { name, checked: 0, unit, violations: 0, examples: [] };
      this.results.set(name, result);
    }
    return result;
  }

  violation(name: CheckName, subject: string, message: string): void {
    const result = this.results.get(name);
    if (!result) throw new Error(`check ${name} was not started`);
    result.violations++;
    if (result.examples.length < this.keepPerCheck) result.examples.push({ subject, message });
  }

  all(): CheckResult[] {
    return CHECK_NAMES.flatMap((name) => this.results.get(name) ?? []);
  }
}

/** Splits `ids` into chunks small enough for an `in (…)` list on both dialects. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
