/**
 * kill -9 with a real upstream protocol: the server runs as a child process with PROVIDERS=kling
 * pointed at the fake Kling (which runs in this test process), is SIGKILLed in the middle of a
 * submit or while a task is processing, and restarted on the same DATA_DIR. The task must end
 * exactly once, with exactly one Kling task created and its credits settled once.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type FakeKling, startFakeKling } from "./fakes/fake-kling.js";
import { waitForTask } from "./harness.js";
import { ChildServer, expectLedgerInvariants, freePort, killAll, queryStore, readDb } from "./process-helpers.js";
import { fetchBytes, klingCreates, klingEnv, klingTasksFor, PRICE, sha256, until } from "./provider-e2e-helpers.js";

const children: ChildServer[] = [];
const fakes: FakeKling[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await killAll(children);
  await Promise.all(fakes.map((f) => f.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const fake = await startFakeKling();
  fakes.push(fake);
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-provider-crash-"));
  dirs.push(dataDir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...klingEnv(fake),
    DATA_DIR: dataDir,
    PORT: String(port),
    LOG_LEVEL: "info",
    PROVIDERS: "kling",
    PROVIDER_ALLOW_INSECURE_URLS: "true",
    // Long enough that a hanging create is still in flight when the process is killed.
    PROVIDER_REQUEST_TIMEOUT_SECONDS: "30",
    JOB_LEASE_SECONDS: "1",
    POLL_FIRST_DELAY_MS: "100",
    POLL_MAX_INTERVAL_MS: "200",
    RATE_LIMIT_CREATE_PER_MIN: "0",
    RATE_LIMIT_READ_PER_MIN: "0",
  };
  const start = async () => {
    const child = new ChildServer(url, env);
    children.push(child);
    await child.waitReady();
    return child;
  };
  return { fake, dataDir, start };
}

/** The submit bookkeeping of a task, read from the dead child's database. */
async function submitState(dataDir: string, taskId: string): Promise<{ uncertain?: string } | null> {
  const [row] = await queryStore<{ submit_state: string | null }>(
    dataDir,
    "select submit_state from tasks where id = ?",
    [taskId],
  );
  return row?.submit_state ? (JSON.parse(row.submit_state) as { uncertain?: string }) : null;
}

describe.concurrent("SIGKILL with PROVIDERS=kling", () => {
  it("killed mid-submit (Kling created the task, the answer never came): found by external_task_id after restart, one Kling task", {
    timeout: 60_000,
  }, async () => {
    const { fake, dataDir, start } = await setup();
    fake.script({ on: "create", fault: { type: "acceptThen", answer: { type: "hang" } } });

    const first = await start();
    const acct = await first.createAccount(200);
    const res = await first.request("/api/v1/generations", {
      key: acct.key,
      json: { model: "kling-2-6", prompt: "A crash in the middle of a submit", params: { duration: "5" } },
    });
    expect(res.status, res.text).toBe(202);
    const id: string = res.body.id;
    await until(() => klingCreates(fake, id).length === 1 && fake.taskByExternalId(id) !== undefined, "the create");
    await first.kill();
    expect(first.exit?.signal).toBe("SIGKILL");

    // Mid-submit: queued, no upstream id stored, Kling marked as maybe holding it.
    const atKill = await readDb(dataDir);
    expect(atKill.tasks.map((t) => [t.id, t.status, t.upstream_id])).toEqual([[id, "queued", null]]);
    expect((await submitState(dataDir, id))?.uncertain).toBe("kling");
    const requestsAtKill = fake.requests.length;

    const second = await start();
    const task = await waitForTask(second, acct.key, id, 30_000);
    expect(task.status, second.output()).toBe("succeeded");
    expect(task).toMatchObject({ reserved_credits: PRICE, final_credits: PRICE, error: null });

    // Exactly one create ever; after the restart the task was looked up by our id, not resubmitted.
    expect(klingCreates(fake, id)).toHaveLength(1);
    expect(klingTasksFor(fake, id)).toHaveLength(1);
    const kTask = klingTasksFor(fake, id)[0];
    const afterRestart = fake.requests.slice(requestsAtKill);
    expect(afterRestart.filter((r) => r.endpoint === "create")).toHaveLength(0);
    const lookup = afterRestart.find((r) => r.endpoint === "query" && r.path === `/v1/videos/text2video/${id}`);
    expect(lookup?.status).toBe(200);
    expect(afterRestart.some((r) => r.endpoint === "query" && r.path.endsWith(`/${kTask?.taskId}`))).toBe(true);

    const ours = await fetchBytes(task.result.primary_url);
    const upstream = await fetchBytes(`${fake.url}/videos/${kTask?.taskId}.mp4`);
    expect(sha256(ours.bytes)).toBe(sha256(upstream.bytes));
    expect(JSON.stringify(task)).not.toContain(fake.url);

    await second.kill();
    const final = await readDb(dataDir);
    expect(final.tasks[0]?.upstream_id).toBe(`text2video:${kTask?.taskId}`);
    expect(expectLedgerInvariants(final)).toEqual([]);
    expect(final.balances.get(acct.accountId)).toBe(200 - PRICE);
  });

  it("killed while processing: polling resumes after restart without a second submit", {
    timeout: 60_000,
  }, async () => {
    const { fake, dataDir, start } = await setup();
    const first = await start();
    const acct = await first.createAccount(200);
    const res = await first.request("/api/v1/generations", {
      key: acct.key,
      json: { model: "kling-2-6", prompt: "[kling:after=2500] A long render", params: { duration: "5" } },
    });
    expect(res.status, res.text).toBe(202);
    const id: string = res.body.id;
    await until(
      async () => (await first.request(`/api/v1/generations/${id}`, { key: acct.key })).body.status === "processing",
      "processing",
    );
    const kTask = klingTasksFor(fake, id)[0];
    await until(
      () => fake.requests.some((r) => r.endpoint === "query" && r.path.endsWith(`/${kTask?.taskId}`)),
      "a first poll",
    );
    await first.kill();

    const atKill = await readDb(dataDir);
    expect(atKill.tasks[0]).toMatchObject({ id, status: "processing", upstream_id: `text2video:${kTask?.taskId}` });
    expect(kTask?.status).not.toBe("succeed");
    const requestsAtKill = fake.requests.length;

    const second = await start();
    const task = await waitForTask(second, acct.key, id, 30_000);
    expect(task.status, second.output()).toBe("succeeded");

    const afterRestart = fake.requests.slice(requestsAtKill);
    expect(afterRestart.filter((r) => r.endpoint === "create")).toHaveLength(0);
    // Polled by its stored Kling id; no lookup by external id was needed.
    expect(afterRestart.some((r) => r.endpoint === "query" && r.path.endsWith(`/${kTask?.taskId}`))).toBe(true);
    expect(afterRestart.some((r) => r.endpoint === "query" && r.path.endsWith(`/${id}`))).toBe(false);
    expect(klingCreates(fake, id)).toHaveLength(1);
    expect(klingTasksFor(fake, id)).toHaveLength(1);

    await second.kill();
    const final = await readDb(dataDir);
    expect(final.tasks[0]).toMatchObject({ status: "succeeded", final_credits: PRICE });
    expect(expectLedgerInvariants(final)).toEqual([]);
  });
});
