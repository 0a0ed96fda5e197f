/**
 * Lighthouse scores of the web console (performance, accessibility, best practices), measured
 * against Debian's Chromium on this machine: a server on 127.0.0.1 (SQLite in a temp directory,
 * the built console in packages/console/dist), then Lighthouse's mobile and desktop presets on
 *   - the sign-in page (/console, signed out), and
 *   - a customer's overview (/console, signed in: the session cookie of a real sign-in is sent as
 *     an extra header, with a balance, usage and a finished generation to show).
 * Lighthouse 12 is used because 13 needs Node 22.19 and this project supports Node 20.
 *
 * Run: npm run lighthouse   (build the console first: npm run build -w @framegate/console)
 * CHROMIUM=/path/to/chrome picks another browser; RUNS=n takes the median of n runs (default 3).
 *
 * Not part of the test suite: scores move with the machine's load (performance is a simulated
 * slow 4G phone on the mobile preset), so they are figures for the README, not assertions.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "chrome-launcher";
import lighthouse, { type Config, type Flags } from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import { loadConfig } from "../packages/server/src/config.js";
import { DEFAULT_CONSOLE_DIST_DIR } from "../packages/server/src/console/static-routes.js";
import { createLogger } from "../packages/server/src/logger.js";
import { startServer } from "../packages/server/src/server.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const CATEGORIES = ["performance", "accessibility", "best-practices"] as const;

if (!existsSync(join(DEFAULT_CONSOLE_DIST_DIR, "index.html"))) {
  console.error("The console is not built: run npm run build -w @framegate/console first.");
  process.exit(1);
}
if (!existsSync(CHROMIUM)) {
  console.error(`No Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM).`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "framegate-lighthouse-"));
const server = await startServer(
  loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dir,
    LOG_LEVEL: "silent",
    BOOTSTRAP_DEV_ACCOUNT: "false",
    RATE_LIMIT_READ_PER_MIN: "0",
    SIM_SIZE_16_9: "256x144",
    SIM_FPS: "8",
  }),
  { log: createLogger("silent") },
);
const base = server.url;

/** A customer with something to show, signed in through the console's own endpoint. */
async function signedInCookie(): Promise<string> {
  const account = await server.accounts.createAccount({ name: "lighthouse", credits: 5_000 });
  const { key } = await server.accounts.createKey(account.id);
  const created = await fetch(`${base}/api/v1/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "kling-2-6", prompt: "a lighthouse at dusk" }),
  });
  const { id } = (await created.json()) as { id: string };
  for (let i = 0; i < 600; i++) {
    const task = (await (
      await fetch(`${base}/api/v1/generations/${id}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { status: string };
    if (task.status !== "queued" && task.status !== "processing") break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const session = await fetch(`${base}/console/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: key }),
  });
  const cookie = session.headers.getSetCookie().find((c) => c.startsWith("framegate_session="));
  if (session.status !== 201 || !cookie) throw new Error(`sign-in failed: ${session.status}`);
  return cookie.split(";")[0] as string;
}

// Headless, no sandbox (Chromium refuses it as root, as CI and containers run), /tmp instead of
// a small /dev/shm, and every host but loopback sent to a closed port: nothing leaves the machine.
const chrome = await launch({
  chromePath: CHROMIUM,
  chromeFlags: [
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--proxy-server=http://127.0.0.1:9",
    "--mute-audio",
  ],
});

type Scores = Record<(typeof CATEGORIES)[number], number>;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function score(url: string, preset: "mobile" | "desktop", headers?: Record<string, string>) {
  const runs: Scores[] = [];
  const failing = new Map<string, string>();
  for (let i = 0; i < RUNS; i++) {
    const flags: Flags = {
      port: chrome.port,
      logLevel: "error",
      output: "json",
      onlyCategories: [...CATEGORIES],
      ...(headers ? { extraHeaders: headers } : {}),
    };
    const result = await lighthouse(url, flags, preset === "desktop" ? (desktopConfig as Config) : undefined);
    if (!result) throw new Error("Lighthouse returned no result");
    const { lhr } = result;
    runs.push(
      Object.fromEntries(CATEGORIES.map((c) => [c, Math.round((lhr.categories[c]?.score ?? 0) * 100)])) as Scores,
    );
    // What kept a category from 100, for the README and for fixing.
    for (const category of CATEGORIES) {
      for (const ref of lhr.categories[category]?.auditRefs ?? []) {
        const audit = lhr.audits[ref.id];
        if (ref.weight > 0 && audit && audit.score !== null && audit.score < 1) {
          failing.set(ref.id, `${category}: ${audit.title}${audit.displayValue ? ` (${audit.displayValue})` : ""}`);
        }
      }
    }
    const metrics = ["first-contentful-paint", "largest-contentful-paint", "total-blocking-time"]
      .map((id) => `${id.replace(/-/g, " ")} ${lhr.audits[id]?.displayValue ?? "?"}`)
      .join(", ");
    if (i === RUNS - 1) console.log(`    ${metrics}`);
  }
  const scores = Object.fromEntries(CATEGORIES.map((c) => [c, median(runs.map((r) => r[c]))])) as Scores;
  return { scores, failing: [...failing.values()] };
}

try {
  const cookie = await signedInCookie();
  const pages: [string, Record<string, string> | undefined][] = [
    ["sign-in page", undefined],
    ["customer overview", { Cookie: cookie }],
  ];
  console.log(`Lighthouse ${(await import("lighthouse/package.json", { with: { type: "json" } })).default.version}`);
  console.log(`Chromium ${CHROMIUM}, median of ${RUNS} run(s) per row, ${base}/console`);
  for (const [name, headers] of pages) {
    for (const preset of ["mobile", "desktop"] as const) {
      console.log(`${name}, ${preset}:`);
      const { scores, failing } = await score(`${base}/console`, preset, headers);
      console.log(
        `  performance ${scores.performance}, accessibility ${scores.accessibility}, best practices ${scores["best-practices"]}`,
      );
      for (const line of failing) console.log(`    below 100: ${line}`);
    }
  }
} finally {
  chrome.kill();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
