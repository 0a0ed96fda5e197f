/**
 * `framegate verify`: checks that the store's records agree with each other and with storage,
 * after an incident, a restore or an upgrade. Read-only: it reports and never repairs (an orphaned
 * object is listed, not deleted). Each check lives with the domain that owns its tables:
 * ledger/invariants.ts, generations/invariants.ts, files/invariants.ts; this module runs them in
 * order and walks storage once for orphaned objects.
 *
 * Every query is a page in key order through the store's Kysely executor, so it runs the same on
 * SQLite and PostgreSQL and memory stays bounded by the page size and the examples kept per check.
 * On a live server the report is of a moving target: the checks that could catch a write half way
 * (stale jobs, orphaned objects) leave out what changed within the grace period.
 */
import { checkFileBytes, FILE_PREFIX, UPLOAD_STAGING_PREFIX, unreferencedFiles } from "../files/invariants.js";
import {
  checkResultMedia,
  checkStaleJobs,
  checkTaskCredits,
  RESULT_PREFIX,
  unreferencedResults,
} from "../generations/invariants.js";
import { checkBalances, checkLedgerReferences } from "../ledger/invariants.js";
import type { ListedObject, Storage } from "../storage/storage.js";
import type { Dialect, Executor } from "../store/db.js";
import type { Clock } from "../util/clock.js";
import { type CheckResult, Findings } from "./findings.js";

export interface VerifyOptions {
  db: Executor;
  dialect: Dialect;
  storage: Storage;
  clock: Clock;
  /**
   * Jobs of tasks that ended, and objects written, less than this long ago are not reported:
   * they are the normal in-between of a cancel or an upload on a live server. Default 15 min.
   */
  graceMs?: number;
  /** Violations kept in full per check (all are counted). Default 50. */
  examplesPerCheck?: number;
}

export interface VerifyReport {
  ok: boolean;
  checked_at: string;
  violations: number;
  checks: CheckResult[];
}

export const DEFAULT_GRACE_MS = 15 * 60_000;
const DEFAULT_EXAMPLES = 50;
/** Listed objects looked up in the database at once. */
const OBJECT_BATCH = 500;

export async function verifyStore(opts: VerifyOptions): Promise<VerifyReport> {
  const now = opts.clock.now();
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const findings = new Findings(opts.examplesPerCheck ?? DEFAULT_EXAMPLES);
  await checkBalances(opts.db, findings);
  await checkLedgerReferences(opts.db, findings);
  await checkTaskCredits(opts.db, findings);
  await checkStaleJobs(opts.db, opts.dialect, findings, { now, graceMs });
  await checkResultMedia(opts.db, opts.storage, findings);
  await checkFileBytes(opts.db, opts.storage, findings);
  await checkOrphanObjects(opts.db, opts.storage, findings, new Date(now.getTime() - graceMs));
  const checks = findings.all();
  const violations = checks.reduce((sum, c) => sum + c.violations, 0);
  return { ok: violations === 0, checked_at: now.toISOString(), violations, checks };
}

/** Walks storage once; each batch of keys is matched to its owners by their domain's module. */
async function checkOrphanObjects(db: Executor, storage: Storage, findings: Findings, writtenBefore: Date) {
  const check = findings.check("orphan_objects", "objects");
  let batch: ListedObject[] = [];
  const flush = async () => {
    const results = batch.filter((o) => o.key.startsWith(RESULT_PREFIX)).map((o) => o.key);
    const files = batch.filter((o) => o.key.startsWith(FILE_PREFIX)).map((o) => o.key);
    const why = new Map([...(await unreferencedResults(db, results)), ...(await unreferencedFiles(db, files))]);
    for (const object of batch) {
      const known = object.key.startsWith(RESULT_PREFIX) || object.key.startsWith(FILE_PREFIX);
      const reason = known ? why.get(object.key) : "Framegate writes nothing under this name";
      if (reason) {
        findings.violation(
          "orphan_objects",
          object.key,
          `${object.key} (${object.size} bytes, written ${object.modifiedAt.toISOString()}) is orphaned: ${reason}`,
        );
      }
    }
    batch = [];
  };
  for await (const object of storage.listObjects()) {
    // Writes in progress: partial objects and staged uploads, which housekeeping sweeps.
    if (object.key.startsWith(UPLOAD_STAGING_PREFIX) || object.key.endsWith(".part")) continue;
    // Bytes are stored before the row that names them commits: a recent object may be one of those.
    if (object.modifiedAt >= writtenBefore) continue;
    check.checked++;
    batch.push(object);
    if (batch.length >= OBJECT_BATCH) await flush();
  }
  if (batch.length) await flush();
}

/** The report as a person reads it: one line per check, then its violations. */
export function formatVerifyReport(report: VerifyReport): string {
  const lines = [
    report.ok
      ? `verify: OK, no violations (${report.checked_at})`
      : `verify: ${report.violations} violation${report.violations === 1 ? "" : "s"} (${report.checked_at})`,
    "",
  ];
  const width = Math.max(...report.checks.map((c) => c.name.length));
  for (const c of report.checks) {
    const mark = c.violations ? "FAIL" : "ok";
    const count = `${c.violations} violation${c.violations === 1 ? "" : "s"}`;
    lines.push(`  ${mark.padEnd(4)}  ${c.name.padEnd(width)}  ${c.checked} ${c.unit}, ${count}`);
    for (const v of c.examples) lines.push(`          ${v.message}`);
    if (c.violations > c.examples.length) lines.push(`          … and ${c.violations - c.examples.length} more`);
  }
  return lines.join("\n");
}
