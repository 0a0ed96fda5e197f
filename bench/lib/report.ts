/**
 * The printed table and the JSON file of a run. Every rate is shown beside the bare node:http
 * baseline of the same run, because on a shared machine only the ratio is comparable across runs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CreateCheck } from "./checks.js";
import type { EndToEndResult } from "./end-to-end.js";
import type { LoadFigures } from "./load.js";

export interface ScenarioResult {
  name: string;
  route: string;
  connections: number;
  figures: LoadFigures;
  /** Mean req/s of the baseline runs just before and just after this scenario. */
  baselineRps: number;
  /** figures.rps / baselineRps. */
  ratio: number | null;
  /** The baseline runs' server CPU time per request over this scenario's (Linux; else null). */
  cpuRatio: number | null;
  ledger?: CreateCheck;
  note?: string;
}

export interface BenchReport {
  startedAt: string;
  store: "sqlite" | "postgres";
  machine: { cpus: number; node: string; platform: string };
  options: Record<string, unknown>;
  baseline: { runs: LoadFigures[]; rps: number | null };
  scenarios: ScenarioResult[];
  endToEnd: EndToEndResult | null;
  /** Warnings and errors each Framegate child logged (LOG_LEVEL=warn). */
  serverLog: Record<string, { warn: number; error: number }>;
  /** Any broken guarantee (ledger, task count, 5xx) found in the run. */
  problems: string[];
}

export function ratio(rps: number, baselineRps: number | null): number | null {
  return baselineRps ? Number((rps / baselineRps).toPrecision(3)) : null;
}

/** The mean of the baseline runs, or null when none ran. */
export function baselineRps(runs: readonly LoadFigures[]): number | null {
  if (runs.length === 0) return null;
  return Math.round(runs.reduce((sum, r) => sum + r.rps, 0) / runs.length);
}

export function formatTable(report: BenchReport): string {
  const rows: string[][] = [
    [
      "scenario",
      "route",
      "conns",
      "req/s",
      "baseline",
      "ratio",
      "cpu µs/req",
      "cpu ratio",
      "p50 ms",
      "p99 ms",
      "non-2xx",
      "errors",
    ],
  ];
  const tail = (f: LoadFigures) => [fmt(f.p50), fmt(f.p99), fmt(f.non2xx), fmt(f.errors)];
  const cpu = (f: LoadFigures) => (f.cpuMicrosPerRequest === null ? "-" : fmt(f.cpuMicrosPerRequest));
  const conns = String(report.options.connections ?? "");
  report.baseline.runs.forEach((run, i) => {
    rows.push(["baseline", `bare node:http (run ${i + 1})`, conns, fmt(run.rps), "", "1", cpu(run), "1", ...tail(run)]);
  });
  for (const s of report.scenarios) {
    const r = s.ratio === null ? "-" : String(s.ratio);
    const c = s.cpuRatio === null ? "-" : String(s.cpuRatio);
    rows.push([
      s.name,
      s.route,
      String(s.connections),
      fmt(s.figures.rps),
      fmt(s.baselineRps),
      r,
      cpu(s.figures),
      c,
      ...tail(s.figures),
    ]);
  }
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length))) ?? [];
  const line = (r: string[]) =>
    r.map((cell, col) => (col <= 1 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0))).join("  ");
  const m = report.machine;
  const title = `Framegate on ${report.store}; ${m.cpus} cores, node ${m.node}; ${report.options.duration} s per run`;
  const out = [
    title,
    line(rows[0] as string[]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ];

  for (const s of report.scenarios) {
    if (s.ledger) {
      const l = s.ledger;
      out.push(
        `${s.name}: ledger ${l.ok ? "OK" : "BROKEN"}: ${l.tasks} tasks = ${l.accepted} answered 202 + ${l.cutOffCommitted} of ${l.cutOff} cut off at the stop; ` +
          `balance ${l.ledger.balance} = granted ${l.ledger.granted} - reserved ${l.ledger.reserved}; ` +
          `submit jobs ${l.tasksWithoutJob === null ? "unchecked" : l.tasksWithoutJob === 0 ? "all present" : `${l.tasksWithoutJob} missing`}`,
      );
      for (const p of l.problems) out.push(`  ! ${p}`);
    }
    if (s.note) out.push(`${s.name}: ${s.note}`);
  }
  const e = report.endToEnd;
  if (e) {
    out.push(
      e.completed
        ? `e2e: ${e.progress.total} tasks (${e.accepted} answered 202) in ${e.seconds?.toFixed(2)} s = ${e.tasksPerSecond} tasks/s (first created → last finalized; bench clock ${e.wallSeconds.toFixed(2)} s); created at ${e.createdPerSecond}/s while the worker ran`
        : `e2e: NOT FINISHED after ${e.wallSeconds.toFixed(0)} s: ${e.progress.terminal}/${e.progress.total} terminal, ${e.progress.settled} settled, ${e.progress.withEvent} events`,
      `e2e: ${e.progress.succeeded} succeeded, ${e.progress.failed} failed; ledger ${e.ledgerOk ? "OK" : "BROKEN"} (balance ${e.ledger.balance}, charged ${e.progress.charged}, refunded ${e.ledger.refunded}); ` +
        `webhooks delivered ${e.deliveredAtFinish} at the finish, ${e.delivered}${e.deliveriesLagSeconds === null ? " (not all)" : ` (all, ${e.deliveriesLagSeconds.toFixed(1)} s after the finish)`}`,
    );
  }
  for (const p of report.problems) out.push(`PROBLEM: ${p}`);
  return out.join("\n");
}

/** Writes `<dir>/<timestamp>-<store>.json` and returns its path. */
export function writeReport(dir: string, report: BenchReport): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${report.startedAt.replace(/[:.]/g, "-")}-${report.store}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** Every broken guarantee or failure of the run, one line each (the exit status is 1 if any). */
export function findProblems(report: BenchReport): string[] {
  const problems: string[] = [];
  for (const s of report.scenarios) {
    if (s.ledger && !s.ledger.ok) problems.push(`${s.name}: ledger check failed`);
    // 503 with Retry-After is the upload path's documented backpressure (reported in its note).
    const fiveXX = Object.entries(s.figures.statusCounts).filter(
      ([code]) => code.startsWith("5") && !(s.name === "upload" && code === "503"),
    );
    if (fiveXX.length > 0) problems.push(`${s.name}: server errors ${JSON.stringify(Object.fromEntries(fiveXX))}`);
  }
  for (const [label, logged] of Object.entries(report.serverLog)) {
    if (logged.error > 0) problems.push(`the ${label} server logged ${logged.error} errors (the first are above)`);
  }
  const e2e = report.endToEnd;
  if (e2e && e2e.accepted < e2e.tasks) {
    problems.push(
      `e2e: ${e2e.tasks - e2e.accepted} creates not answered 202 (${JSON.stringify(e2e.create.statusCounts)}, ${e2e.create.errors} errors)`,
    );
  }
  if (e2e && !e2e.completed) problems.push("e2e: not every task finished before the timeout");
  if (e2e && !e2e.ledgerOk) problems.push("e2e: ledger check failed");

  return problems;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString("en-US") : n.toFixed(1);
}
