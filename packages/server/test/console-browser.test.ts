/**
 * The web console in real headless Chromium, over the server's own /console and session routes:
 * a customer signs in with an API key (an HttpOnly cookie page scripts cannot read, the key kept
 * nowhere in the browser), sees the balance, lists and opens generations, plays the video, cannot
 * read another account's task with the cookie, and signs out for good; an operator signs in with
 * the admin token. Every page: no CSP violation, no request off 127.0.0.1, no console error but
 * the refused sign-in's 401, no serious or critical axe finding; and it fits 375 px.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  describeBrowser,
  expectAccessible,
  expectClean,
  expectVideoPlays,
  launchBrowser,
  signInThroughForm,
  type WatchedContext,
  watchedContext,
} from "./browser.js";
import { ADMIN_TOKEN, startTestServer, type TestServer, waitForTask } from "./harness.js";

const COOKIE = "framegate_session";

/** Evaluated in the page (as text: the tests compile without the DOM's types). */
const statusOf = (path: string) => `fetch(${JSON.stringify(path)}).then((r) => r.status)`;

async function createTask(t: TestServer, key: string): Promise<string> {
  const res = await t.request("/api/v1/generations", {
    key,
    json: { model: "kling-2-6", prompt: "a lighthouse at dusk" },
  });
  if (res.status !== 202) throw new Error(`create failed: ${res.text}`);
  return res.body.id as string;
}

describeBrowser("web console in Chromium", () => {
  let t: TestServer;
  let browser: Browser;
  let alice: { accountId: string; key: string; task: string };
  let bobTask: string;

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestServer(), launchBrowser()]);
    const [a, b] = await Promise.all([t.createAccount(1000), t.createAccount(500)]);
    const [aliceTask, bob] = await Promise.all([createTask(t, a.key), createTask(t, b.key)]);
    await Promise.all([waitForTask(t, a.key, aliceTask), waitForTask(t, b.key, bob)]);
    alice = { accountId: a.accountId, key: a.key, task: aliceTask };
    bobTask = bob;
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it("a customer signs in with a key, sees the balance and the generations, plays a video, and signs out for good", async () => {
    const watched: WatchedContext = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await page.goto("/console");
    const secret = page.getByLabel("API key");
    await secret.waitFor();
    await expectAccessible(page);

    // A wrong key: said plainly, and no cookie.
    await secret.fill("rvya_sk_not_a_real_key_0000000000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("not valid");
    expect((await watched.context.cookies()).some((c) => c.name === COOKIE)).toBe(false);
    // The refused sign-in is the one error logged so far (the browser reports every 401 answer as
    // "Failed to load resource"); loading the console signed out logged none: the session probe
    // answers 200 null.
    expect(watched.problems.consoleErrors).toEqual([
      expect.stringMatching(/status of 401 \(Unauthorized\).*\/console\/api\/session\b/),
    ]);
    watched.clear();

    await secret.fill(alice.key);
    const signedIn = page.waitForResponse(
      (r) => new URL(r.url()).pathname === "/console/api/session" && r.request().method() === "POST",
    );
    await page.getByRole("button", { name: "Sign in" }).click();
    expect((await signedIn).status()).toBe(201);
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();

    // The session cookie: HttpOnly (page scripts cannot read it), SameSite=Strict; the key itself
    // is kept nowhere the page can reach.
    const cookie = (await watched.context.cookies()).find((c) => c.name === COOKIE);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(await page.evaluate("document.cookie")).not.toContain(COOKIE);
    const storage = (await page.evaluate("JSON.stringify([localStorage, sessionStorage])")) as string;
    expect(storage).not.toContain(alice.key);
    expect(await page.content()).not.toContain(alice.key);

    // The balance as the API states it.
    const credits = (await t.request("/api/v1/credits", { key: alice.key })).body.current_credits as number;
    await expect
      .poll(() => page.locator(".balance").textContent())
      .toBe(`${new Intl.NumberFormat("en-US").format(credits)} credits`);
    await expectAccessible(page);

    // The generations list has this account's task and not the other account's.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Generations" }).click();
    await page.getByRole("heading", { name: "Generations", level: 1 }).waitFor();
    const row = page.getByRole("link", { name: alice.task });
    await row.waitFor();
    expect(await page.getByText(bobTask).count()).toBe(0);
    await expectAccessible(page);

    // Its page: the video plays (the player's clock really advances).
    await row.click();
    await expectVideoPlays(page, `Video of ${alice.task}`);
    await expectAccessible(page);

    // The cookie reads this account's task and not another's (404, as with the other's key).
    expect(await page.evaluate(statusOf(`/api/v1/generations/${alice.task}`))).toBe(200);
    expect(await page.evaluate(statusOf(`/api/v1/generations/${bobTask}`))).toBe(404);
    expectClean({
      ...watched.problems,
      // The 404 just asked for.
      consoleErrors: watched.problems.consoleErrors.filter((l) => !l.includes(`/api/v1/generations/${bobTask}`)),
    });
    watched.clear();

    // Sign-out ends the session on the server: the cookie is gone, and a reload shows sign-in.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect((await watched.context.cookies()).some((c) => c.name === COOKIE)).toBe(false);
    await page.reload();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate(statusOf("/api/v1/credits"))).toBe(401);
    expectClean({
      ...watched.problems,
      consoleErrors: watched.problems.consoleErrors.filter((l) => !l.includes("/api/v1/credits")),
    });
    await watched.context.close();
  }, 240_000);

  it("fits a 375 px wide phone screen without sideways scrolling", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: { width: 375, height: 740 } });
    const page = await watched.context.newPage();
    const overflow = () => page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    await page.goto("/console");
    await page.getByLabel("API key").fill(alice.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(".balance").waitFor();
    expect(await overflow()).toBe(0);
    await page.goto("/console/generations");
    await page.getByRole("link", { name: alice.task }).waitFor();
    expect(await overflow()).toBe(0);
    await page.getByRole("link", { name: alice.task }).click();
    await page.getByLabel(`Video of ${alice.task}`).waitFor();
    expect(await overflow()).toBe(0);
    await expectAccessible(page);
    expectClean(watched.problems);
    await watched.context.close();
  });

  it("the cookie of a signed-out session is refused even when replayed", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await page.goto("/console");
    await page.getByLabel("API key").fill(alice.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    const cookie = (await watched.context.cookies()).find((c) => c.name === COOKIE);
    expect(cookie).toBeDefined();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    // Outside the browser, with the old cookie: the server revoked it.
    const replay = await t.request("/api/v1/credits", { headers: { cookie: `${COOKIE}=${cookie?.value}` } });
    expect(replay.status).toBe(401);
    expectClean(watched.problems);
    await watched.context.close();
  });

  it("an operator signs in with the admin token and reaches the admin API, not a customer's", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signInThroughForm(page, "operator", ADMIN_TOKEN);
    await page.getByRole("heading", { name: "System", level: 1 }).waitFor();
    const cookie = (await watched.context.cookies()).find((c) => c.name === COOKIE);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    expect(await page.evaluate(statusOf(`/admin/v1/accounts/${alice.accountId}`))).toBe(200);
    expect(await page.evaluate(statusOf("/api/v1/credits"))).toBe(401);
    await expectAccessible(page);
    expectClean({
      ...watched.problems,
      consoleErrors: watched.problems.consoleErrors.filter((l) => !l.includes("/api/v1/credits")),
    });
    await watched.context.close();
  });
});
