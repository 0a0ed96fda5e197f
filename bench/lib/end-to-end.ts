/**
 * The end-to-end figure: N tasks created as fast as the API takes them, then run by the embedded
 * worker against the simulator in its no-render mode (SIMULATOR_RENDER=reuse), until each is
 * terminal, its credits settled and its webhook event recorded. Webhook deliveries go to a
 * loopback receiver here; they may lag behind the events and are reported on their own.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { type EndToEndProgress, endToEndProgress, type LedgerTotals, ledgerTotals, waitUntilQuiet } from "./checks.js";
import { CreateTracker, createBody, type LoadFigures, runLoad } from "./load.js";
import { sleep } from "./processes.js";
import type { StoreReader } from "./store-reader.js";

/** Settings of the end-to-end server beyond the request-path ones; the README lists them. */
export function endToEndEnv(store: "sqlite" | "postgres"): Record<string, string> {
  return {
    SIMULATOR_RENDER: "reuse",
    WEBHOOK_ALLOW_INSECURE_URLS: "true",
    // One account runs every task: its running-task cap (fair sharing) would otherwise be the limit.
    ACCOUNT_MAX_RUNNING_TASKS: "10000",
    // Poll pacing stays at its defaults: the first poll comes when the simulator says the result
    // is ready (at once in reuse mode). On SQLite the table queue wakes a runner when a job put
    // off until later comes due, so its default poll interval is measured too; graphile-worker
    // finds such jobs (polls not ready yet, retries) only by polling, at this interval.
    ...(store === "postgres" ? { WORKER_POLL_INTERVAL_MS: "20" } : {}),
  };
}

export interface EndToEndResult {
  tasks: number;
  accepted: number;
  create: LoadFigures;
  /** Accepted creates per second of the creating phase (the worker already running alongside). */
  createdPerSecond: number;
  /** True when every accepted task finished (terminal, settled, event recorded) before the timeout. */
  completed: boolean;
  progress: EndToEndProgress;
  /** tasks / (first task created → last terminal event committed), server clock. */
  tasksPerSecond: number | null;
  seconds: number | null;
  /** Bench clock: first create sent → all finished seen by the poll (≤ 250 ms late). */
  wallSeconds: number;
  deliveredAtFinish: number;
  /** Distinct terminal events the receiver got, and how long after the finish the last came. */
  delivered: number;
  deliveriesLagSeconds: number | null;
  ledger: LedgerTotals;
  ledgerOk: boolean;
}

interface Receiver {
  url: string;
  taskEvents: Set<string>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const taskEvents = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { type?: string; data?: { id?: string } };
        if (event.type?.startsWith("generation.") && event.data?.id) taskEvents.add(event.data.id);
      } catch {}
      res.writeHead(204).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    taskEvents,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs one task of the measured shape to its end (the simulator renders that shape's video once). */
export async function warmUpEndToEnd(
  baseUrl: string,
  account: { apiKey: string },
  log: (line: string) => void,
): Promise<void> {
  const headers = { authorization: `Bearer ${account.apiKey}`, "content-type": "application/json" };
  const created = await fetch(`${baseUrl}/api/v1/generations`, {
    method: "POST",
    headers,
    body: createBody("e2e-warm-up"),
  });
  if (created.status !== 202) throw new Error(`e2e warm-up create: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const res = await fetch(`${baseUrl}/api/v1/generations/${id}`, { headers });
    const task = (await res.json()) as { status?: string };
    if (task.status === "succeeded") {
      log("  e2e: warm-up task succeeded (its shape's video is rendered)");
      return;
    }
    if (task.status === "failed") throw new Error(`e2e warm-up task failed: ${JSON.stringify(task)}`);
    await sleep(100);
  }
  throw new Error("e2e warm-up task did not finish within 120 s");
}

export async function runEndToEnd(opts: {
  baseUrl: string;
  apiKey: string;
  accountId: string;
  db: StoreReader;
  tasks: number;
  connections: number;
  timeoutSeconds: number;
  log: (line: string) => void;
}): Promise<EndToEndResult> {
  const receiver = await startReceiver();
  try {
    const hook = await fetch(`${opts.baseUrl}/api/v1/webhooks`, {
      method: "POST",
      headers: { authorization: `Bearer ${opts.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url }),
    });
    if (hook.status !== 201) throw new Error(`webhook endpoint: ${hook.status} ${await hook.text()}`);

    const tracker = new CreateTracker("e2e", opts.apiKey, false);
    const started = performance.now();
    const create = await runLoad({
      url: opts.baseUrl,
      connections: Math.min(opts.connections, opts.tasks),
      amount: opts.tasks,
      requests: [tracker.request()],
      // A create that outlives the timeout is retried by nobody: the count below would be short.
      timeout: 120,
    });
    const accepted = tracker.accepted.size;
    const createdPerSecond = Math.round(accepted / ((performance.now() - started) / 1000));
    opts.log(`  e2e: ${accepted}/${opts.tasks} created (${createdPerSecond}/s), waiting for them to finish`);
    // The tasks to wait for are the account's rows, not the 202s: a create cut off by an error may
    // still have committed, and its task runs like any other.
    await waitUntilQuiet(opts.db, opts.accountId);

    const finished = (p: EndToEndProgress) =>
      p.total > 0 && p.terminal === p.total && p.settled === p.total && p.withEvent === p.total;
    const deadline = started + opts.timeoutSeconds * 1000;
    let progress = await endToEndProgress(opts.db, opts.accountId);
    let lastLog = performance.now();
    while (!finished(progress) && performance.now() < deadline) {
      await sleep(250);
      progress = await endToEndProgress(opts.db, opts.accountId);
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        opts.log(
          `  e2e: ${progress.terminal}/${progress.total} terminal, ${progress.withEvent} events, ${progress.settled} settled`,
        );
      }
    }
    const completed = finished(progress);
    const wallSeconds = (performance.now() - started) / 1000;
    const deliveredAtFinish = receiver.taskEvents.size;

    // Deliveries trail the events: give them as long as the run took, at least 30 s, at most 2 min.
    const finishedAt = performance.now();
    let lastDeliveryAt = deliveredAtFinish >= progress.withEvent ? finishedAt : null;
    const deliveryDeadline = finishedAt + Math.min(120_000, Math.max(30_000, wallSeconds * 1000));
    while (completed && receiver.taskEvents.size < progress.withEvent && performance.now() < deliveryDeadline) {
      await sleep(100);
      if (receiver.taskEvents.size >= progress.withEvent) lastDeliveryAt = performance.now();
    }

    const seconds =
      progress.firstCreatedAt && progress.lastEventAt
        ? (new Date(progress.lastEventAt).getTime() - new Date(progress.firstCreatedAt).getTime()) / 1000
        : null;
    const ledger = await opts.db.snapshot(() => ledgerTotals(opts.db, opts.accountId));
    const ledgerOk =
      ledger.balance === ledger.granted - ledger.reserved + ledger.refunded + ledger.released &&
      (!completed || ledger.reserved - ledger.refunded - ledger.released === progress.charged);
    return {
      tasks: opts.tasks,
      accepted,
      create,
      createdPerSecond,
      completed,
      progress,
      tasksPerSecond: completed && seconds ? Math.round(progress.total / seconds) : null,
      seconds,
      wallSeconds,
      deliveredAtFinish,
      delivered: receiver.taskEvents.size,
      deliveriesLagSeconds: lastDeliveryAt === null ? null : (lastDeliveryAt - finishedAt) / 1000,
      ledger,
      ledgerOk,
    };
  } finally {
    await receiver.close();
  }
}
