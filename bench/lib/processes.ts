/**
 * The processes a benchmark measures. Each server runs as a child of its own, so the load
 * generator (this process) and the server never share an event loop: on a 2-core machine that
 * is one core each, as a real client and server would have.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const ROOT = join(import.meta.dirname, "..", "..");

export interface ChildServer {
  url: string;
  /** The child's process id: its CPU time is read from /proc (serverCpuSeconds). */
  pid: number | undefined;
  /** Log lines at warn or above (LOG_LEVEL=warn logs nothing else); the first few are echoed. */
  logged: { warn: number; error: number };
  /** Stops the child (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
  stop(graceMs?: number): Promise<void>;
}

/** The bare node:http hello world, the yardstick every ratio is taken against. */
export async function startBaseline(): Promise<ChildServer> {
  return (await startScriptServer("hello-server.mjs")).server;
}

/**
 * One of the bench's own servers (a script beside this file), run as a child. It prints one JSON
 * line once listening: its port, and anything a client needs (a key, an id).
 */
export async function startScriptServer(
  script: string,
): Promise<{ server: ChildServer; info: Record<string, unknown> & { port: number } }> {
  const child = spawn(process.execPath, [join(import.meta.dirname, script)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  const [line] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => {
      throw new Error(`${script} exited before listening (code ${code})`);
    }),
  ])) as [string];
  lines.close();
  const info = JSON.parse(line) as Record<string, unknown> & { port: number };
  return {
    info,
    server: {
      url: `http://127.0.0.1:${info.port}`,
      pid: child.pid,
      logged: { warn: 0, error: 0 },
      stop: (graceMs) => stopChild(child, graceMs),
    },
  };
}

/**
 * `framegate serve` from source (as `npm run stress:neighbor` starts it), with `env` on top of a
 * minimal environment: nothing from the caller's shell leaks in except PATH and HOME, so a
 * developer's own DATABASE_URL or LOG_LEVEL cannot change what is measured unnoticed.
 */
export async function startFramegate(
  env: Record<string, string>,
  label: string,
  cpuProfDir: string | null = null,
  cpuProfIntervalUs?: number,
): Promise<ChildServer> {
  const port = await freePort();
  // Profiles are written when the child exits normally (serve exits on SIGTERM after closing),
  // one per thread (the tsx loader and the inspection pool have their own), under Node's default
  // names, which carry pid and thread id: a fixed --cpu-prof-name would let threads overwrite
  // the main thread's profile. The largest file is the main thread's.
  const profile = cpuProfDir
    ? [
        "--cpu-prof",
        `--cpu-prof-dir=${join(cpuProfDir, label)}`,
        ...(cpuProfIntervalUs ? [`--cpu-prof-interval=${cpuProfIntervalUs}`] : []),
      ]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, "--conditions=source", "--import", "tsx", join(ROOT, "packages/cli/src/main.ts"), "serve"],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        PORT: String(port),
        HOST: "127.0.0.1",
        ...env,
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const logged = countLogLines(child, label);
  let exited = false;
  child.once("exit", (code, signal) => {
    exited = true;
    if (!stopping) console.error(`framegate (${label}) exited during the run (code ${code}, signal ${signal})`);
  });
  let stopping = false;
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (!exited && Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) {
        return {
          url,
          pid: child.pid,
          logged,
          stop: (graceMs) => {
            stopping = true;
            return stopChild(child, graceMs);
          },
        };
      }
    } catch {}
    await sleep(100);
  }
  stopping = true;
  await stopChild(child, 1000);
  throw new Error(`framegate (${label}) did not become ready`);
}

const ECHOED_LOG_LINES = 5;

/**
 * The server logs JSON lines (pino) on stdout. Warnings and errors are counted and the first few
 * echoed to stderr: a run whose server logged errors is suspect, whatever its figures say.
 */
function countLogLines(child: ChildProcess, label: string): ChildServer["logged"] {
  const logged = { warn: 0, error: 0 };
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  lines.on("line", (line) => {
    let level = 0;
    try {
      level = Number((JSON.parse(line) as { level?: number }).level ?? 0);
    } catch {}
    if (level >= 50) logged.error++;
    else if (level >= 40) logged.warn++;
    else return;
    if (logged.error + logged.warn <= ECHOED_LOG_LINES) process.stderr.write(`  [framegate ${label}] ${line}\n`);
  });
  return logged;
}

async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let clockTicks: number | undefined;

/**
 * CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat;
 * null where there is no /proc (not Linux) or the process is gone. Unlike req/s, a server's CPU
 * time per request hardly depends on what else the machine is doing.
 */
export function serverCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}
