/**
 * Real-browser test helpers: headless Chromium (Debian's package, driven by playwright-core,
 * which downloads no browser of its own) against a startTestServer() server.
 *
 * One browser per test file (launching costs far more than a context); each watched context
 * records what a user would never see but a page must not do: console errors and uncaught
 * exceptions, Content-Security-Policy violations, and any request to a host other than
 * 127.0.0.1. Accessibility is checked with axe-core, injected into the page under test.
 *
 * Without Chromium the browser suites skip with a message; with CI set they fail instead, since
 * .ci/run installs it and a skipped check there would pass silently.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Result as AxeResult, AxeResults } from "axe-core";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { describe, expect, it } from "vitest";

/** Where Chromium is; FRAMEGATE_TEST_CHROMIUM points elsewhere (another distribution, macOS). */
export const CHROMIUM_PATH = process.env.FRAMEGATE_TEST_CHROMIUM ?? "/usr/bin/chromium";

/** How long a page may take to show something on a loaded 2-core machine. Never an assertion. */
export const PAGE_TIMEOUT_MS = 45_000;

const chromiumPresent = existsSync(CHROMIUM_PATH);
const inCi = Boolean(process.env.CI) && process.env.CI !== "false";

/**
 * `describe` for a browser suite: runs it when Chromium is there; otherwise skips it with a
 * message, or, in CI, replaces it by one failing test that says what is missing.
 */
export function describeBrowser(name: string, body: () => void): void {
  if (chromiumPresent) {
    describe(name, body);
  } else if (inCi) {
    describe(name, () => {
      it("needs Chromium", () => {
        throw new Error(`Chromium is not at ${CHROMIUM_PATH}: .ci/run installs Debian's chromium package`);
      });
    });
  } else {
    console.warn(
      `[browser tests] skipping "${name}": no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set FRAMEGATE_TEST_CHROMIUM)`,
    );
    describe.skip(name, body);
  }
}

/**
 * Launches headless Chromium. The flags:
 * - no sandbox (playwright's chromiumSandbox: false, which passes --no-sandbox): Chromium refuses
 *   to start its sandbox as root, which is how CI and this project's machines run, and in
 *   containers unprivileged user namespaces are often off too; the pages are our own, served on
 *   loopback, and the proxy below keeps the browser off every other host.
 * - --proxy-server to a closed loopback port: Chromium never proxies loopback, so pages on
 *   127.0.0.1 load as usual, while any request to another host (the page's or the browser's own
 *   background traffic) goes to a port where nothing answers, and fails without leaving the machine.
 *   The watched context records those requests, which the tests expect to be none.
 * - --disable-dev-shm-usage: a container's /dev/shm may be 64 MB, too small for Chromium's
 *   shared memory; /tmp is used instead.
 * - --mute-audio: video playback in tests makes no sound.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    chromiumSandbox: false,
    timeout: PAGE_TIMEOUT_MS,
    args: ["--proxy-server=http://127.0.0.1:9", "--disable-dev-shm-usage", "--mute-audio"],
  });
}

/** What a watched context saw that it should not have. Every list is expected to stay empty. */
export interface PageProblems {
  consoleErrors: string[];
  /** Uncaught exceptions in a page. */
  pageErrors: string[];
  /** securitypolicyviolation events: "<directive> blocked <uri>". */
  cspViolations: string[];
  /** Requests to any host other than 127.0.0.1 (the server's). */
  offHostRequests: string[];
}

export interface WatchedContext {
  context: BrowserContext;
  problems: PageProblems;
  /** Empties every list (after a step that is expected to log, such as a deliberate 401). */
  clear(): void;
}

/** Loopback as the server listens on it; data:, blob: and about: URLs never leave the browser. */
function leavesLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === "data:" || protocol === "blob:" || protocol === "about:") return false;
  return hostname !== "127.0.0.1";
}

/** A new context (fresh cookies and storage) that records its pages' problems. */
export async function watchedContext(
  browser: Browser,
  opts: { baseURL: string; viewport?: { width: number; height: number } },
): Promise<WatchedContext> {
  const context = await browser.newContext({
    baseURL: opts.baseURL,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(PAGE_TIMEOUT_MS);
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], cspViolations: [], offHostRequests: [] };

  // Both are injected by the DevTools protocol, which a page's CSP does not govern.
  await context.exposeBinding("__framegateCspViolation", (_source, report: string) => {
    problems.cspViolations.push(report);
  });
  // Page-side code as text: the tests compile without the DOM's types.
  await context.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (e) => {
      window.__framegateCspViolation(e.effectiveDirective + " blocked " + (e.blockedURI || "(inline)") + " in " + e.documentURI);
    });`,
  });
  context.on("request", (req) => {
    if (leavesLoopback(req.url())) problems.offHostRequests.push(`${req.method()} ${req.url()}`);
  });
  context.on("page", (page) => watchPage(page, problems));
  return {
    context,
    problems,
    clear() {
      for (const list of Object.values(problems)) list.length = 0;
    },
  };
}

function watchPage(page: Page, problems: PageProblems): void {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const where = msg.location().url;
    problems.consoleErrors.push(where ? `${msg.text()} (${where})` : msg.text());
  });
  page.on("pageerror", (error) => problems.pageErrors.push(error.stack ?? error.message));
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** An axe finding, short enough to read in a failed assertion. */
export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  /** Every element found, as axe's selector and the start of its markup. */
  nodes: { target: string; html: string }[];
}

const summarize = (v: AxeResult): AxeViolation => ({
  id: v.id,
  impact: v.impact ?? "unknown",
  help: v.help,
  nodes: v.nodes.map((n) => ({ target: n.target.join(" "), html: n.html.slice(0, 200) })),
});

/**
 * Runs axe-core on the page as it is now (WCAG 2.0–2.2 A/AA and best practices) and returns its
 * serious and critical violations. axe's source is evaluated through the DevTools protocol, not
 * added as a <script>, so the page's own CSP (scripts from 'self' only) stays as it is.
 * `exclude`: selectors of third-party regions whose findings are reported separately.
 */
export async function seriousAxeViolations(page: Page, exclude: string[] = []): Promise<AxeViolation[]> {
  const injected = await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe !== "undefined");
  if (!injected) await page.evaluate(axeSource);
  const results = await page.evaluate(async (excluded: string[]) => {
    const { axe } = globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<AxeResults> } };
    const context = { include: [["html"]], exclude: excluded.map((s) => [s]) };
    return axe.run(context, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
      resultTypes: ["violations"],
    });
  }, exclude);
  return results.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map(summarize);
}

/** The part of HTMLVideoElement the tests read (they compile without the DOM's types). */
export interface Player {
  muted: boolean;
  currentTime: number;
  currentSrc: string;
  poster: string;
  play(): Promise<void>;
}

/**
 * Plays the video labelled `label` (muted, as autoplay rules want) and waits until its clock
 * really advances: the media loaded, decoded and played, which a `src` attribute alone does not show.
 */
export async function expectVideoPlays(page: Page, label: string): Promise<void> {
  const video = page.getByLabel(label);
  await video.waitFor();
  await video.evaluate((v: unknown) => {
    const player = v as Player;
    player.muted = true;
    return player.play();
  });
  await expect
    .poll(() => video.evaluate((v: unknown) => (v as Player).currentTime), { timeout: 30_000 })
    .toBeGreaterThan(0);
}

/** No console error (but those `allowed` lets through), page error, CSP violation or request off 127.0.0.1. */
export function expectClean(problems: PageProblems, allowed: (line: string) => boolean = () => false): void {
  expect({ ...problems, consoleErrors: problems.consoleErrors.filter((l) => !allowed(l)) }).toEqual({
    consoleErrors: [],
    pageErrors: [],
    cspViolations: [],
    offHostRequests: [],
  });
}

export async function expectAccessible(page: Page): Promise<void> {
  expect(await seriousAxeViolations(page)).toEqual([]);
}

/** How far the page scrolls sideways (0 when it fits the viewport's width). */
export const overflow = (page: Page) =>
  page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") as Promise<number>;

/**
 * Signs in through the console's own form, as a user would: an operator with the admin token on
 * the Operator tab, a customer with an API key. Resolves once the signed-in navigation shows.
 */
export async function signInThroughForm(page: Page, kind: "customer" | "operator", secret: string): Promise<void> {
  await page.goto("/console");
  if (kind === "operator") {
    await page.getByRole("tab", { name: "Operator" }).click();
    await page.getByLabel("Admin token").fill(secret);
  } else {
    await page.getByLabel("API key").fill(secret);
  }
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}
