/**
 * Helpers for tests that run `framegate serve` as a child process (crash, shutdown, CLI):
 * free ports, a managed child with captured output, and direct read-only looks at its store
 * (SQLite file or PostgreSQL database) once it is gone.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ADMIN_TOKEN, request, spawnServer, type TestResponse } from "./harness.js";
import { queryTestDatabase, TEST_STORE } from "./test-store.js";

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
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

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed for running past `timeoutMs`. */
  timedOut: boolean;
}

/**
 * Runs a command to its end with its output collected (pipes, so no TTY). `input` is written to
 * its stdin; past `timeoutMs` its whole process group is killed (npm and bash start children).
 */
export function runProcess(
  command: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string } = {},
): Promise<ProcessResult> {
  const { timeoutMs = 60_000, input, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const group = process.platform !== "win32";
    const child = spawn(command, args, {
      ...spawnOpts,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: group,
    });
    if (input !== undefined) child.stdin?.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `framegate serve` child with its output captured (the pipes must be drained anyway). */
export class ChildServer {
  readonly proc: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;

  constructor(
    readonly url: string,
    env: Record<string, string>,
    command: "serve" | "api" | "worker" = "serve",
  ) {
    this.proc = spawnServer(env, command);
    this.proc.stdout?.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
    });
    this.proc.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Waits for /readyz to answer 200; fails early if the child dies. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) throw new Error(`server exited early ${JSON.stringify(this.exit)}:\n${this.output()}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        await res.text();
        if (res.status === 200) return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`server not ready after ${timeoutMs} ms:\n${this.output()}`);
      await sleep(100);
    }
  }

  /** Waits for the process to exit; throws after timeoutMs (the child is left running). */
  async waitExit(timeoutMs: number): Promise<ExitInfo> {
    const timeout = sleep(timeoutMs).then(() => undefined);
    const info = await Promise.race([this.exited, timeout]);
    if (!info) throw new Error(`server still running ${timeoutMs} ms later:\n${this.output()}`);
    return info;
  }

  /** SIGKILL and wait for the exit (no-op when already gone). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** Last part of the captured output, for failure messages. */
  output(): string {
    return `--- stdout ---\n${this.stdout.slice(-4000)}\n--- stderr ---\n${this.stderr.slice(-4000)}`;
  }

  request(path: string, init?: RequestInit & { key?: string; json?: unknown }): Promise<TestResponse> {
    return request(this.url, path, init);
  }

  admin(path: string, init: RequestInit & { json?: unknown } = {}): Promise<TestResponse> {
    return request(this.url, path, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers ?? {}) },
    });
  }

  async createAccount(credits: number): Promise<{ accountId: string; key: string }> {
    const account = await this.admin("/admin/v1/accounts", { json: { name: "child-test", credits } });
    if (account.status !== 201) throw new Error(`account create failed: ${account.text}`);
    const key = await this.admin(`/admin/v1/accounts/${account.body.id}/keys`, { json: {} });
    if (key.status !== 201) throw new Error(`key create failed: ${key.text}`);
    return { accountId: account.body.id, key: key.body.key };
  }
}

/** Kills every child in the list that is still running (for afterAll / finally). */
export async function killAll(children: ChildServer[]): Promise<void> {
  await Promise.all(children.map((c) => c.kill()));
}

export interface DbTaskRow {
  id: string;
  account_id: string;
  status: string;
  prompt: string;
  upstream_id: string | null;
  started_at: string | null;
  reserved_credits: number;
  final_credits: number;
  error_reason: string | null;
}

export interface DbLedgerRow {
  account_id: string;
  amount: number;
  type: string;
  task_id: string | null;
}

export interface DbJobRow {
  id: string;
  kind: string;
  job_key: string | null;
  attempts: number;
  locked_by: string | null;
  locked_until: string | null;
}

export interface DbSnapshot {
  tasks: DbTaskRow[];
  ledger: DbLedgerRow[];
  jobs: DbJobRow[];
  balances: Map<string, number>;
}

/** Both queues' jobs on PostgreSQL: the `jobs` table and graphile-worker's (when its schema exists). */
async function pgJobs(dataDir: string): Promise<DbJobRow[]> {
  const table = "select id::text, kind, job_key, attempts, locked_by, locked_until from jobs";
  const [row] = await queryTestDatabase<{ present: boolean }>(
    dataDir,
    "select to_regclass('graphile_worker.jobs') is not null as present",
  );
  if (!row?.present) return queryTestDatabase<DbJobRow>(dataDir, table);
  return queryTestDatabase<DbJobRow>(
    dataDir,
    `${table} union all
     select id::text, task_identifier, key, attempts, locked_by, locked_at::text from graphile_worker.jobs`,
  );
}

const TASK_COLUMNS =
  "id, account_id, status, prompt, upstream_id, started_at, reserved_credits, final_credits, error_reason";

/**
 * Reads the child's store directly. Use only while no server runs on the directory (after a
 * kill or a clean exit). SQLite: readonly, so nothing is checkpointed or repaired here, and
 * `integrityCheck` runs its integrity_check; PostgreSQL has no such check (integrity stays unset).
 */
export async function readDb(
  dataDir: string,
  opts: { integrityCheck?: boolean } = {},
): Promise<DbSnapshot & { integrity?: string }> {
  if (TEST_STORE === "postgres") {
    const [tasks, ledger, jobs, accounts] = await Promise.all([
      queryTestDatabase<DbTaskRow>(dataDir, `select ${TASK_COLUMNS} from tasks order by created_at, id`),
      queryTestDatabase<DbLedgerRow>(dataDir, "select account_id, amount, type, task_id from ledger_entries"),
      pgJobs(dataDir),
      queryTestDatabase<{ id: string; balance: number }>(dataDir, "select id, balance from accounts"),
    ]);
    return { tasks, ledger, jobs, balances: new Map(accounts.map((r) => [r.id, r.balance])) };
  }
  const file = join(dataDir, "framegate.db");
  if (!existsSync(file)) throw new Error(`no database at ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tasks = db.prepare(`select ${TASK_COLUMNS} from tasks order by created_at, id`).all() as DbTaskRow[];
    const ledger = db.prepare("select account_id, amount, type, task_id from ledger_entries").all() as DbLedgerRow[];
    const jobs = db
      .prepare("select id, kind, job_key, attempts, locked_by, locked_until from jobs")
      .all() as DbJobRow[];
    const balances = new Map(
      (db.prepare("select id, balance from accounts").all() as { id: string; balance: number }[]).map((r) => [
        r.id,
        r.balance,
      ]),
    );
    const integrity = opts.integrityCheck ? (db.prepare("pragma integrity_check").pluck().get() as string) : undefined;
    return { tasks, ledger, jobs, balances, ...(integrity !== undefined ? { integrity } : {}) };
  } finally {
    db.close();
  }
}

/** One query on the child's store; `?` placeholders on both stores. SQLite is opened readonly. */
export async function queryStore<R extends object>(
  dataDir: string,
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  if (TEST_STORE === "postgres") {
    let n = 0;
    return queryTestDatabase<R>(
      dataDir,
      text.replace(/\?/g, () => `$${++n}`),
      params,
    );
  }
  const db = new Database(join(dataDir, "framegate.db"), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(text).all(...params) as R[];
  } finally {
    db.close();
  }
}

/** Checks the invariants every account must satisfy, whatever happened to the process. */
export function expectLedgerInvariants(snapshot: DbSnapshot): string[] {
  const problems: string[] = [];
  for (const [accountId, balance] of snapshot.balances) {
    const sum = snapshot.ledger.filter((e) => e.account_id === accountId).reduce((s, e) => s + e.amount, 0);
    if (sum !== balance) problems.push(`${accountId}: balance ${balance} != ledger sum ${sum}`);
    if (balance < 0) problems.push(`${accountId}: negative balance ${balance}`);
  }
  for (const task of snapshot.tasks) {
    const entries = snapshot.ledger.filter((e) => e.task_id === task.id);
    const reserves = entries.filter((e) => e.type === "reserve");
    const refunds = entries.filter((e) => e.type === "refund");
    if (reserves.length !== 1 || reserves[0]?.amount !== -task.reserved_credits) {
      problems.push(`${task.id}: reserve rows ${JSON.stringify(reserves)}`);
    }
    const expectedRefunds = task.status === "failed" ? 1 : 0;
    if (refunds.length !== expectedRefunds) problems.push(`${task.id} (${task.status}): ${refunds.length} refunds`);
    if (refunds[0] && refunds[0].amount !== task.reserved_credits) {
      problems.push(`${task.id}: refund of ${refunds[0].amount}`);
    }
    if (entries.some((e) => e.type === "release")) problems.push(`${task.id}: unexpected release row`);
  }
  return problems;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Downloads a result URL and checks it is the MP4 the task describes. */
export async function expectDownloadableMp4(task: {
  result: { primary_url: string; media: { size_bytes: number; sha256: string }[] };
}): Promise<string[]> {
  const problems: string[] = [];
  const res = await fetch(task.result.primary_url);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const media = task.result.media[0];
  if (res.status !== 200) problems.push(`download status ${res.status}`);
  if (res.headers.get("content-type") !== "video/mp4") problems.push(`content-type ${res.headers.get("content-type")}`);
  if (Buffer.from(bytes.subarray(4, 8)).toString("latin1") !== "ftyp") problems.push("no ftyp box at offset 4");
  if (!media || bytes.length !== media.size_bytes) problems.push(`size ${bytes.length} vs ${media?.size_bytes}`);
  if (!media || sha256(bytes) !== media.sha256) problems.push("sha256 mismatch");
  return problems;
}
