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
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { makeBigImage } from "../packages/server/test/fixtures/media.js";
import { type CreateCheck, checkCreates } from "./lib/checks.js";
import { END_TO_END_ENV, runEndToEnd } from "./lib/end-to-end.js";
import { CreateTracker, type LoadFigures, type LoadSpec, multipartBody, runLoad } from "./lib/load.js";
import { type BenchOptions, parseOptions, type ScenarioName, UsageError } from "./lib/options.js";
import { type ChildServer, ROOT, sleep, startBaseline, startFramegate } from "./lib/processes.js";
import { type BenchReport, baselineRps, formatTable, ratio, type ScenarioResult, writeReport } from "./lib/report.js";
import {
  createThrowawayDatabase,
  openPgReader,
  openSqliteReader,
  type StoreReader,
  type ThrowawayDatabase,
} from "./lib/store-reader.js";

const ADMIN_TOKEN = randomBytes(24).toString("hex");
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Environment of every Framegate child: only what is measured, nothing that throttles it. */
const BASE_ENV: Record<string, string> = {
  LOG_LEVEL: "warn",
  ADMIN_TOKEN,
  BOOTSTRAP_DEV_ACCOUNT: "false",
  RATE_LIMIT_CREATE_PER_MIN: "0",
  RATE_LIMIT_UPLOAD_PER_MIN: "0",
  RATE_LIMIT_READ_PER_MIN: "0",
  RATE_LIMIT_WRITE_PER_MIN: "0",
  // Each upload is stored: quotas would refuse the run's later uploads, not measure them.
  ACCOUNT_MAX_FILE_BYTES: String(2 ** 50),
  ACCOUNT_MAX_FILES: "10000000",
};

interface Framegate {
  server: ChildServer;
  openReader(): Promise<StoreReader>;
  admin<T>(path: string, body: unknown): Promise<T>;
  newAccount(name: string, credits: number): Promise<{ accountId: string; apiKey: string }>;
  close(): Promise<void>;
}

async function launchFramegate(
  label: string,
  env: Record<string, string>,
  pgAdminUrl: string | undefined,
  cpuProfDir: string | null,
) {
  const dataDir = await mkdtemp(join(tmpdir(), `framegate-bench-${label}-`));
  let database: ThrowawayDatabase | undefined;
  let server: ChildServer | undefined;
  try {
    if (pgAdminUrl) database = await createThrowawayDatabase(pgAdminUrl, label.replace(/\W/g, "_"));
    server = await startFramegate(
      { ...BASE_ENV, DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}), ...env },
      label,
      cpuProfDir,
    );
  } catch (error) {
    await database?.drop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const running = server;
  const admin = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${running.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const framegate: Framegate = {
    server: running,
    openReader: () => (database ? openPgReader(database.url) : Promise.resolve(openSqliteReader(dataDir))),
    admin,
    newAccount: async (name, credits) => {
      const account = await admin<{ id: string }>("/admin/v1/accounts", { name, credits });
      const key = await admin<{ key: string }>(`/admin/v1/accounts/${account.id}/keys`, {});
      return { accountId: account.id, apiKey: key.key };
    },
    close: async () => {
      await running.stop();
      await database?.drop().catch((e) => log(`could not drop ${label}'s database: ${(e as Error).message}`));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return framegate;
}

/**
 * An unmeasured warm-up (so the JIT and the database's caches are warm), then a pause for the
 * requests the warm-up cut off to drain on the server, then the measured run.
 */
async function measure(
  opts: BenchOptions,
  spec: Omit<LoadSpec, "duration" | "amount">,
  drainMs = 500,
): Promise<LoadFigures> {
  if (opts.warmup > 0) {
    await runLoad({ ...spec, duration: opts.warmup });
    await sleep(drainMs);
  }
  return runLoad({ ...spec, duration: opts.duration });
}

/**
 * The request-path scenarios, each between two baseline runs: on a shared machine the load from
 * elsewhere drifts, and a ratio taken against the runs on either side of it drifts least.
 */
async function runRequestPath(
  opts: BenchOptions,
  names: ScenarioName[],
  framegate: Framegate,
  scratch: string,
  measureBaseline: () => Promise<number>,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const url = framegate.server.url;
  const { apiKey } = await framegate.newAccount("bench-reads", 1_000_000);
  const auth = { authorization: `Bearer ${apiKey}` };
  const connections = opts.connections;

  let before = await measureBaseline();
  const withBaseline = async (result: Omit<ScenarioResult, "baselineRps" | "ratio">) => {
    const after = await measureBaseline();
    const baseline = Math.round((before + after) / 2);
    results.push({ ...result, baselineRps: baseline, ratio: ratio(result.figures.rps, baseline) });
    before = after;
  };
  for (const name of names) {
    log(`- ${name}`);
    if (name === "get") {
      const created = await fetch(`${url}/api/v1/generations`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ model: "kling-2-6", prompt: "a task to read", params: { duration: "5" } }),
      });
      const task = (await created.json()) as { id: string };
      const path = `/api/v1/generations/${task.id}`;
      const figures = await measure(opts, { url: `${url}${path}`, connections, headers: auth });
      await withBaseline({ name, route: "GET /api/v1/generations/{id}", connections, figures });
    } else if (name === "credits") {
      const figures = await measure(opts, { url: `${url}/api/v1/credits`, connections, headers: auth });
      await withBaseline({ name, route: "GET /api/v1/credits", connections, figures });
    } else if (name === "create" || name === "create-idem") {
      const idempotent = name === "create-idem";
      const account = await framegate.newAccount(`bench-${name}`, 1_000_000_000);
      const tracker = new CreateTracker(name, account.apiKey, idempotent);
      const figures = await measure(opts, { url, connections, requests: [tracker.request()] });
      const db = await framegate.openReader();
      let ledger: CreateCheck;
      try {
        ledger = await checkCreates(db, account.accountId, tracker);
      } finally {
        await db.close();
      }
      const route = `POST /api/v1/generations${idempotent ? " + Idempotency-Key" : ""}`;
      await withBaseline({ name, route, connections, figures, ledger });
    } else if (name === "upload") {
      const png = await makeBigImage(scratch, 5 * 1024 * 1024);
      const { body, contentType } = multipartBody(
        { kind: "image" },
        { name: "bench.png", type: "image/png", bytes: readFileSync(png) },
      );
      const uploadConnections = opts.uploadConnections;
      // Inspection (one thread per spare core) is the bottleneck: the warm-up's cut-off uploads
      // are left to finish, or the measured run would start with the inspection queue full.
      const figures = await measure(
        opts,
        {
          url: `${url}/api/v1/files`,
          connections: uploadConnections,
          method: "POST",
          headers: { ...auth, "content-type": contentType },
          body,
          timeout: 120,
        },
        5000,
      );
      const busy = figures.statusCounts["503"] ?? 0;
      await withBaseline({
        name,
        route: "POST /api/v1/files (5 MB PNG)",
        connections: uploadConnections,
        figures,
        note:
          `${(body.length / 1024 / 1024).toFixed(1)} MB per request, ${uploadConnections} connections (not ${connections}: each request carries 5 MB)` +
          (busy > 0 ? `; ${busy} turned away with 503 (inspection queue full, Retry-After)` : ""),
      });
    }
  }
  return results;
}

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
        });
        report.baseline.runs.push(run);
        return run.rps;
      };
      if (requestPath.length > 0) {
        const framegate = await launchFramegate("api", { WORKER_CONCURRENCY: "0" }, pgAdminUrl, opts.cpuProfDir);
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
      const env = { ...END_TO_END_ENV, WORKER_CONCURRENCY: String(opts.workerConcurrency) };
      const framegate = await launchFramegate("e2e", env, pgAdminUrl, opts.cpuProfDir);
      try {
        const account = await framegate.newAccount("bench-e2e", opts.tasks * 55 + 1000);
        const db = await framegate.openReader();
        try {
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

  for (const s of report.scenarios) {
    if (s.ledger && !s.ledger.ok) report.problems.push(`${s.name}: ledger check failed`);
    // 503 with Retry-After is the upload path's documented backpressure (reported in its note).
    const fiveXX = Object.entries(s.figures.statusCounts).filter(
      ([code]) => code.startsWith("5") && !(s.name === "upload" && code === "503"),
    );
    if (fiveXX.length > 0)
      report.problems.push(`${s.name}: server errors ${JSON.stringify(Object.fromEntries(fiveXX))}`);
  }
  for (const [label, logged] of Object.entries(report.serverLog)) {
    if (logged.error > 0)
      report.problems.push(`the ${label} server logged ${logged.error} errors (the first are above)`);
  }
  const e2e = report.endToEnd;
  if (e2e && e2e.accepted < e2e.tasks) {
    report.problems.push(
      `e2e: ${e2e.tasks - e2e.accepted} creates not answered 202 (${JSON.stringify(e2e.create.statusCounts)}, ${e2e.create.errors} errors)`,
    );
  }
  if (e2e && !e2e.completed) report.problems.push("e2e: not every task finished before the timeout");
  if (e2e && !e2e.ledgerOk) report.problems.push("e2e: ledger check failed");

  console.log(formatTable(report));
  if (opts.resultsDir) log(`results: ${writeReport(opts.resultsDir, report)}`);
  process.exitCode = report.problems.length > 0 ? 1 : 0;
}

await main();
