/**
 * Graceful shutdown of `framegate serve` (SIGTERM / SIGINT): stop accepting connections, let
 * requests in progress finish, hand running jobs back, close the database cleanly and exit 0
 * within SHUTDOWN_GRACE_SECONDS. A restart then finishes the released work without waiting
 * for any lease to expire.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitForTask } from "./harness.js";
import {
  ChildServer,
  expectDownloadableMp4,
  expectLedgerInvariants,
  freePort,
  killAll,
  readDb,
  sleep,
} from "./process-helpers.js";
import { TEST_STORE } from "./test-store.js";

const PRICE = 55;
const GRACE_SECONDS = 3;

/** Resolves "refused" when nothing listens on the port any more, "connected" otherwise. */
function probeConnect(port: number): Promise<"connected" | "refused"> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", () => resolve("refused"));
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("graceful shutdown", () => {
  const children: ChildServer[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await killAll(children);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function start(env: Record<string, string>, url: string) {
    const child = new ChildServer(url, env);
    children.push(child);
    await child.waitReady();
    return child;
  }

  it("SIGTERM: stops accepting, finishes the open request, exits 0 in time; a restart finishes the tasks", {
    timeout: 120_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "framegate-shutdown-"));
    dirs.push(dataDir);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = {
      DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: "info",
      SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      // Long leases: after the restart, work only resumes quickly if shutdown released it.
      JOB_LEASE_SECONDS: "120",
      WORKER_CONCURRENCY: "2",
      SIM_RENDER_CONCURRENCY: "1",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    };
    const server = await start(env, url);
    const { accountId, key } = await server.createAccount(1000);
    const plans = [
      { prompt: "[sim:delay=3] slow one", expect: "succeeded" },
      { prompt: "[sim:delay=3] slow two", expect: "succeeded" },
      { prompt: "plain one", expect: "succeeded" },
      { prompt: "plain two", expect: "succeeded" },
      { prompt: "[sim:delay=3] [sim:fail] slow failure", expect: "failed" },
    ];
    const tasks = [];
    for (const p of plans) {
      const res = await server.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: p.prompt } });
      expect(res.status).toBe(202);
      tasks.push({ ...p, id: res.body.id as string });
    }
    // Let the worker pick them up, so shutdown meets submitted tasks with renders running.
    const deadline = Date.now() + 15_000;
    while ((await server.request("/api/v1/generations?status=queued", { key })).body.data.length > 0) {
      if (Date.now() > deadline) throw new Error(`tasks not submitted\n${server.output()}`);
      await sleep(25);
    }

    // A request in progress: the headers are not finished yet when the signal arrives.
    const open = await openSocket(port);
    let openResponse = "";
    open.setEncoding("utf8").on("data", (d: string) => {
      openResponse += d;
    });
    open.write(`GET /api/v1/credits HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${key}\r\n`);
    await sleep(100);

    // Creates racing the signal: each either fully happens (202) or not at all.
    const racing = Array.from({ length: 10 }, async (_, i) => {
      await sleep(i * 15);
      try {
        const res = await server.request("/api/v1/generations", {
          key,
          json: { model: "kling-2-6", prompt: `racing the signal ${i}` },
          headers: { connection: "close" },
        });
        return res.status === 202 ? (res.body.id as string) : `status ${res.status}`;
      } catch {
        return "connection failed";
      }
    });

    const signalledAt = Date.now();
    server.proc.kill("SIGTERM");

    // New connections are refused while the process is still draining.
    let refusedAt: number | undefined;
    while (Date.now() - signalledAt < 2000) {
      if ((await probeConnect(port)) === "refused") {
        refusedAt = Date.now();
        break;
      }
      await sleep(20);
    }
    expect(refusedAt, server.output()).toBeDefined();
    expect(server.alive).toBe(true);

    // The request that was already on its way is still answered.
    open.write("\r\n");
    const answerDeadline = Date.now() + 2000;
    while (!openResponse.includes("current_credits") && Date.now() < answerDeadline) await sleep(20);
    expect(openResponse).toMatch(/^HTTP\/1\.1 200/);
    expect(openResponse).toContain('"current_credits"');
    open.destroy();

    const exit = await server.waitExit((GRACE_SECONDS + 5) * 1000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan((GRACE_SECONDS + 3) * 1000);
    expect(server.stdout).toContain("framegate stopped");
    const racedOutcomes = await Promise.all(racing);
    const racedIds = racedOutcomes.filter((o) => o.startsWith("task_"));
    for (const o of racedOutcomes) expect(o).toMatch(/^(task_|connection failed|status 503)/);

    // The database is closed cleanly: consistent, balanced, and no job is left leased.
    const afterStop = await readDb(dataDir, { integrityCheck: true });
    // SQLite only: PostgreSQL has no file-level integrity check (integrity stays unset there).
    if (TEST_STORE === "sqlite") expect(afterStop.integrity).toBe("ok");
    expect(expectLedgerInvariants(afterStop)).toEqual([]);
    expect(afterStop.jobs.filter((j) => j.locked_by !== null || j.locked_until !== null)).toEqual([]);
    const unfinished = afterStop.tasks.filter((x) => x.status === "queued" || x.status === "processing");
    expect(unfinished.length).toBeGreaterThan(0);
    const allIds = afterStop.tasks.map((x) => x.id);
    for (const id of racedIds) expect(allIds).toContain(id);

    // Restart: the released work resumes at once (the 120 s leases were handed back).
    const restarted = await start(env, url);
    const restartedAt = Date.now();
    const finished = await Promise.all(allIds.map((id) => waitForTask(restarted, key, id, 45_000)));
    expect(Date.now() - restartedAt).toBeLessThan(45_000);
    for (const task of finished) {
      const plan = tasks.find((p) => p.id === task.id);
      const expected = plan?.expect ?? "succeeded";
      expect(task.status, JSON.stringify(task.error)).toBe(expected);
      if (task.status === "succeeded") expect(await expectDownloadableMp4(task)).toEqual([]);
    }
    const view = await restarted.admin(`/admin/v1/accounts/${accountId}`);
    const succeeded = finished.filter((x) => x.status === "succeeded").length;
    expect(view.body.credits).toBe(1000 - PRICE * succeeded);
    expect(view.body.credits).toBe(view.body.ledger.ledger_sum);

    // SIGINT is handled the same way.
    restarted.proc.kill("SIGINT");
    expect(await restarted.waitExit((GRACE_SECONDS + 5) * 1000)).toEqual({ code: 0, signal: null });
    const final = await readDb(dataDir, { integrityCheck: true });
    // SQLite only: PostgreSQL has no file-level integrity check (integrity stays unset there).
    if (TEST_STORE === "sqlite") expect(final.integrity).toBe("ok");
    expect(expectLedgerInvariants(final)).toEqual([]);
    expect(final.jobs).toEqual([]);
  });

  it("an idle server exits 0 promptly on SIGTERM and restarts on the same directory", {
    timeout: 120_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "framegate-shutdown-idle-"));
    dirs.push(dataDir);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { DATA_DIR: dataDir, PORT: String(port), SHUTDOWN_GRACE_SECONDS: "10" };
    const server = await start(env, url);
    const { key } = await server.createAccount(100);
    // A keep-alive connection left open by the client must not hold the process for the grace period.
    expect((await server.request("/api/v1/credits", { key })).status).toBe(200);
    const signalledAt = Date.now();
    server.proc.kill("SIGTERM");
    expect(await server.waitExit(12_000)).toEqual({ code: 0, signal: null });
    // Well inside the 10 s grace period: nothing was left to wait for.
    expect(Date.now() - signalledAt).toBeLessThan(5000);

    // Restart with a short grace period and a client that never finishes its request: the
    // process still exits 0, at the latest when the grace period ends.
    const again = await start({ ...env, SHUTDOWN_GRACE_SECONDS: "2" }, url);
    expect((await again.request("/api/v1/credits", { key })).body).toEqual({ current_credits: 100 });
    const stuck = await openSocket(port);
    stuck.on("error", () => {});
    stuck.write(`POST /api/v1/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"mod`);
    await sleep(100);
    const againSignalledAt = Date.now();
    again.proc.kill("SIGTERM");
    expect(await again.waitExit(12_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - againSignalledAt).toBeLessThan(2000 + 2500);
    stuck.destroy();
  });
});
