/**
 * The operator's pages of the web console in headless Chromium, driven as an operator would:
 * sign in with the admin token, read the System page (queue and providers), create an account
 * with initial credits, grant and debit credits (the balance follows; a debit below zero is
 * refused plainly and changes nothing), set a limit, create and revoke a key, find another
 * account's failed task by filtering the task list by account and status (with the refunds of
 * the filtered set), and open it; export an account's data and delete the account (its key is
 * refused at once, the list marks it). Every page visited: no serious or critical axe finding, no
 * sideways scroll at 375 px, no CSP violation, no request off 127.0.0.1, no console error. And a
 * customer's session cookie does not open /admin/v1 (401).
 */
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
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

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };

/** Waits until the page has its h1 and no "Loading…" status left. */
async function settled(page: Page): Promise<void> {
  await page.locator("h1").first().waitFor();
  await page
    .locator('[role="status"]', { hasText: /^Loading/ })
    .first()
    .waitFor({ state: "detached" });
}

/** axe on the desktop and at 375 px (where the page must not scroll sideways), then back. */
async function checkHere(page: Page, where: string): Promise<void> {
  await settled(page);
  expect(await seriousAxeViolations(page), `${where}: axe`).toEqual([]);
  await page.setViewportSize(PHONE);
  await settled(page);
  expect(await overflow(page), `${where}: sideways scroll at 375 px`).toBe(0);
  expect(await seriousAxeViolations(page), `${where}: axe at 375 px`).toEqual([]);
  await page.setViewportSize(DESKTOP);
}

function expectNoProblems(watched: WatchedContext, where: string) {
  expect(watched.problems, where).toEqual({
    consoleErrors: [],
    pageErrors: [],
    cspViolations: [],
    offHostRequests: [],
  });
}

describeBrowser("the operator's console pages in Chromium", () => {
  let t: TestServer;
  let browser: Browser;
  const alice = { accountId: "", key: "" };
  const bob = { accountId: "", key: "" };
  let bobsFailed = "";

  beforeAll(async () => {
    [t, browser] = await Promise.all([
      startTestServer({ RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_CREATE_PER_MIN: "0" }),
      launchBrowser(),
    ]);
    Object.assign(alice, await t.createAccount(1000));
    Object.assign(bob, await t.createAccount(1000));
    const create = async (who: typeof alice, prompt: string) => {
      const res = await t.request("/api/v1/generations", { key: who.key, json: { model: "kling-2-6", prompt } });
      if (res.status !== 202) throw new Error(`create failed: ${res.status} ${res.text}`);
      return res.body.id as string;
    };
    const tasks = await Promise.all([
      create(alice, "alice's lighthouse"),
      create(alice, "alice's storm [sim:fail]"),
      create(bob, "bob's harbour"),
      create(bob, "bob's shipwreck [sim:fail]"),
    ]);
    const owners = [alice, alice, bob, bob];
    await Promise.all(tasks.map((id, i) => waitForTask(t, (owners[i] as typeof alice).key, id)));
    bobsFailed = tasks[3] as string;
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it("an operator runs accounts, credits, limits, keys and tasks from the console", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: DESKTOP });
    const page = await watched.context.newPage();

    // Sign in on the Operator tab; the start page is System.
    await signInThroughForm(page, "operator", ADMIN_TOKEN);
    await page.getByRole("heading", { level: 1, name: "System" }).waitFor();
    await settled(page);
    const queue = page.getByRole("region", { name: "Jobs per class" });
    await expect.poll(() => queue.getByRole("rowheader").allTextContents()).toContain("generation");
    const providers = page.getByRole("region", { name: "Providers: circuit, error rates and concurrency" });
    const simulated = providers.getByRole("row").filter({ hasText: "simulated" });
    expect(await simulated.count()).toBe(1);
    // Two of the four tasks failed for a provider reason; the simulator has no cap.
    expect(await simulated.textContent()).toContain("2 of 4 (50%)");
    expect(await simulated.textContent()).toContain("0 / no cap");
    await checkHere(page, "system");

    // Accounts: a page of 50, newest first, and "Load more" for the rest (here 55 in all).
    for (let i = 0; i < 53; i++) await t.createAccount(0);
    await page.getByRole("link", { name: "Accounts" }).click();
    await page.getByRole("heading", { level: 1, name: "Accounts" }).waitFor();
    await checkHere(page, "accounts");
    const accountRows = page.getByRole("table", { name: "Accounts" }).locator("tbody tr");
    await expect.poll(() => accountRows.count()).toBe(50);
    await page.getByRole("button", { name: "Load more" }).click();
    await expect.poll(() => accountRows.count()).toBe(55);
    expect(await page.getByRole("button", { name: "Load more" }).count()).toBe(0);
    // Alice, made first, comes last.
    expect(await accountRows.last().textContent()).toContain(alice.accountId);

    // Create one with initial credits; its page opens.
    await page.getByLabel("Name").fill("Console Co");
    await page.getByLabel("Initial credits").fill("100");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { level: 1, name: "Console Co" }).waitFor();
    const accountId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop() as string);
    expect(accountId).toMatch(/^acct_/);
    const balance = page.locator(".balance");
    await expect.poll(() => balance.textContent()).toBe("100 credits");
    await checkHere(page, "account");

    // Grant, then debit: the balance the page shows is the server's.
    await page.getByLabel("Amount (credits)").fill("250");
    await page.getByLabel("Reason").fill("welcome bonus");
    await page.getByRole("button", { name: "Grant" }).click();
    await expect.poll(() => balance.textContent()).toBe("350 credits");
    await page.getByLabel("Amount (credits)").fill("50");
    await page.getByRole("button", { name: "Debit" }).click();
    await expect.poll(() => balance.textContent()).toBe("300 credits");
    // A debit below zero: refused in words, nothing changes (here and on the server).
    await page.getByLabel("Amount (credits)").fill("1000");
    await page.getByRole("button", { name: "Debit" }).click();
    const refusal = page.getByRole("alert").filter({ hasText: "Refused" });
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/below 0/);
    // The refusal's 402 is the one console error this step may log.
    watched.problems.consoleErrors = watched.problems.consoleErrors.filter((e) => !/\b402\b/.test(e));
    expect(await balance.textContent()).toBe("300 credits");
    const stored = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(stored.body.credits).toBe(300);
    expect(stored.body.ledger.ledger_sum).toBe(300);

    // A limit: 3 running tasks, saved on the server.
    await page.getByLabel("Running tasks").fill("3");
    await page.getByRole("button", { name: "Save limits" }).click();
    await page.getByRole("status").filter({ hasText: "Limits saved." }).waitFor();
    expect((await t.admin(`/admin/v1/accounts/${accountId}`)).body.max_running_tasks).toBe(3);
    await expect.poll(() => page.getByLabel("Running tasks").inputValue()).toBe("3");

    // A key: shown once, then revoked after a confirmation.
    await page.getByLabel("Name (optional)").fill("from the console");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = page.locator(".secret");
    await secret.waitFor();
    expect(await secret.textContent()).toMatch(/^rvya_sk_/);
    const keys = page.getByRole("region", { name: "API keys of this account" });
    await keys.getByRole("button", { name: /^Revoke key/ }).click();
    await keys.getByRole("button", { name: /^Confirm revoking/ }).click();
    await expect.poll(() => keys.textContent()).toMatch(/Revoked/);
    const listed = await t.admin(`/admin/v1/accounts/${accountId}/keys`);
    expect(listed.body.data[0].revoked_at).not.toBeNull();
    await checkHere(page, "account after changes");

    // Tasks: filter by bob's account and failed; one row, the refunds of that set; open it.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
    await page.getByRole("heading", { level: 1, name: "Tasks" }).waitFor();
    await settled(page);
    await expect
      .poll(() => page.getByRole("status").filter({ hasText: "Refunds" }).textContent())
      .toMatch(/over all tasks: 2 tasks/);
    await page.getByLabel("Account ID").fill(bob.accountId);
    await page.getByLabel("Status").selectOption("failed");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.waitForURL(/account_id=.*status=failed/);
    const table = page.getByRole("region", { name: "Tasks" });
    await expect.poll(() => table.getByRole("rowheader").allTextContents()).toEqual([bobsFailed]);
    const refunded = (await t.admin(`/admin/v1/accounts/${bob.accountId}`)).body.ledger.refunded as number;
    expect(refunded).toBeGreaterThan(0);
    expect(await page.getByRole("status").filter({ hasText: "Refunds" }).textContent()).toBe(
      `Refunds for these filters: 1 task, ${refunded} credits.`,
    );
    await checkHere(page, "tasks, filtered");
    await table.getByRole("link", { name: bobsFailed }).click();
    await page.getByRole("heading", { level: 1, name: bobsFailed }).waitFor();
    await settled(page);
    expect(await page.getByRole("region", { name: "Failure" }).textContent()).toContain("provider_error");
    expect(await page.getByRole("link", { name: `Account ${bob.accountId}` }).count()).toBe(1);
    expect(await page.getByRole("region", { name: "Upstream" }).textContent()).toContain("simulated");
    await checkHere(page, "task");

    expectNoProblems(watched, "operator pages");
    await watched.context.close();
  }, 600_000);

  it("an operator exports an account's data and deletes the account, whose key stops at once", async () => {
    const leaving = await t.createAccount(500);
    const task = (
      await t.request("/api/v1/generations", { key: leaving.key, json: { model: "kling-2-6", prompt: "a farewell" } })
    ).body.id as string;
    await waitForTask(t, leaving.key, task);

    const watched = await watchedContext(browser, { baseURL: t.url, viewport: DESKTOP });
    const page = await watched.context.newPage();
    await signInThroughForm(page, "operator", ADMIN_TOKEN);
    await page.getByRole("heading", { level: 1, name: "System" }).waitFor();
    await page.goto(`/console/accounts/${leaving.accountId}`);
    await page.getByRole("region", { name: "Export and delete" }).waitFor();
    await checkHere(page, "account before deletion");

    // The export: one JSON document with the account, its task and its key, and no secret.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Export the account's data" }).click(),
    ]);
    const text = readFileSync(await download.path(), "utf8");
    const exported = JSON.parse(text);
    expect(exported.object).toBe("account_export");
    expect(exported.account.id).toBe(leaving.accountId);
    expect(exported.tasks.map((x: { task: { id: string } }) => x.task.id)).toContain(task);
    expect(exported.api_keys.length).toBeGreaterThan(0);
    expect(text).not.toContain(leaving.key);

    // Delete: asked first (Keep backs out), then done; the page says what it did and what stays.
    await page.getByRole("button", { name: "Delete the account…" }).click();
    await page.getByRole("button", { name: "Keep" }).click();
    expect((await t.request(`/api/v1/credits`, { key: leaving.key })).status).toBe(200);
    await page.getByRole("button", { name: "Delete the account…" }).click();
    await page.getByRole("button", { name: "Delete the account", exact: true }).click();
    await page
      .getByRole("status")
      .filter({ hasText: /^Deleted: 1 keys/ })
      .waitFor();
    await page.getByText(/^Deleted on /).waitFor();
    expect(await page.getByRole("button", { name: "Grant" }).count()).toBe(0);
    expect((await t.request(`/api/v1/credits`, { key: leaving.key })).status).toBe(401);
    await checkHere(page, "deleted account");

    // The list marks it.
    await page.getByRole("link", { name: "Accounts" }).click();
    const row = page.getByRole("row").filter({ hasText: leaving.accountId });
    await expect.poll(() => row.textContent()).toContain("Deleted");
    expectNoProblems(watched, "export and delete");
    await watched.context.close();
  }, 300_000);

  it("a customer's session does not open /admin/v1 (401)", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: DESKTOP });
    const page = await watched.context.newPage();
    await page.goto("/console");
    await page.getByLabel("API key").fill(alice.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Main" }).waitFor();
    // The context's request API sends the page's cookies (the session), as the page's fetch would.
    for (const path of ["/admin/v1/stats", "/admin/v1/tasks", `/admin/v1/accounts/${alice.accountId}`]) {
      const res = await watched.context.request.get(path);
      expect(res.status(), path).toBe(401);
    }
    // And the operator's pages are not pages of a customer's console.
    await page.goto("/console/tasks");
    await page.getByRole("heading", { level: 1, name: "Page not found" }).waitFor();
    expectNoProblems(watched, "customer");
    await watched.context.close();
  }, 120_000);
});
