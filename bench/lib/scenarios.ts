/**
 * The request-path scenarios: one server without a worker, each scenario warmed up, measured,
 * and set beside the baseline runs just before and after it.
 */
import { readFileSync } from "node:fs";
import { makeBigImage } from "../../packages/server/test/fixtures/media.js";
import { measureCeiling } from "./ceiling.js";
import { type CreateCheck, checkCreates, combineCreateChecks } from "./checks.js";
import type { Framegate } from "./framegate.js";
import { CreateTracker, type LoadFigures, type LoadSpec, multipartBody, roundRobin, runLoad } from "./load.js";
import type { BenchOptions, ScenarioName } from "./options.js";
import { sleep } from "./processes.js";
import { ratio, type ScenarioResult } from "./report.js";

const log = (line: string) => process.stderr.write(`${line}\n`);

/**
 * An unmeasured warm-up (so the JIT and the database's caches are warm), then a pause for the
 * requests the warm-up cut off to drain on the server, then the measured run.
 */
export async function measure(
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
export async function runRequestPath(
  opts: BenchOptions,
  names: ScenarioName[],
  framegate: Framegate,
  scratch: string,
  measureBaseline: () => Promise<LoadFigures>,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const url = framegate.server.url;
  const { apiKey } = await framegate.newAccount("bench-reads", 1_000_000);
  const auth = { authorization: `Bearer ${apiKey}` };
  const connections = opts.connections;

  const serverPid = framegate.server.pid;
  let before = await measureBaseline();
  const withBaseline = async (result: Omit<ScenarioResult, "baselineRps" | "ratio" | "cpuRatio">) => {
    const after = await measureBaseline();
    const baseline = Math.round((before.rps + after.rps) / 2);
    const cpuRuns = [before, after].map((r) => r.cpuMicrosPerRequest).filter((c): c is number => c !== null);
    const baselineCpu = cpuRuns.length > 0 ? cpuRuns.reduce((a, b) => a + b, 0) / cpuRuns.length : null;
    const cpu = result.figures.cpuMicrosPerRequest;
    results.push({
      ...result,
      baselineRps: baseline,
      ratio: ratio(result.figures.rps, baseline),
      // The same comparison by CPU time: the baseline's CPU per request over this scenario's.
      cpuRatio: baselineCpu !== null && cpu ? ratio(baselineCpu, cpu) : null,
    });
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
      if (created.status !== 202) throw new Error(`the task to read: ${created.status} ${await created.text()}`);
      const task = (await created.json()) as { id: string };
      const path = `/api/v1/generations/${task.id}`;
      const figures = await measure(opts, { url: `${url}${path}`, connections, headers: auth, serverPid });
      await withBaseline({ name, route: "GET /api/v1/generations/{id}", connections, figures });
    } else if (name === "credits") {
      const figures = await measure(opts, { url: `${url}/api/v1/credits`, connections, headers: auth, serverPid });
      await withBaseline({ name, route: "GET /api/v1/credits", connections, figures });
    } else if (name === "ceiling") {
      const figures = await measureCeiling((spec) => measure(opts, spec), connections);
      await withBaseline({
        name,
        route: "the same GET, minimal Hono + SQLite",
        connections,
        figures,
        note: "bench/lib/minimal-server.mjs: key lookup and one task row on Framegate's stack, nothing else",
      });
    } else if (name === "create" || name === "create-idem") {
      const idempotent = name === "create-idem";
      // One account each, the creates sent to them in turn (--accounts).
      const accounts: { accountId: string; tracker: CreateTracker }[] = [];
      for (let i = 0; i < opts.accounts; i++) {
        const suffix = opts.accounts > 1 ? `-a${i}` : "";
        const account = await framegate.newAccount(`bench-${name}${suffix}`, 1_000_000_000);
        accounts.push({
          accountId: account.accountId,
          tracker: new CreateTracker(`${name}${suffix}`, account.apiKey, idempotent),
        });
      }
      const request = roundRobin(accounts.map((a) => a.tracker));
      const figures = await measure(opts, { url, connections, requests: [request], serverPid });
      const db = await framegate.openReader();
      let ledger: CreateCheck;
      try {
        const checks: { accountId: string; check: CreateCheck }[] = [];
        for (const { accountId, tracker } of accounts) {
          checks.push({ accountId, check: await checkCreates(db, accountId, tracker) });
        }
        ledger = checks.length === 1 ? (checks[0]?.check as CreateCheck) : combineCreateChecks(checks);
      } finally {
        await db.close();
      }
      const route = `POST /api/v1/generations${idempotent ? " + Idempotency-Key" : ""}`;
      const note = opts.accounts > 1 ? `spread over ${opts.accounts} accounts, one key each` : undefined;
      await withBaseline({ name, route, connections, figures, ledger, ...(note ? { note } : {}) });
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
          serverPid,
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
