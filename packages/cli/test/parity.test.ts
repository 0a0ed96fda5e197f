/**
 * The CLI's newer API commands end to end (no TTY): `list` with its filters and pages, the
 * webhook commands rotate / enable / disable / events / redeliver, a failed task that says its
 * credits were refunded, and waits that outlive a server restart (the CLI says the server is
 * unreachable once, keeps retrying, and says when it is back).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startTestServer, type TestServer } from "../../server/test/harness.js";
import { freePort, sleep } from "../../server/test/process-helpers.js";
import { WebhookReceiver } from "../../server/test/webhook-receiver.js";
import { CLI, runCli, TERMINAL_CONTROL } from "./helpers.js";

/** Nothing listens here: a command that reaches the network fails with api_connection_error. */
const DEAD = "http://127.0.0.1:9";

describe("framegate list, webhooks and failed tasks (no TTY)", () => {
  let t: TestServer;
  let key: string;
  let otherKey: string;
  let dir: string;

  const env = (extra: Record<string, string> = {}) => ({
    FRAMEGATE_BASE_URL: t.url,
    FRAMEGATE_API_KEY: key,
    FRAMEGATE_CONFIG: join(dir, "no-config", "config.json"),
    FRAMEGATE_POLL_INTERVAL_MS: "100",
    ...extra,
  });

  beforeAll(async () => {
    // No create or read limits: the list test makes more than a page of tasks in a burst.
    t = await startTestServer({
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
    ({ key } = await t.createAccount(100_000));
    ({ key: otherKey } = await t.createAccount(1000));
    dir = mkdtempSync(join(tmpdir(), "framegate-cli-parity-"));
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("list: a table and --json, newest first, across pages up to --limit, with --status", {
    timeout: 180_000,
  }, async () => {
    // 103 tasks: more than one API page (100), so --limit 102 has to walk to the second page.
    const ids: string[] = [];
    for (let i = 0; i < 103; i++) {
      const created = await t.request("/api/v1/generations", {
        key,
        json: {
          model: "kling-2-6",
          prompt: i === 0 ? "fails [sim:fail]" : `list ${i} [sim:delay=120]`,
          client_request_id: `order-${i}`,
        },
      });
      expect(created.status).toBe(202);
      ids.push(created.body.id);
    }
    const newestFirst = [...ids].reverse();
    const failedId = ids[0] as string;
    // The failing task must have failed before the --status failed list below.
    const deadline = Date.now() + 20_000;
    while ((await t.request(`/api/v1/generations/${failedId}`, { key })).body.status !== "failed") {
      if (Date.now() > deadline) throw new Error("the [sim:fail] task did not fail");
      await sleep(50);
    }

    const [json102, jsonAll, text, failed, failedText, next, other, badStatus, badLimit] = await Promise.all([
      runCli(["list", "--limit", "102", "--json"], env()),
      runCli(["list", "--limit", "500", "--json"], env()),
      runCli(["list", "--limit", "3"], env()),
      runCli(["list", "--status", "failed", "--json"], env()),
      runCli(["list", "--status", "failed"], env()),
      runCli(["list", "--starting-after", newestFirst[1] as string, "--limit", "2", "--json"], env()),
      runCli(["list", "--json"], env({ FRAMEGATE_API_KEY: otherKey })),
      runCli(["list", "--status", "done"], env({ FRAMEGATE_BASE_URL: DEAD })),
      runCli(["list", "--limit", "0", "--json"], env({ FRAMEGATE_BASE_URL: DEAD })),
    ]);

    expect(json102.code, json102.stderr).toBe(0);
    expect(json102.json.object).toBe("list");
    expect(json102.json.data.map((x: { id: string }) => x.id)).toEqual(newestFirst.slice(0, 102));
    expect(json102.json.has_more).toBe(true);
    expect(jsonAll.code, jsonAll.stderr).toBe(0);
    expect(jsonAll.json.data.map((x: { id: string }) => x.id)).toEqual(newestFirst);
    expect(jsonAll.json.has_more).toBe(false);

    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toMatch(TERMINAL_CONTROL);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +STATUS +MODEL +PARAMS +CREDITS +CREATED +CLIENT REQUEST ID$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[0])).toEqual(newestFirst.slice(0, 3));
    expect(lines[1]).toMatch(/ kling-2-6 +5s 1:1 +\d+ reserved +\d{4}-\d\d-\d\dT[\d:.]+Z +order-102$/);
    expect(lines[4]).toBe(`… more: framegate list --limit 3 --starting-after ${newestFirst[2]}`);

    expect(failed.code, failed.stderr).toBe(0);
    expect(failed.json.data).toHaveLength(1);
    expect(failed.json.data[0]).toMatchObject({ id: failedId, status: "failed", final_credits: 0 });
    expect(failedText.stdout).toMatch(
      new RegExp(`^${failedId} +failed \\(provider_error\\) +kling-2-6 +5s 1:1 +\\d+ refunded +\\S+ +order-0$`, "m"),
    );

    const byClientId = await runCli(["list", "--client-request-id", "order-5", "--json"], env());
    expect(byClientId.code, byClientId.stderr).toBe(0);
    expect(byClientId.json.data.map((x: { id: string }) => x.id)).toEqual([ids[5]]);

    expect(next.code, next.stderr).toBe(0);
    expect(next.json.data.map((x: { id: string }) => x.id)).toEqual(newestFirst.slice(2, 4));
    expect(next.json.has_more).toBe(true);

    // Another account sees none of them.
    expect(other.code, other.stderr).toBe(0);
    expect(other.json).toEqual({ object: "list", data: [], has_more: false });

    // Refused before any request (exit 2; the dead base URL was never contacted).
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr).toBe(
      'error: invalid_argument: --status must be one of queued, processing, succeeded, failed (got "done")\n',
    );
    expect(badLimit.code).toBe(2);
    expect(badLimit.errorJson.error).toMatchObject({ code: "invalid_argument" });
  });

  it("a failed task says its credits were refunded (generate, wait and status)", { timeout: 120_000 }, async () => {
    const before = (await t.request("/api/v1/credits", { key: otherKey })).body.current_credits;
    const generated = await runCli(["generate", "Doomed [sim:fail]"], env({ FRAMEGATE_API_KEY: otherKey }));
    expect(generated.code).toBe(1);
    const id = /^created (task_\w+) \(.*; (\d+) credits reserved\)$/m.exec(generated.stdout);
    expect(id, generated.stdout).not.toBeNull();
    const [, taskId, reserved] = id as unknown as [string, string, string];
    expect(generated.stdout).toContain(`${taskId} failed: its ${reserved} credits were refunded to your balance\n`);
    expect(generated.stderr).toMatch(/^error: generation_failed \(provider_error\): /);
    expect((await t.request("/api/v1/credits", { key: otherKey })).body.current_credits).toBe(before);

    const [waited, status] = await Promise.all([
      runCli(["wait", taskId], env({ FRAMEGATE_API_KEY: otherKey })),
      runCli(["status", taskId], env({ FRAMEGATE_API_KEY: otherKey })),
    ]);
    expect(waited.code).toBe(1);
    expect(waited.stdout).toContain(`${taskId} failed: its ${reserved} credits were refunded to your balance\n`);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`  credits:   0 (${reserved} reserved, refunded)\n`);
  });

  // Many CLI children, each a second or more to start on a busy machine: a generous timeout.
  it("webhooks rotate, disable, enable, events and redeliver; another account's ids are not_found", {
    timeout: 180_000,
  }, async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const created = await t.request("/api/v1/webhooks", { key, json: { url: receiver.at("/parity") } });
      expect(created.status).toBe(201);
      const id: string = created.body.id;
      const firstSecret: string = created.body.signing_secret;

      const [rotated, rotatedText, disabled] = await Promise.all([
        runCli(["webhooks", "rotate", id, "--json"], env()),
        runCli(["webhooks", "rotate", id], env({ FRAMEGATE_API_KEY: otherKey })),
        runCli(["webhooks", "disable", id], env()),
      ]);
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.json).toMatchObject({ id, object: "webhook_endpoint" });
      expect(rotated.json.signing_secret).toMatch(/^whsec_/);
      expect(rotated.json.signing_secret).not.toBe(firstSecret);
      expect(rotatedText.code).toBe(1);
      expect(rotatedText.stderr).toMatch(/^error: not_found: /);

      expect(disabled.code, disabled.stderr).toBe(0);
      expect(disabled.stdout).toBe(
        `disabled ${id}  disabled  ${receiver.at("/parity")}  ${created.body.event_types.join(",")}\n`,
      );
      const [testWhileDisabled, rotatedAgain] = await Promise.all([
        runCli(["webhooks", "test", id], env()),
        runCli(["webhooks", "rotate", id], env()),
      ]);
      expect(testWhileDisabled.code).toBe(1);
      expect(testWhileDisabled.stderr).toMatch(/^error: validation_failed: .*disabled/);
      expect(rotatedAgain.code, rotatedAgain.stderr).toBe(0);
      expect(rotatedAgain.stdout).toMatch(/^ {2}new signing secret: whsec_\S+$/m);
      expect(rotatedAgain.stdout).toMatch(/only time the new secret is shown/);

      const [enabled, enabledOther] = await Promise.all([
        runCli(["webhooks", "enable", id, "--json"], env()),
        runCli(["webhooks", "enable", id, "--json"], env({ FRAMEGATE_API_KEY: otherKey })),
      ]);
      expect(enabled.code, enabled.stderr).toBe(0);
      expect(enabled.json).toMatchObject({ id, status: "active", disabled_at: null, failure_count: 0 });
      expect(enabledOther.code).toBe(1);
      expect(enabledOther.errorJson.error.code).toBe("not_found");

      const test = await runCli(["webhooks", "test", id, "--json"], env());
      expect(test.code, test.stderr).toBe(0);
      const eventId: string = test.json.id;
      await receiver.waitForRequests(1);

      const [events, eventsText, onlyTests, otherEvents, badType] = await Promise.all([
        runCli(["webhooks", "events", "--json"], env()),
        runCli(["webhooks", "events", "--limit", "1"], env()),
        runCli(["webhooks", "events", "--type", "webhook.test", "--json"], env()),
        runCli(["webhooks", "events", "--json"], env({ FRAMEGATE_API_KEY: otherKey })),
        runCli(["webhooks", "events", "--type", "nope"], env({ FRAMEGATE_BASE_URL: DEAD })),
      ]);
      expect(events.code, events.stderr).toBe(0);
      expect(events.json.data.map((e: { id: string }) => e.id)).toContain(eventId);
      expect(eventsText.code, eventsText.stderr).toBe(0);
      expect(eventsText.stdout).toMatch(/^ID +CREATED +TYPE +SUBJECT\n/);
      expect(onlyTests.json.data.map((e: { type: string }) => e.type)).toEqual(["webhook.test"]);
      expect(onlyTests.json.data[0]).toMatchObject({ id: eventId, data: { endpoint_id: id } });
      expect(otherEvents.json.data.map((e: { id: string }) => e.id)).not.toContain(eventId);
      expect(badType.code).toBe(2);
      expect(badType.stderr).toMatch(/^error: invalid_argument: --type must be one of generation\.succeeded, /);

      const [redelivered, redeliveredOther] = await Promise.all([
        runCli(["webhooks", "redeliver", eventId, "--json"], env()),
        runCli(["webhooks", "redeliver", eventId], env({ FRAMEGATE_API_KEY: otherKey })),
      ]);
      expect(redelivered.code, redelivered.stderr).toBe(0);
      expect(redelivered.json).toEqual({ event_id: eventId, endpoint_ids: [id] });
      expect(redeliveredOther.code).toBe(1);
      expect(redeliveredOther.stderr).toMatch(/^error: not_found: /);
      await receiver.waitForRequests(2);
      const sent = receiver.requests.map((r) => r.headers["webhook-id"]);
      expect(sent.filter((h) => h === eventId)).toHaveLength(2);

      // Deliveries page through the SDK: --limit 1 shows the newest attempt only.
      const deadline = Date.now() + 10_000;
      while ((await t.request(`/api/v1/webhooks/${id}/deliveries`, { key })).body.data.length < 2) {
        if (Date.now() > deadline) throw new Error("the redelivery was not recorded");
        await sleep(50);
      }
      const deliveries = await runCli(["webhooks", "deliveries", id, "--limit", "1", "--json"], env());
      expect(deliveries.code, deliveries.stderr).toBe(0);
      expect(deliveries.json.data).toHaveLength(1);
      expect(deliveries.json.data[0]).toMatchObject({ event_id: eventId, status: "succeeded" });
    } finally {
      await receiver.close();
    }
  });
});

/** A CLI child whose output can be watched while it runs. */
function startCli(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run = { stdout: "", stderr: "", code: undefined as number | null | undefined };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    run.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    run.stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const until = async (what: () => boolean, label: string, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}:\n${run.stdout}\n${run.stderr}`);
      if (run.code !== undefined)
        throw new Error(`exited (${run.code}) before ${label}:\n${run.stdout}\n${run.stderr}`);
      await sleep(50);
    }
  };
  void exited.then((code) => {
    run.code = code;
  });
  return { run, exited, until, kill: () => child.kill("SIGKILL") };
}

describe("waits outlive a server restart", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("generate and wait say the server is unreachable once, keep retrying, and finish when it is back", {
    timeout: 180_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "framegate-cli-restart-"));
    const out = mkdtempSync(join(tmpdir(), "framegate-cli-restart-out-"));
    dirs.push(dataDir, out);
    const port = await freePort();
    let server: TestServer | undefined = await startTestServer({ PORT: String(port) }, dataDir);
    const { key } = await server.createAccount(1000);
    const env = {
      FRAMEGATE_BASE_URL: server.url,
      FRAMEGATE_API_KEY: key,
      FRAMEGATE_CONFIG: join(out, "no-config.json"),
      FRAMEGATE_POLL_INTERVAL_MS: "100",
    };
    const children: ReturnType<typeof startCli>[] = [];
    try {
      const queued = await server.request("/api/v1/generations", {
        key,
        json: { model: "kling-2-6", prompt: "restart [sim:delay=2]" },
      });
      expect(queued.status).toBe(202);
      const generate = startCli(["generate", "Across a restart [sim:delay=2]", "--out", out], env);
      children.push(generate);
      await generate.until(() => /^created task_/m.test(generate.run.stdout), "the create");

      await server.close();
      server = undefined;
      // `wait` on a server that is down from the start: the first read fails too.
      const wait = startCli(["wait", queued.body.id], env);
      children.push(wait);
      for (const [cli, name] of [
        [generate, "generate"],
        [wait, "wait"],
      ] as const) {
        await cli.until(() => cli.run.stderr.includes("server unreachable (ECONNREFUSED), retrying…"), name);
      }
      await sleep(1000); // several failed reads, which must not repeat the message

      server = await startTestServer({ PORT: String(port) }, dataDir);
      const [generateCode, waitCode] = await Promise.all([generate.exited, wait.exited]);

      expect(generateCode, generate.run.stderr).toBe(0);
      expect(waitCode, wait.run.stderr).toBe(0);
      for (const cli of [generate, wait]) {
        expect(cli.run.stderr).toBe("server unreachable (ECONNREFUSED), retrying…\nconnection to the server is back\n");
      }
      expect(generate.run.stdout).toMatch(/^saved .*task_\w+\.mp4 \(/m);
      expect(wait.run.stdout).toMatch(new RegExp(`^${queued.body.id} succeeded \\(`, "m"));
    } finally {
      for (const c of children) c.kill();
      await server?.close();
    }
  });
});
