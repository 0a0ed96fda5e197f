/**
 * Global setup of the "postgres" vitest project: the PostgreSQL server the integration suite
 * runs on. DATABASE_URL, when set, is used as is (its role needs CREATEDB); otherwise a
 * throwaway server is started for the run: initdb into a temp directory, pg_ctl start on
 * 127.0.0.1 with a free port and a random password, and stopped and deleted at teardown.
 * Tests create one database per data directory (test-store.ts); teardown drops this run's.
 * FRAMEGATE_TEST_PG_DIR chooses where the throwaway server's files go (see scratchDir).
 *
 * With FRAMEGATE_TEST_STORAGE=s3 (the project's env) it also starts the run's S3 server: one
 * s3rver bucket on 127.0.0.1, an ephemeral port and a temp directory (test-store.ts gives each
 * data directory a prefix in it), closed and deleted at teardown.
 *
 * initdb and postgres refuse to run as root: as root they run as FRAMEGATE_TEST_PG_OS_USER
 * (default `postgres`, which the distribution packages create) through runuser.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startTestS3 } from "./s3-helpers.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = randomBytes(4).toString("hex");
  const given = process.env.DATABASE_URL;
  const cluster = given ? undefined : await startThrowawayServer();
  const adminUrl = given ?? (cluster as ThrowawayServer).url;
  await checkConnection(adminUrl);
  const storage = project.config.env?.FRAMEGATE_TEST_STORAGE ?? process.env.FRAMEGATE_TEST_STORAGE;
  const s3 = storage === "s3" ? await startTestS3("framegate-suite") : undefined;
  project.provide("pgAdminUrl", adminUrl);
  project.provide("pgRunId", runId);
  project.provide("s3Endpoint", s3?.endpoint ?? "");
  project.provide("s3Bucket", s3?.bucket ?? "");
  return async () => {
    try {
      await dropRunDatabases(adminUrl, runId);
    } finally {
      cluster?.stop();
      await s3?.close();
    }
  };
}

interface ThrowawayServer {
  url: string;
  stop(): void;
}

async function startThrowawayServer(): Promise<ThrowawayServer> {
  const bin = serverBinDir();
  const dir = mkdtempSync(join(scratchDir(), "framegate-pg-"));
  const asUser = runAs();
  const password = randomBytes(18).toString("base64url");
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, password, { mode: 0o600 });
  if (asUser) execFileSync("chown", ["-R", asUser, dir]);
  else chmodSync(dir, 0o700);
  const data = join(dir, "data");
  const run = (cmd: string, args: string[]) => {
    const file = join(bin, cmd);
    const [command, argv] = asUser ? ["runuser", ["-u", asUser, "--", file, ...args]] : [file, args];
    return execFileSync(command, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
  };
  try {
    run("initdb", [
      "-D",
      data,
      "-U",
      "framegate",
      `--pwfile=${pwfile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      // Byte-order text comparison, as SQLite's: ids and ISO times sort the same on both stores.
      "--locale=C",
      "--no-sync",
    ]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${commandOutput(error)}`);
  }
  const stop = () => {
    try {
      if (existsSync(join(data, "postmaster.pid"))) run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // The port was free a moment ago; another process may take it first, so retry a few times.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const options = [
      "-c listen_addresses=127.0.0.1",
      `-c port=${port}`,
      `-c unix_socket_directories=${dir}`,
      // A throwaway server: durability buys nothing here, speed does.
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c max_connections=300",
    ].join(" ");
    try {
      run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-o", options, "-w", "-t", "60", "start"]);
      return { url: `postgresql://framegate:${password}@127.0.0.1:${port}/postgres`, stop };
    } catch (error) {
      if (attempt >= 3) {
        const log = existsSync(join(dir, "server.log"))
          ? execFileSync("tail", ["-n", "20", join(dir, "server.log")])
          : "";
        stop();
        throw new Error(`pg_ctl start failed: ${commandOutput(error)}\n${log}`);
      }
    }
  }
}

/**
 * Where the throwaway cluster lives: FRAMEGATE_TEST_PG_DIR, else /dev/shm when it is a roomy
 * tmpfs (CREATE DATABASE, once per test server, takes ~300 ms on a slow disk and ~15 ms in
 * memory), else the system temp directory.
 */
function scratchDir(): string {
  if (process.env.FRAMEGATE_TEST_PG_DIR) return process.env.FRAMEGATE_TEST_PG_DIR;
  try {
    accessSync("/dev/shm", constants.W_OK);
    const fs = statfsSync("/dev/shm");
    if (fs.bavail * fs.bsize >= 2 * 1024 ** 3) return "/dev/shm";
  } catch {}
  return tmpdir();
}

/** Where initdb and pg_ctl are: on PATH, or in a Debian-style /usr/lib/postgresql/<version>/bin. */
function serverBinDir(): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) return dir;
  }
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const dir = join(root, version, "bin");
    if (existsSync(join(dir, "initdb"))) return dir;
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL, or set DATABASE_URL to a server whose role may create databases",
  );
}

/** As root, the OS user the server runs as; otherwise undefined (run as ourselves). */
function runAs(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = process.env.FRAMEGATE_TEST_PG_OS_USER || "postgres";
  try {
    execFileSync("id", ["-u", user], { stdio: "ignore" });
  } catch {
    throw new Error(
      `running as root: PostgreSQL must run as another user, and "${user}" does not exist (create it, or set FRAMEGATE_TEST_PG_OS_USER)`,
    );
  }
  return user;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function commandOutput(error: unknown): string {
  const { stderr, stdout, message } = error as { stderr?: Buffer; stdout?: Buffer; message?: string };
  return [message, stdout?.toString(), stderr?.toString()].filter(Boolean).join("\n");
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function checkConnection(url: string): Promise<void> {
  try {
    await withClient(url, (c) => c.query("select 1"));
  } catch (error) {
    throw new Error(`cannot connect to the test PostgreSQL server: ${(error as Error).message}`);
  }
}

async function dropRunDatabases(url: string, runId: string): Promise<void> {
  await withClient(url, async (client) => {
    const { rows } = await client.query<{ datname: string }>("select datname from pg_database where datname like $1", [
      `fg\\_${runId}\\_%`,
    ]);
    for (const { datname } of rows) await client.query(`drop database if exists "${datname}" with (force)`);
  });
}
