/**
 * Command-line flags (and their environment equivalents) of `npm run bench`. Parsing is pure so a
 * wrong flag fails before any server starts, with a message naming the flag.
 */
import { resolve } from "node:path";

export const SCENARIOS = ["get", "credits", "ceiling", "create", "create-idem", "upload", "e2e"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** Seconds of measured load per scenario (and for each baseline run). */
  duration: number;
  /** Seconds of unmeasured load before each measurement, so the JIT and caches are warm. */
  warmup: number;
  connections: number;
  /**
   * Accounts the create scenarios spread their requests over (round robin, one key each). A create
   * locks its account's row until it commits, so one account's creates are serial in the database.
   */
  accounts: number;
  /** Uploads carry 5 MB each: fewer connections keep the loopback from being the bottleneck. */
  uploadConnections: number;
  only: ScenarioName[];
  /** Tasks the end-to-end scenario creates and waits for. */
  tasks: number;
  /** The end-to-end scenario gives up (and reports how far it got) after this many seconds. */
  e2eTimeout: number;
  workerConcurrency: number;
  /** Directory for the JSON results; null writes none. */
  resultsDir: string | null;
  /** When set, each Framegate child writes a V8 CPU profile (node --cpu-prof) here on exit. */
  cpuProfDir: string | null;
  /** The profiles' sampling interval in microseconds (node --cpu-prof-interval). */
  cpuProfIntervalUs: number;
}

const DEFAULTS: Omit<BenchOptions, "resultsDir" | "cpuProfDir"> = {
  duration: 10,
  warmup: 2,
  connections: 50,
  accounts: 1,
  uploadConnections: 4,
  only: [...SCENARIOS],
  tasks: 2000,
  e2eTimeout: 600,
  workerConcurrency: 16,
  // Node's default (1,000 µs) puts a request path's time on whatever native call is running when
  // a sample lands (writev took 37% of a GET profile that way, 14% at 50 µs).
  cpuProfIntervalUs: 100,
};

const USAGE = `npm run bench -- [flags]
  --duration <s>            measured seconds per scenario and baseline (env BENCH_DURATION, default ${DEFAULTS.duration})
  --warmup <s>              unmeasured seconds before each (env BENCH_WARMUP, default ${DEFAULTS.warmup})
  --connections <n>         concurrent connections (env BENCH_CONNECTIONS, default ${DEFAULTS.connections})
  --accounts <n>            accounts the create scenarios spread over, one key each (env BENCH_ACCOUNTS, default ${DEFAULTS.accounts})
  --upload-connections <n>  connections for the 5 MB uploads (env BENCH_UPLOAD_CONNECTIONS, default ${DEFAULTS.uploadConnections})
  --only <list>             comma-separated subset of ${SCENARIOS.join(",")} (env BENCH_ONLY, default all)
  --tasks <n>               tasks in the end-to-end run (env BENCH_TASKS, default ${DEFAULTS.tasks})
  --e2e-timeout <s>         give up on the end-to-end run after this long (env BENCH_E2E_TIMEOUT, default ${DEFAULTS.e2eTimeout})
  --worker-concurrency <n>  WORKER_CONCURRENCY of the end-to-end server (env BENCH_WORKER_CONCURRENCY, default ${DEFAULTS.workerConcurrency})
  --results <dir|none>      where the JSON goes (env BENCH_RESULTS, default bench/results)
  --cpu-prof <dir>          each Framegate child writes a CPU profile there (env BENCH_CPU_PROF)
  --cpu-prof-interval <µs>  the profiles' sampling interval (env BENCH_CPU_PROF_INTERVAL, default ${DEFAULTS.cpuProfIntervalUs})
DATABASE_URL set: the servers run on PostgreSQL, each on a throwaway database created on that server.`;

export class UsageError extends Error {
  readonly usage = USAGE;
}

const FLAGS: Record<string, { env: string; key: keyof BenchOptions }> = {
  "--duration": { env: "BENCH_DURATION", key: "duration" },
  "--warmup": { env: "BENCH_WARMUP", key: "warmup" },
  "--connections": { env: "BENCH_CONNECTIONS", key: "connections" },
  "--accounts": { env: "BENCH_ACCOUNTS", key: "accounts" },
  "--upload-connections": { env: "BENCH_UPLOAD_CONNECTIONS", key: "uploadConnections" },
  "--only": { env: "BENCH_ONLY", key: "only" },
  "--tasks": { env: "BENCH_TASKS", key: "tasks" },
  "--e2e-timeout": { env: "BENCH_E2E_TIMEOUT", key: "e2eTimeout" },
  "--worker-concurrency": { env: "BENCH_WORKER_CONCURRENCY", key: "workerConcurrency" },
  "--results": { env: "BENCH_RESULTS", key: "resultsDir" },
  "--cpu-prof": { env: "BENCH_CPU_PROF", key: "cpuProfDir" },
  "--cpu-prof-interval": { env: "BENCH_CPU_PROF_INTERVAL", key: "cpuProfIntervalUs" },
};

/** Flags win over environment variables, which win over the defaults. */
export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  defaultResultsDir: string,
): BenchOptions {
  const raw = new Map<keyof BenchOptions, { value: string; from: string }>();
  for (const { env: name, key } of Object.values(FLAGS)) {
    const value = env[name];
    if (value !== undefined && value !== "") raw.set(key, { value, from: name });
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") throw new UsageError("");
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg];
    const spec = FLAGS[flag as string];
    if (!spec) throw new UsageError(`unknown argument ${arg}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    raw.set(spec.key, { value, from: flag as string });
  }

  const number = (key: keyof BenchOptions, fallback: number, min: number, max: number, integer = true) => {
    const given = raw.get(key);
    if (!given) return fallback;
    const n = Number(given.value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new UsageError(`${given.from} must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
    }
    return n;
  };
  const only = raw.get("only");
  const results = raw.get("resultsDir");
  return {
    duration: number("duration", DEFAULTS.duration, 1, 3600),
    warmup: number("warmup", DEFAULTS.warmup, 0, 600),
    connections: number("connections", DEFAULTS.connections, 1, 10_000),
    accounts: number("accounts", DEFAULTS.accounts, 1, 1000),
    uploadConnections: number("uploadConnections", DEFAULTS.uploadConnections, 1, 1000),
    only: only ? parseScenarioList(only.value, only.from) : DEFAULTS.only,
    tasks: number("tasks", DEFAULTS.tasks, 1, 1_000_000),
    e2eTimeout: number("e2eTimeout", DEFAULTS.e2eTimeout, 1, 86_400),
    workerConcurrency: number("workerConcurrency", DEFAULTS.workerConcurrency, 1, 256),
    resultsDir: results ? (results.value === "none" ? null : results.value) : defaultResultsDir,
    cpuProfDir: raw.has("cpuProfDir") ? resolve(raw.get("cpuProfDir")?.value as string) : null,
    cpuProfIntervalUs: number("cpuProfIntervalUs", DEFAULTS.cpuProfIntervalUs, 10, 100_000),
  };
}

function parseScenarioList(value: string, from: string): ScenarioName[] {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new UsageError(
      `${from} takes a comma-separated list of ${SCENARIOS.join(", ")}${unknown.length ? ` (not: ${unknown.join(", ")})` : ""}`,
    );
  }
  // Run order is fixed (reads before the writes that grow the database), whatever the list's order.
  return SCENARIOS.filter((s) => names.includes(s));
}
