/**
 * Test helpers: a real server on an ephemeral port with a temp data directory, and a small
 * fetch wrapper. Integration tests talk to it over HTTP only, like a client would.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TracerProvider } from "@opentelemetry/api";
import { sql } from "kysely";
import type { Logger } from "pino";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import type { LookupFn } from "../src/net/url-guard.js";
import { type RunningServer, startServer } from "../src/server.js";
import type { Db } from "../src/store/db.js";
import type { Clock } from "../src/util/clock.js";
import { observeConformance } from "./openapi-conformance.js";
import { dropTestDatabase, testStoreEnv, testStoreEnvSync } from "./test-store.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789";
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");

/** Small, fast renders for tests; every setting can be overridden per test. */
export const TEST_ENV: Record<string, string> = {
  PORT: "0",
  HOST: "127.0.0.1",
  ADMIN_TOKEN,
  LOG_LEVEL: "silent",
  BOOTSTRAP_DEV_ACCOUNT: "false",
  SIM_SIZE_1_1: "160x160",
  SIM_SIZE_16_9: "256x144",
  SIM_SIZE_9_16: "144x256",
  SIM_FPS: "8",
  SIM_RENDER_CONCURRENCY: "2",
  WORKER_CONCURRENCY: "4",
  WORKER_POLL_INTERVAL_MS: "20",
  POLL_FIRST_DELAY_MS: "100",
  POLL_MAX_INTERVAL_MS: "1000",
  JOB_LEASE_SECONDS: "2",
  SHUTDOWN_GRACE_SECONDS: "2",
};

export interface TestServer {
  url: string;
  dataDir: string;
  server: RunningServer;
  /** JSON request helper: returns status, headers and parsed body (text if not JSON). */
  request(path: string, init?: RequestInit & { key?: string; json?: unknown }): Promise<TestResponse>;
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<TestResponse>;
  /** Creates an account with `credits` and an all-scopes key (or the given scopes). */
  createAccount(
    credits: number,
    opts?: { scopes?: string[]; expires_at?: string },
  ): Promise<{ accountId: string; key: string; keyId: string }>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON
  body: any;
  text: string;
}

export async function request(
  baseUrl: string,
  path: string,
  init: RequestInit & { key?: string; json?: unknown } = {},
): Promise<TestResponse> {
  const { key, json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (key) headers.set("authorization", `Bearer ${key}`);
  if (json !== undefined) {
    headers.set("content-type", "application/json");
    rest.body = JSON.stringify(json);
    rest.method ??= "POST";
  }
  const res = await fetch(`${baseUrl}${path}`, { ...rest, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body, text };
}

export async function startTestServer(
  env: Record<string, string> = {},
  dataDir?: string,
  opts: { clock?: Clock; lookup?: LookupFn; log?: Logger; tracerProvider?: TracerProvider } = {},
): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "framegate-test-"));
  // The store of the directory: its SQLite file, or its own database on the PostgreSQL run.
  const config = loadConfig({ ...TEST_ENV, DATA_DIR: dir, ...(await testStoreEnv(dir)), ...env });
  const server = await startServer(config, {
    log: opts.log ?? createLogger("silent"),
    ...(opts.tracerProvider ? { tracerProvider: opts.tracerProvider } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
  });
  observeConformance(server.httpServer);
  const url = server.url;
  // The admin API's own listener when the test sets ADMIN_PORT, else the API's.
  const admin = (path: string, init: RequestInit & { json?: unknown } = {}) =>
    request(server.adminUrl, path, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers ?? {}) },
    });
  return {
    url,
    dataDir: dir,
    server,
    request: (path, init) => request(url, path, init),
    admin,
    async createAccount(credits, opts = {}) {
      const account = await admin("/admin/v1/accounts", { json: { name: "test", credits } });
      if (account.status !== 201) throw new Error(`account create failed: ${account.text}`);
      const key = await admin(`/admin/v1/accounts/${account.body.id}/keys`, { json: { ...opts } });
      if (key.status !== 201) throw new Error(`key create failed: ${key.text}`);
      return { accountId: account.body.id, key: key.body.key, keyId: key.body.id };
    },
    async close() {
      await server.close();
      if (!dataDir) {
        rmSync(dir, { recursive: true, force: true });
        await dropTestDatabase(dir);
      }
    },
  };
}

/** Polls a task until it is terminal (or the deadline passes). */
export async function waitForTask(
  t: { request: TestServer["request"] },
  key: string,
  id: string,
  timeoutMs = 60_000,
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.request(`/api/v1/generations/${id}`, { key });
    if (res.status !== 200) throw new Error(`status ${res.status}: ${res.text}`);
    if (res.body.status === "succeeded" || res.body.status === "failed") return res.body;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${res.body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A clock tests can move forward. */
export class ManualClock implements Clock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/**
 * Runs `framegate serve` (or `api` / `worker`) from source as a child process (for kill -9
 * tests), on the store of env.DATA_DIR unless env sets DATABASE_URL itself.
 */
export function spawnServer(env: Record<string, string>, command: "serve" | "api" | "worker" = "serve"): ChildProcess {
  const store = env.DATA_DIR ? testStoreEnvSync(env.DATA_DIR) : {};
  return spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", join(REPO_ROOT, "packages/cli/src/main.ts"), command],
    { cwd: REPO_ROOT, env: { ...process.env, ...TEST_ENV, ...store, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
}

/**
 * The jobs waiting or running in a server's queue, whichever queue it uses: the `jobs` table,
 * or graphile-worker's jobs (PostgreSQL's default queue).
 */
export async function queuedJobs(db: Db): Promise<{ kind: string; job_key: string | null }[]> {
  const table = await db.selectFrom("jobs").select(["kind", "job_key"]).execute();
  const graphile = await sql<{ present: boolean }>`select to_regclass('graphile_worker.jobs') is not null as present`
    .execute(db)
    .then((r) => r.rows[0]?.present === true)
    .catch(() => false);
  if (!graphile) return table;
  const { rows } = await sql<{ kind: string; job_key: string | null }>`
    select task_identifier as kind, key as job_key from graphile_worker.jobs`.execute(db);
  return [...table, ...rows];
}
