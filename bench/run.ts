/**
 * `npm run bench`: request-path and end-to-end benchmarks of Framegate against a bare node:http
 * server measured in the same run (issue #13). Everything listens on 127.0.0.1.
 *
 *   baseline     bare node:http hello world, before each request-path scenario and after the last
 *   get          GET /api/v1/generations/{id} with a valid key
 *   credits      GET /api/v1/credits
 *   create       POST /api/v1/generations, every body unique; then a ledger check
 *   create-idem  the same with a unique Idempotency-Key each
 *   upload       POST /api/v1/files, a 5 MB PNG (fewer connections)
 *   e2e          N tasks created, run by the worker (simulator without rendering), finalized
 *
 * Each server is a child process with a fresh DATA_DIR (and, with DATABASE_URL, a throwaway
 * PostgreSQL database); the request-path server runs without a worker. Run with --help for flags.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { endToEndEnv, runEndToEnd, warmUpEndToEnd } from "./lib/end-to-end.js";
import { launchFramegate } from "./lib/framegate.js";
import { type BenchOptions, parseOptions, UsageError } from "./lib/options.js";
import { ROOT, startBaseline } from "./lib/processes.js";
import { type BenchReport, baselineRps, findProblems, formatTable, writeReport } from "./lib/report.js";
import { measure, runRequestPath } from "./lib/scenarios.js";

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main() {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2), process.env, join(ROOT, "bench", "results"));
  } catch (error) {
    if (error instanceof UsageError) {
      if (error.message) console.error(error.message);
      console.error(error.usage);
      process.exit(error.message ? 2 : 0);
    }
    throw error;
  }
  const pgAdminUrl = process.env.DATABASE_URL || undefined;
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    store: pgAdminUrl ? "postgres" : "sqlite",
    machine: { cpus: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}` },
    options: { ...opts },
    baseline: { runs: [], rps: null },
    scenarios: [],
    endToEnd: null,
    serverLog: {},
    problems: [],
  };
  const requestPath = opts.only.filter((s) => s !== "e2e");
  log(
    `framegate bench on ${report.store}: ${opts.only.join(", ")}; ${opts.duration} s each (+${opts.warmup} s warm-up)`,
  );
  const scratch = await mkdtemp(join(tmpdir(), "framegate-bench-files-"));
  try {
    const baseline = await startBaseline();
    try {
      const measureBaseline = async () => {
        log("- baseline (bare node:http)");
        // Warmed up once: the same child serves every baseline run.
        const warm = report.baseline.runs.length > 0;
        const run = await measure(warm ? { ...opts, warmup: 0 } : opts, {
          url: baseline.url,
          connections: opts.connections,
          serverPid: baseline.pid,
        });
        report.baseline.runs.push(run);
        return run;
      };
      if (requestPath.length > 0) {
        const framegate = await launchFramegate(
          "api",
          { WORKER_CONCURRENCY: "0" },
          pgAdminUrl,
          opts.cpuProfDir,
          opts.cpuProfIntervalUs,
        );
        try {
          report.scenarios = await runRequestPath(opts, requestPath, framegate, scratch, measureBaseline);
        } finally {
          await framegate.close();
          report.serverLog.api = framegate.server.logged;
        }
      } else {
        await measureBaseline();
      }
    } finally {
      await baseline.stop();
    }
    report.baseline.rps = baselineRps(report.baseline.runs);

    if (opts.only.includes("e2e")) {
      log(`- e2e (${opts.tasks} tasks, WORKER_CONCURRENCY=${opts.workerConcurrency})`);
      const env = { ...endToEndEnv(report.store), WORKER_CONCURRENCY: String(opts.workerConcurrency) };
      const framegate = await launchFramegate("e2e", env, pgAdminUrl, opts.cpuProfDir, opts.cpuProfIntervalUs);
      try {
        const account = await framegate.newAccount("bench-e2e", opts.tasks * 55 + 1000);
        const db = await framegate.openReader();
        try {
          // The simulator renders its one video per shape on the first task of that shape: done
          // here, on an account of its own, so the measured run reuses a pre-rendered MP4.
          await warmUpEndToEnd(framegate.server.url, await framegate.newAccount("bench-e2e-warm-up", 1000), log);
          report.endToEnd = await runEndToEnd({
            baseUrl: framegate.server.url,
            ...account,
            db,
            tasks: opts.tasks,
            connections: opts.connections,
            timeoutSeconds: opts.e2eTimeout,
            log,
          });
        } finally {
          await db.close();
        }
      } finally {
        await framegate.close();
        report.serverLog.e2e = framegate.server.logged;
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  report.problems = findProblems(report);
  console.log(formatTable(report));
  if (opts.resultsDir) log(`results: ${writeReport(opts.resultsDir, report)}`);
  process.exitCode = report.problems.length > 0 ? 1 : 0;
}

await main();
