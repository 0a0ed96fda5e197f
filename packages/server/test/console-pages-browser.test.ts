/**
 * Every page of the web console, for both kinds of session, in real headless Chromium. The list
 * of pages is not written here: it is the console's own navigation (CUSTOMER_NAV and OPERATOR_NAV
 * in packages/console/src/routes.ts, each link with the routes under it), turned into paths by
 * pathOf, so a page added to the navigation is visited here without touching this file (an item
 * route with no id below fails loudly instead of being skipped).
 *
 * The data behind the pages is real: a succeeded and a failed (refunded) generation, a webhook
 * endpoint that received their events, a second API key, the ledger entries all of that made, and
 * a second account whose things must not show. On every page, at 1280 px and at 375 px: exactly
 * one h1 and a document title naming the page, no error state, no serious or critical axe
 * finding, no sideways scroll on the phone, no CSP violation, no request off 127.0.0.1, no console
 * error; and from the keyboard, the first Tab reaches the skip link, which moves focus to the
 * page's main region, and Tab reaches the main navigation. Also the not-found page, and each
 * kind's pages opened by the other kind (not found there too).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CUSTOMER_NAV, type NavLink, OPERATOR_NAV, pathOf, type Route } from "../../console/src/routes.js";
import {
  describeBrowser,
  launchBrowser,
  overflow,
  seriousAxeViolations,
  signInThroughForm,
  type WatchedContext,
  watchedContext,
} from "./browser.js";
import { ADMIN_TOKEN, startTestServer, type TestServer, waitForTask } from "./harness.js";
import { WebhookReceiver } from "./webhook-receiver.js";

type Kind = "customer" | "operator";
const NAV: Record<Kind, NavLink[]> = { customer: CUSTOMER_NAV, operator: OPERATOR_NAV };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
const TITLE_SUFFIX = " · Framegate console";

/** The routes a kind of session has pages for, in navigation order. */
const routesOf = (kind: Kind): Route["name"][] => [...new Set(NAV[kind].flatMap((link) => link.routes))];

async function createTask(t: TestServer, key: string, prompt: string): Promise<string> {
  const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
  if (res.status !== 202) throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.body.id as string;
}

/** Waits until the page has its h1 and no "Loading…" status left (the queries have settled). */
async function settled(page: Page): Promise<void> {
  await page.locator("h1").first().waitFor();
  await page
    .locator('[role="status"]', { hasText: /^Loading/ })
    .first()
    .waitFor({ state: "detached" });
}

/** Where keyboard focus is: "main", "nav", "skip", or a short description of the element. */
const FOCUS_SCRIPT = `(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "body";
  if (el.id === "main") return "main";
  if (el.closest('nav[aria-label="Main"]')) return "nav";
  if (el.classList.contains("skip")) return "skip";
  return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
})()`;
const focusOf = (page: Page) => page.evaluate(FOCUS_SCRIPT) as Promise<string>;

/**
 * The checks every page must pass, on a page freshly loaded at `path` (a full load, so the
 * keyboard starts from the top of the document).
 */
async function checkPage(page: Page, watched: WatchedContext, path: string, expectedH1?: string): Promise<void> {
  await page.setViewportSize(DESKTOP);
  await page.goto(path);
  await settled(page);
  const where = `${path}`;

  const h1s = await page.locator("h1").allTextContents();
  expect(h1s, `${where}: exactly one h1`).toHaveLength(1);
  if (expectedH1) expect(h1s[0], where).toBe(expectedH1);
  const title = await page.title();
  expect(title, `${where}: a title naming the page`).toMatch(new RegExp(`^\\S.*${TITLE_SUFFIX}$`));
  expect(await page.getByRole("alert").count(), `${where}: no error state`).toBe(0);
  expect(await seriousAxeViolations(page), `${where}: axe`).toEqual([]);

  // Keyboard, from the top of the freshly loaded document: the first Tab lands on the skip link,
  // and a few more reach the main navigation (past the brand, no keyboard trap before it).
  await page.keyboard.press("Tab");
  expect(await focusOf(page), `${where}: first Tab`).toBe("skip");
  let reached = false;
  for (let i = 0; i < 5 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = (await focusOf(page)) === "nav";
  }
  expect(reached, `${where}: Tab reaches the main navigation`).toBe(true);
  // Following the skip link puts focus on the main region.
  await page.locator("a.skip").focus();
  await page.keyboard.press("Enter");
  await expect.poll(() => focusOf(page), { message: `${where}: the skip link moves focus` }).toBe("main");

  // A phone: nothing wider than the screen, and still no serious axe finding (the layout changes).
  await page.setViewportSize(PHONE);
  await settled(page);
  expect(await overflow(page), `${where}: sideways scroll at 375 px`).toBe(0);
  expect(await seriousAxeViolations(page), `${where}: axe at 375 px`).toEqual([]);

  expect(watched.problems, where).toEqual({
    consoleErrors: [],
    pageErrors: [],
    cspViolations: [],
    offHostRequests: [],
  });
}

describeBrowser("every console page in Chromium", () => {
  let t: TestServer;
  let browser: Browser;
  let receiver: WebhookReceiver;
  /** Ids for the item routes: every id listed is visited. */
  const ids: Partial<Record<Route["name"], string[]>> = {};
  let aliceKey = "";

  beforeAll(async () => {
    [t, browser, receiver] = await Promise.all([
      startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true", RATE_LIMIT_READ_PER_MIN: "0" }),
      launchBrowser(),
      WebhookReceiver.start(),
    ]);
    const [alice, bob] = await Promise.all([t.createAccount(1000), t.createAccount(500)]);
    aliceKey = alice.key;
    const endpoint = await t.request("/api/v1/webhooks", {
      key: alice.key,
      json: {
        name: "pages test",
        url: receiver.at("/hook"),
        event_types: ["generation.succeeded", "generation.failed"],
      },
    });
    if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${endpoint.status} ${endpoint.text}`);
    const extraKey = await t.request("/api/v1/keys", {
      key: alice.key,
      json: { name: "second key", scopes: ["generations:read"] },
    });
    if (extraKey.status !== 201) throw new Error(`api key: ${extraKey.status} ${extraKey.text}`);
    const [succeeded, failed, bobs] = await Promise.all([
      createTask(t, alice.key, "a lighthouse at dusk"),
      createTask(t, alice.key, "a storm at sea [sim:fail]"),
      createTask(t, bob.key, "someone else's harbour"),
    ]);
    await Promise.all([
      waitForTask(t, alice.key, succeeded),
      waitForTask(t, alice.key, failed),
      waitForTask(t, bob.key, bobs),
    ]);
    // Both events delivered, so the endpoint's page has deliveries to show.
    await receiver.waitUntil((r) => r.acknowledged().length >= 2, 60_000, "two webhook deliveries");
    ids.generation = [succeeded, failed];
    ids.webhook = [endpoint.body.id as string];
    ids.task = [succeeded, failed];
    ids.account = [alice.accountId, bob.accountId];
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
  });

  /** Every path of a kind's pages: one per page, one per id for an item's page. */
  const pathsOf = (kind: Kind): string[] =>
    routesOf(kind).flatMap((name) => {
      try {
        return [pathOf(name)];
      } catch {
        const list = ids[name];
        if (!list?.length) throw new Error(`the route ${name} needs an id from this test's data: add one`);
        return list.map((id) => pathOf(name, id));
      }
    });

  for (const kind of ["customer", "operator"] as const) {
    it(`${kind}: every page passes axe, CSP, keyboard, one h1, a title and 375 px`, async () => {
      const watched = await watchedContext(browser, { baseURL: t.url, viewport: DESKTOP });
      const page = await watched.context.newPage();
      await signInThroughForm(page, kind, kind === "operator" ? ADMIN_TOKEN : aliceKey);
      watched.clear();
      const paths = pathsOf(kind);
      expect(paths.length).toBeGreaterThanOrEqual(NAV[kind].length);
      for (const path of paths) await checkPage(page, watched, path);

      // An unknown path, and every page of the other kind (that are not pages of this one).
      await checkPage(page, watched, "/console/no-such-page", "Page not found");
      const other: Kind = kind === "customer" ? "operator" : "customer";
      const mine = new Set(routesOf(kind));
      for (const name of routesOf(other).filter((r) => !mine.has(r))) {
        const path = ids[name] ? pathOf(name, ids[name]?.[0]) : pathOf(name);
        await checkPage(page, watched, path, "Page not found");
      }
      await watched.context.close();
    }, 600_000);
  }

  it("the sign-in page passes the same checks, signed out (no error logged for the session probe)", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: DESKTOP });
    const page = await watched.context.newPage();
    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport);
      await page.goto("/console/generations");
      await page.getByLabel("API key").waitFor();
      expect(await page.locator("h1").count()).toBe(1);
      expect(await page.title()).toMatch(/\S/);
      expect(await seriousAxeViolations(page)).toEqual([]);
      expect(await overflow(page)).toBe(0);
    }
    expect(watched.problems).toEqual({ consoleErrors: [], pageErrors: [], cspViolations: [], offHostRequests: [] });
    await watched.context.close();
  }, 120_000);
});
