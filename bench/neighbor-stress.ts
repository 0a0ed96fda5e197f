/**
 * Noisy-neighbour stress (issue #11): one hostile tenant, using only ordinary API calls, tries to
 * stall the service for everyone else. Starts `framegate serve` from source as a child process
 * (so this script's own work does not run on the server's event loop), then:
 *
 *   baseline  the victim's generation alone; /healthz latency at rest
 *   uploads   4 crafted uploads at a time (JPEG of millions of empty APP5 segments, PNG of ~700k
 *             empty chunks, MP4 of ~650k `free` boxes, and a valid 196 MP PNG of 600 KB that takes
 *             about a second of decoding) while a prober times
 *             /healthz and the victim's GET /api/v1/generations/{id}
 *   webhooks  40 endpoints of the attacker at a loopback tarpit that accepts connections and never
 *             answers, each fired with POST /api/v1/webhooks/{id}/test; then the victim's
 *             generation, timed from create to succeeded
 *
 * Prints the worst and p99 latencies and the victim's times, each beside its baseline.
 * Run: npm run stress:neighbor -- [attackSeconds]   (default 20)
 * All traffic stays on 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openAsBlob, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  craftJpegSegmentBomb,
  craftMp4BoxBomb,
  craftPngChunkBomb,
  craftSlowPng,
} from "../packages/server/test/fixtures/crafted.js";
import { freePort } from "./lib/processes.js";

const attackSeconds = Number(process.argv[2] ?? 20);
const ADMIN_TOKEN = "stress-admin-token-0123456789abcdef0123456789";
const root = join(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "framegate-neighbor-"));

async function startServer(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", join(root, "packages/cli/src/main.ts"), "serve"],
    {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        DATA_DIR: join(work, "data"),
        ADMIN_TOKEN,
        LOG_LEVEL: "warn",
        BOOTSTRAP_DEV_ACCOUNT: "false",
        WEBHOOK_ALLOW_INSECURE_URLS: "true",
        // The tarpit below needs 40 endpoints and a test fired at each, past the default endpoint
        // quota (20) and write rate limit (60/min): this measures isolation, not those limits.
        ACCOUNT_MAX_WEBHOOK_ENDPOINTS: "100",
        RATE_LIMIT_WRITE_PER_MIN: "0",
        POLL_FIRST_DELAY_MS: "200",
        POLL_MAX_INTERVAL_MS: "1000",
        SIM_SIZE_16_9: "640x360",
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  child.once("exit", (code, signal) => {
    if (!stopping) console.error(`the server exited during the run (code ${code}, signal ${signal})`);
  });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {}
    await sleep(100);
  }
  throw new Error("the server did not start");
}

let stopping = false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(port);
  const tarpitSockets = new Set<net.Socket>();
  let tarpitPeak = 0;
  const tarpit = net.createServer((socket) => {
    tarpitSockets.add(socket);
    tarpitPeak = Math.max(tarpitPeak, tarpitSockets.size);
    socket.on("data", () => {}); // read the request, never answer
    socket.on("error", () => {});
    socket.on("close", () => tarpitSockets.delete(socket));
  });
  await new Promise<void>((r) => tarpit.listen(0, "127.0.0.1", () => r()));
  const tarpitPort = (tarpit.address() as net.AddressInfo).port;

  try {
    const admin = async (path: string, body: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return (await res.json()) as { id: string; key: string };
    };
    const newKey = async (name: string) => {
      const account = await admin("/admin/v1/accounts", { name, credits: 100_000 });
      return (await admin(`/admin/v1/accounts/${account.id}/keys`, {})).key;
    };
    const attacker = await newKey("attacker");
    const victim = await newKey("victim");
    const api = (key: string, path: string, init: RequestInit = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });

    const createVictimTask = async (label: string) => {
      const res = await api(victim, "/api/v1/generations", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "kling-2-6", prompt: `victim ${label}`, params: { duration: "5" } }),
      });
      return ((await res.json()) as { id: string }).id;
    };
    const runVictimTask = async (label: string) => {
      const started = performance.now();
      const id = await createVictimTask(label);
      for (;;) {
        const task = (await (await api(victim, `/api/v1/generations/${id}`)).json()) as { status: string };
        if (task.status === "succeeded" || task.status === "failed") {
          return { id, status: task.status, seconds: (performance.now() - started) / 1000 };
        }
        await sleep(250);
      }
    };

    /** Times /healthz every 50 ms and the victim's GET every 250 ms until `until` resolves. */
    const probe = async (until: Promise<unknown>, taskId: string) => {
      const health: number[] = [];
      const reads: number[] = [];
      let done = false;
      void until.finally(() => {
        done = true;
      });
      const loop = async (every: number, sample: number[], call: () => Promise<Response>) => {
        while (!done) {
          const t0 = performance.now();
          await (await call()).arrayBuffer();
          sample.push(performance.now() - t0);
          await sleep(every);
        }
      };
      await Promise.all([
        loop(50, health, () => fetch(`${base}/healthz`)),
        loop(250, reads, () => api(victim, `/api/v1/generations/${taskId}`)),
      ]);
      return { healthz: summarize(health), victimGet: summarize(reads) };
    };

    // --- baseline -----------------------------------------------------------------------------
    const warm = await runVictimTask("warm-up");
    const baselineTask = await runVictimTask("baseline");
    const atRest = await probe(sleep(3000), warm.id);

    // --- crafted uploads ----------------------------------------------------------------------
    const slowPng = join(work, "slow.png");
    await craftSlowPng(slowPng, 14_000, 14_000);
    const files = await Promise.all([
      craftJpegSegmentBomb(work),
      craftPngChunkBomb(work),
      craftMp4BoxBomb(work),
      slowPng,
    ]);
    const kinds = ["image", "image", "video", "image"];
    const uploadStatus: string[] = [];
    const uploadMs: number[] = [];
    const attackUntil = performance.now() + attackSeconds * 1000;
    const uploads = Promise.all(
      files.map(async (file, i) => {
        while (performance.now() < attackUntil) {
          const form = new FormData();
          form.append("kind", kinds[i] as string);
          form.append("file", await openAsBlob(file), file.split("/").pop());
          const t0 = performance.now();
          const res = await api(attacker, "/api/v1/files", { method: "POST", body: form });
          const body = (await res.json()) as { error?: { code: string; message: string } };
          uploadMs.push(performance.now() - t0);
          uploadStatus.push(`${res.status}${body.error ? ` ${body.error.code}: ${body.error.message}` : ""}`);
          if (res.status === 429) await sleep(Number(res.headers.get("retry-after") ?? 1) * 1000);
        }
      }),
    );
    const underUploads = await probe(uploads, warm.id);

    // --- webhook tarpit -----------------------------------------------------------------------
    const endpointIds: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await api(attacker, "/api/v1/webhooks", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url: `http://127.0.0.1:${tarpitPort}/hook-${i}` }),
      });
      const body = (await res.json()) as { id?: string; error?: { message: string } };
      if (!body.id) throw new Error(`webhook create failed: ${JSON.stringify(body)}`);
      endpointIds.push(body.id);
    }
    const fired = await Promise.all(
      endpointIds.map((id) => api(attacker, `/api/v1/webhooks/${id}/test`, { method: "POST" }).then((r) => r.status)),
    );
    const testStatuses = countBy(fired.map(String));
    await sleep(500); // let the deliveries reach the tarpit
    const tarpitOpenAtVictimCreate = tarpitSockets.size;
    const victimTask = runVictimTask("under webhook tarpit");
    const underTarpit = await probe(victimTask, warm.id);
    const tarpitTask = await victimTask;

    const report = {
      attackSeconds,
      baseline: { victimTaskSeconds: round(baselineTask.seconds), ...atRest },
      uploads: {
        statuses: countBy(uploadStatus),
        uploadMs: summarize(uploadMs),
        ...underUploads,
      },
      webhookTarpit: {
        endpoints: endpointIds.length,
        testStatuses,
        tarpitOpenAtVictimCreate,
        tarpitPeakConnections: tarpitPeak,
        victimTask: { status: tarpitTask.status, seconds: round(tarpitTask.seconds) },
        victimSlowdown: round(tarpitTask.seconds / baselineTask.seconds),
        ...underTarpit,
      },
    };
    console.log(JSON.stringify(report, null, 2));
    console.log(
      [
        `worst /healthz: ${underUploads.healthz.max} ms under crafted uploads (at rest ${atRest.healthz.max} ms, p99 ${underUploads.healthz.p99} vs ${atRest.healthz.p99})`,
        `worst victim GET: ${underUploads.victimGet.max} ms under crafted uploads (at rest ${atRest.victimGet.max} ms)`,
        `victim task: ${round(tarpitTask.seconds)} s under the webhook tarpit vs ${round(baselineTask.seconds)} s baseline (${report.webhookTarpit.victimSlowdown}x), tarpit peak ${tarpitPeak} connections`,
      ].join("\n"),
    );
  } finally {
    for (const socket of tarpitSockets) socket.destroy();
    tarpit.close();
    stopping = true;
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    rmSync(work, { recursive: true, force: true });
  }
}

function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: round(sorted.at(-1) ?? 0) };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

function round(n: number) {
  return Math.round(n * 10) / 10;
}

await main();
