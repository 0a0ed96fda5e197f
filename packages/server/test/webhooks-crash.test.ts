/**
 * kill -9 between a task's terminal transition and its webhook delivery: the event and its
 * delivery job are committed with the transition, so a server restarted on the same data
 * directory still delivers the event, once, with the same webhook-id and a signature that the
 * endpoint's secret (encrypted at rest with the server's persisted secret) still verifies.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, describe, expect, it } from "vitest";
import { waitForTask } from "./harness.js";
import { ChildServer, freePort, killAll, readDb, sleep } from "./process-helpers.js";
import { pollUntil, WebhookReceiver } from "./webhook-receiver.js";

const RETRY_MS = 1000;

describe("webhook delivery survives SIGKILL", () => {
  const children: ChildServer[] = [];
  const receivers: WebhookReceiver[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-webhook-crash-"));
  afterAll(async () => {
    await killAll(children);
    await Promise.all(receivers.map((r) => r.close()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("delivers the event recorded before the kill exactly once after the restart", { timeout: 90_000 }, async () => {
    const port = await freePort();
    // Reserved for the receiver, but nothing listens there until the server has been killed:
    // every attempt of the first process is refused.
    const receiverPort = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = {
      DATA_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: "info",
      JOB_LEASE_SECONDS: "1",
      RATE_LIMIT_READ_PER_MIN: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      // 1 s between attempts: enough attempts left (8 in all) for the time the server is down.
      WEBHOOK_RETRY_SCHEDULE_MS: Array.from({ length: 7 }, () => String(RETRY_MS)).join(","),
      WEBHOOK_TIMEOUT_MS: "2000",
    };
    const start = async () => {
      const child = new ChildServer(url, env);
      children.push(child);
      await child.waitReady();
      return child;
    };

    // --- first process: the task ends, its event is recorded, the receiver is down ------------
    const first = await start();
    const { key } = await first.createAccount(1000);
    const created = await first.request("/api/v1/webhooks", {
      key,
      json: { url: `http://127.0.0.1:${receiverPort}/hook`, event_types: ["generation.succeeded"] },
    });
    expect(created.status, created.text).toBe(201);
    const endpoint = created.body as { id: string; signing_secret: string };
    const task = await first.request("/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "a lighthouse in the storm" },
    });
    expect(task.status, task.text).toBe(202);
    const taskId: string = task.body.id;
    const terminal = await waitForTask(first, key, taskId, 30_000);
    expect(terminal.status, first.output()).toBe("succeeded");
    const event = await pollUntil(
      async () => {
        const res = await first.request("/api/v1/webhook-events?type=generation.succeeded", { key });
        return res.body.data?.find((e: { data: { id: string } }) => e.data.id === taskId);
      },
      10_000,
      "the generation.succeeded event",
    );
    expect(event).toMatchObject({ object: "event", type: "generation.succeeded", api_version: "2026-05-11" });
    // Kill only once the first process has logged a refused attempt (under load it may not have run one yet).
    const beforeKill = await pollUntil(
      async () => {
        const res = await first.request(`/api/v1/webhooks/${endpoint.id}/deliveries`, { key });
        return res.body.data?.length > 0 ? res.body.data : undefined;
      },
      10_000,
      "a first, refused delivery attempt",
    );
    expect(beforeKill.every((d: { status: string }) => d.status === "failed")).toBe(true);

    await first.kill();
    expect(first.exit?.signal).toBe("SIGKILL");
    // The delivery job is durable: still pending in the dead server's database. On PostgreSQL the
    // attempt that was running at the kill may also be there, keyless: its retry took the key over
    // (graphile-worker's "replace"), and housekeeping completes such rows; only keyed jobs run.
    const atKill = await readDb(dataDir);
    expect(atKill.jobs.filter((j) => j.kind === "webhook.deliver" && j.job_key !== null)).toHaveLength(1);
    expect(atKill.tasks.find((tk) => tk.id === taskId)?.status).toBe("succeeded");

    // --- the receiver comes up, then the server restarts on the same data directory -----------
    const receiver = await WebhookReceiver.start(undefined, receiverPort);
    receivers.push(receiver);
    const second = await start();
    await receiver.waitUntil((r) => r.acknowledged().length >= 1, 20_000, "the delivery after the restart");
    // Longer than the retry delay: a duplicate (or a retry of a delivery wrongly logged as failed) would show up.
    await sleep(RETRY_MS * 2.5);

    const ids = new Set(receiver.requests.map((q) => q.headers["webhook-id"]));
    expect(ids).toEqual(new Set([event.id]));
    expect(receiver.acknowledged()).toHaveLength(1);
    // Delivery is at-least-once: a process killed after the receiver answered 2xx but before the
    // attempt was committed would send it again (same webhook-id, for the receiver to deduplicate).
    // Here the only kill happened while the receiver was down, so nothing reached it before the
    // restart, and the restarted process's first attempt succeeded and was committed: one request.
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0];
    if (!req) throw new Error("no request");
    expect(req.method).toBe("POST");
    expect(new Webhook(endpoint.signing_secret).verify(req.body, req.headers)).toEqual(event);
    expect(JSON.parse(req.body).data).toEqual(terminal);

    // The log, read from the restarted server: refused attempts from the first process, then one success.
    const log = (await second.request(`/api/v1/webhooks/${endpoint.id}/deliveries?limit=100`, { key })).body.data as {
      attempt: number;
      status: string;
      error: string | null;
      response_status: number | null;
    }[];
    log.reverse();
    expect(log.length).toBeGreaterThanOrEqual(2);
    expect(log.length).toBeLessThanOrEqual(8);
    expect(log.map((d) => d.attempt)).toEqual(log.map((_, i) => i + 1));
    const last = log.at(-1);
    expect(last).toMatchObject({ status: "succeeded", response_status: 200, error: null });
    for (const d of log.slice(0, -1)) {
      expect(d).toMatchObject({ status: "failed", response_status: null, error: expect.stringMatching(/^network: /) });
    }
    // Still exactly one event for the task, and the endpoint is healthy.
    const events = await second.request("/api/v1/webhook-events", { key });
    expect(events.body.data.filter((e: { data: { id: string } }) => e.data.id === taskId)).toHaveLength(1);
    const ep = await second.request(`/api/v1/webhooks/${endpoint.id}`, { key });
    expect(ep.body).toMatchObject({ status: "active", failure_count: 0 });
    expect(ep.body.last_success_at).toEqual(expect.any(String));
    await second.kill();
    expect((await readDb(dataDir)).jobs.filter((j) => j.kind === "webhook.deliver")).toHaveLength(0);
  });
});
