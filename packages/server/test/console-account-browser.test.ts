/**
 * The customer's account pages of the web console in real headless Chromium: API keys (a key's
 * secret shown once, then only its prefix; revoked, it is refused by the API; revoking the
 * session's own key signs the console out), webhooks (an endpoint on a loopback receiver, a test
 * event whose delivery shows in the log, redelivered), and the ledger (type filter in the URL, CSV
 * export of every page compared with the API's entries). A key without the pages' scopes gets an
 * explanation. Every page: no CSP violation, no request off 127.0.0.1, no console error, no
 * serious or critical axe finding, and no sideways scroll at 375 px.
 */
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  describeBrowser,
  expectAccessible,
  expectClean,
  launchBrowser,
  overflow,
  type WatchedContext,
  watchedContext,
} from "./browser.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { WebhookReceiver } from "./webhook-receiver.js";

/** A grant reason with the characters CSV must quote (comma, quote) and one a spreadsheet would run. */
const AWKWARD_REASON = 'Goodwill, for "the outage"';
const FORMULA_REASON = "=1+1 bonus";

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto("/console");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

/** RFC 4180 reading of the export (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
  }
  if (field || row.length) throw new Error("the CSV does not end with CRLF");
  return rows;
}

/** Every ledger entry through the API (Bearer), newest first, optionally of some types. */
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON entries
async function apiLedger(t: TestServer, key: string, type?: string): Promise<any[]> {
  const all = [];
  let after: string | undefined;
  for (;;) {
    const qs = new URLSearchParams({ limit: "100" });
    if (type) qs.set("type", type);
    if (after) qs.set("starting_after", after);
    const res = await t.request(`/api/v1/credits/ledger?${qs}`, { key });
    expect(res.status).toBe(200);
    all.push(...res.body.data);
    if (!res.body.has_more) return all;
    after = res.body.data[res.body.data.length - 1].id;
  }
}

describeBrowser("web console: API keys, webhooks and ledger in Chromium", () => {
  let t: TestServer;
  let browser: Browser;
  let receiver: WebhookReceiver;
  let alice: { accountId: string; key: string; keyId: string };

  beforeAll(async () => {
    [t, browser, receiver] = await Promise.all([
      // Loopback webhook URLs are refused unless insecure URLs are allowed (local development).
      startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true" }),
      launchBrowser(),
      WebhookReceiver.start(),
    ]);
    alice = await t.createAccount(1000);
    const task = await t.request("/api/v1/generations", {
      key: alice.key,
      json: { model: "kling-2-6", prompt: "a ledger entry" },
    });
    expect(task.status).toBe(202);
    await waitForTask(t, alice.key, task.body.id);
    for (const reason of [AWKWARD_REASON, FORMULA_REASON]) {
      const grant = await t.admin(`/admin/v1/accounts/${alice.accountId}/credits`, { json: { amount: 5, reason } });
      expect(grant.status).toBeLessThan(300);
    }
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
  });

  it("creates a key whose secret is shown once, then revokes it, and the API refuses it", async () => {
    const watched: WatchedContext = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, alice.key);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API keys" }).click();
    await page.getByRole("heading", { name: "API keys", level: 1 }).waitFor();
    await page.getByRole("heading", { name: "The account's keys" }).waitFor();
    await expectAccessible(page);

    await page.getByLabel("Name", { exact: true }).fill("ci-bot");
    // The API's default is offered (the caller's scopes without keys:manage); narrow it further.
    expect(await page.getByLabel("keys:manage").isChecked()).toBe(false);
    await page.getByLabel("files:create").uncheck();
    // Valid through the chosen day (UTC), a year from now.
    const day = new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel(/^Expires/).fill(day);
    await page.getByRole("button", { name: "Create key" }).click();
    const secretField = page.getByLabel("API key", { exact: true });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^rvya_sk_/);
    await expect.poll(() => page.getByRole("heading", { name: /New key/ }).isVisible()).toBe(true);
    expect(await page.getByText("only time it is shown").count()).toBe(1);
    await watched.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: t.url });
    await page.getByRole("button", { name: "Copy" }).click();
    await page.getByText("Copied to the clipboard.").waitFor();
    expect(await page.evaluate("navigator.clipboard.readText()")).toBe(secret);
    await expectAccessible(page);

    // The secret works, with the scopes chosen.
    const created = (await t.request("/api/v1/keys", { key: alice.key })).body.data.find(
      (k: { name: string }) => k.name === "ci-bot",
    );
    expect(created.scopes).not.toContain("files:create");
    expect(created.scopes).not.toContain("keys:manage");
    expect(created.scopes).toContain("generations:read");
    expect(created.expires_at).toBe(`${day}T23:59:59.000Z`);
    expect((await t.request("/api/v1/generations", { key: secret })).status).toBe(200);

    // Once stored and reloaded, only the prefix is left.
    await page.getByRole("button", { name: "I have stored it" }).click();
    await page.reload();
    const item = page.locator("li.item", { hasText: "ci-bot" });
    await item.waitFor();
    expect(await item.textContent()).toContain(created.prefix);
    expect(await page.content()).not.toContain(secret);

    // Revoke, confirmed.
    await item.getByRole("button", { name: "Revoke…" }).click();
    await item.getByRole("button", { name: "Revoke key" }).click();
    await item.locator(".badge", { hasText: "Revoked" }).waitFor();
    const refused = await t.request("/api/v1/generations", { key: secret });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("api_key_revoked");
    await expectAccessible(page);
    expectClean(watched.problems);
    await watched.context.close();
  }, 180_000);

  it("revoking the key the session signed in with explains it first, then signs the console out", async () => {
    const minted = await t.request("/api/v1/keys", {
      key: alice.key,
      json: { name: "console-self", scopes: ["keys:manage", "credits:read", "generations:read"] },
    });
    expect(minted.status).toBe(201);
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, minted.body.key);
    await page.goto("/console/keys");
    const item = page.locator("li.item", { hasText: "console-self" });
    await item.getByText("This session's key").waitFor();
    await item.getByRole("button", { name: "Revoke…" }).click();
    await item.getByText("revoking it signs you out").waitFor();
    await expectAccessible(page);
    await item.getByRole("button", { name: "Revoke key" }).click();
    await page.getByLabel("API key").waitFor();
    expect((await t.request("/api/v1/credits", { key: minted.body.key })).status).toBe(401);
    expectClean(watched.problems);
    await watched.context.close();
  }, 120_000);

  it("registers a webhook endpoint, sends a test event that shows as delivered, and redelivers it", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, alice.key);
    await page.goto("/console/webhooks");
    await page.getByRole("heading", { name: "Endpoints" }).waitFor();
    await expectAccessible(page);

    await page.getByLabel("URL").fill(receiver.at("/hook"));
    await page.getByLabel("Name (optional)").fill("local receiver");
    await page.getByRole("button", { name: "Register endpoint" }).click();
    const secret = await page.getByLabel("Signing secret").inputValue();
    expect(secret).toMatch(/^whsec_/);
    await expectAccessible(page);

    await page.getByRole("link", { name: "endpoint page" }).click();
    await page.getByRole("heading", { name: "local receiver", level: 1 }).waitFor();
    await page.getByText("No deliveries yet").waitFor();
    await expectAccessible(page);

    await page.getByRole("button", { name: "Send test event" }).click();
    // The log re-reads itself after a test: the delivery appears without a reload.
    const log = page.locator("table.deliveries tbody tr");
    await expect.poll(() => log.count(), { timeout: 30_000 }).toBe(1);
    await log.first().getByText("Delivered").waitFor();
    expect(await log.first().textContent()).toContain("200");
    await receiver.waitUntil((r) => r.requests.length === 1, 30_000, "the test event");
    const eventId = receiver.requests[0]?.headers["webhook-id"];
    expect(eventId).toMatch(/^evt_/);
    expect(await log.first().textContent()).toContain(eventId);
    await expectAccessible(page);

    await log
      .first()
      .getByRole("button", { name: /Redeliver/ })
      .click();
    await receiver.waitUntil((r) => r.requests.length === 2, 30_000, "the redelivery");
    expect(receiver.requests[1]?.headers["webhook-id"]).toBe(eventId);
    await expect.poll(() => log.count(), { timeout: 30_000 }).toBe(2);
    expect(await page.locator("table.deliveries").getByText("Delivered").count()).toBe(2);

    // Pausing says why and since when; enabling again clears it.
    await page.getByRole("button", { name: "Pause endpoint" }).click();
    await page.getByText(/Disabled since .* by this account/).waitFor();
    await expectAccessible(page);
    await page.getByRole("button", { name: "Enable endpoint" }).click();
    await page.getByRole("button", { name: "Pause endpoint" }).waitFor();

    // Edit: a name typed before an event is ticked survives the re-render the tick causes.
    await page.getByLabel("Name (optional)").fill("renamed receiver");
    await page.getByLabel("generation.processing").check();
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("Saved.").waitFor();
    const saved = (await t.request("/api/v1/webhooks", { key: alice.key })).body.data[0];
    expect(saved.name).toBe("renamed receiver");
    expect(saved.event_types).toEqual(["generation.succeeded", "generation.failed", "generation.processing"]);
    await page.getByRole("heading", { name: "renamed receiver", level: 1 }).waitFor();
    expectClean(watched.problems);
    await watched.context.close();
  }, 180_000);

  it("deletes an endpoint after asking, and its page then says it is gone", async () => {
    const made = await t.request("/api/v1/webhooks", {
      key: alice.key,
      json: { name: "to delete", url: receiver.at("/gone") },
    });
    expect(made.status).toBe(201);
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, alice.key);
    await page.goto(`/console/webhooks/${made.body.id}`);
    await page.getByRole("heading", { name: "to delete", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Delete endpoint…" }).click();
    await page.getByText("This cannot be undone").waitFor();
    // "Keep" backs out without deleting.
    await page.getByRole("button", { name: "Keep" }).click();
    expect((await t.request(`/api/v1/webhooks/${made.body.id}`, { key: alice.key })).status).toBe(200);
    await page.getByRole("button", { name: "Delete endpoint…" }).click();
    await page.getByRole("button", { name: "Delete endpoint", exact: true }).click();
    await page.getByRole("heading", { name: "Webhooks", level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/console/webhooks");
    expect((await t.request(`/api/v1/webhooks/${made.body.id}`, { key: alice.key })).status).toBe(404);
    await page.goto(`/console/webhooks/${made.body.id}`);
    await page.getByText(`No webhook endpoint ${made.body.id} in this account`).waitFor();
    await expectAccessible(page);
    // The page's own read of the deleted endpoint is a 404.
    expectClean(watched.problems, (line) => /status of 404/.test(line) && line.includes(made.body.id));
    await watched.context.close();
  }, 120_000);

  it("lists the ledger with a type filter in the URL and exports it as CSV, whole and filtered", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, alice.key);
    await page.goto("/console/ledger");
    const rows = page.locator("table.ledger tbody tr");
    // A task's entries link to its page.
    const taskEntry = (await apiLedger(t, alice.key)).find((e) => e.task_id);
    await page.getByRole("link", { name: taskEntry.task_id }).first().waitFor();
    await expectAccessible(page);

    // More entries than one export request carries (100), so the export must walk pages.
    for (let i = 0; i < 105; i += 15) {
      await Promise.all(
        Array.from({ length: Math.min(15, 105 - i) }, (_, j) =>
          t.admin(`/admin/v1/accounts/${alice.accountId}/credits`, { json: { amount: 1, reason: `top-up ${i + j}` } }),
        ),
      );
    }
    const all = await apiLedger(t, alice.key);
    expect(all.length).toBeGreaterThan(100);
    await page.reload();
    await rows.first().waitFor();
    // 25 a page, newest first, and "Load more" adds the next 25.
    expect(await rows.count()).toBe(25);
    expect(await rows.first().textContent()).toContain(all[0].reason);
    await page.getByRole("button", { name: "Load more" }).click();
    await expect.poll(() => rows.count()).toBe(50);
    expect(await rows.nth(49).textContent()).toContain(all[49].reason);
    await expectAccessible(page);

    const exportCsv = async (button: string) => {
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: button }).click(),
      ]);
      const path = await download.path();
      return { name: download.suggestedFilename(), rows: parseCsv(readFileSync(path, "utf8")) };
    };
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON entries
    const asRows = (entries: any[]) =>
      entries.map((e) => [
        e.id,
        e.created_at,
        e.type,
        String(e.amount),
        String(e.balance_after),
        e.task_id ?? "",
        e.reason === FORMULA_REASON ? `'${e.reason}` : (e.reason ?? ""),
      ]);
    const header = ["id", "created_at", "type", "amount", "balance_after", "task_id", "reason"];

    const whole = await exportCsv("Export the whole ledger as CSV");
    expect(whole.name).toMatch(/^ledger-\d{4}-\d{2}-\d{2}\.csv$/);
    expect(whole.rows).toEqual([header, ...asRows(all)]);
    expect(whole.rows.some((r) => r[6] === AWKWARD_REASON)).toBe(true);

    // Filtered: grants only, in the URL, and the export follows the filter.
    await page.getByLabel("Grant", { exact: true }).check();
    await page.getByRole("button", { name: "Apply filter" }).click();
    await expect.poll(() => new URL(page.url()).search).toBe("?type=grant");
    const grants = await apiLedger(t, alice.key, "grant");
    await expect.poll(() => rows.count()).toBe(Math.min(25, grants.length));
    const filtered = await exportCsv("Export these entries as CSV");
    expect(filtered.name).toMatch(/^ledger-grant-\d{4}-\d{2}-\d{2}\.csv$/);
    expect(filtered.rows).toEqual([header, ...asRows(grants)]);
    await page.reload();
    expect(await page.getByLabel("Grant", { exact: true }).isChecked()).toBe(true);
    await expect.poll(() => rows.count()).toBe(Math.min(25, grants.length));
    await expectAccessible(page);
    expectClean(watched.problems);
    await watched.context.close();
  }, 180_000);

  it("explains a missing scope instead of failing", async () => {
    const narrow = await t.request("/api/v1/keys", { key: alice.key, json: { scopes: ["generations:read"] } });
    expect(narrow.status).toBe(201);
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await signIn(page, narrow.body.key);
    for (const [path, scope] of [
      ["/console/keys", "keys:manage"],
      ["/console/webhooks", "webhooks:manage"],
      ["/console/ledger", "credits:read"],
    ] as const) {
      await page.goto(path);
      await page.getByText(`does not have the ${scope} scope`).waitFor();
      expect(await page.getByRole("alert").count()).toBe(0);
      await expectAccessible(page);
    }
    // The overview, where sign-in lands, asks for the balance and the generations: this key may
    // read the generations only, and the browser logs the 403s of the rest.
    expectClean(watched.problems, (line) => /status of 403/.test(line) && /\/api\/v1\/(credits|usage)\b/.test(line));
    await watched.context.close();
  }, 120_000);

  it("fits a 375 px wide phone screen on every account page", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: { width: 375, height: 740 } });
    const page = await watched.context.newPage();
    await signIn(page, alice.key);
    const endpoint = (await t.request("/api/v1/webhooks", { key: alice.key })).body.data.find(
      (e: { name: string }) => e.name === "renamed receiver",
    );
    for (const [path, ready] of [
      ["/console/keys", "The account's keys"],
      ["/console/webhooks", "Endpoints"],
      [`/console/webhooks/${endpoint.id}`, "Delivery log"],
      ["/console/ledger", "Ledger"],
    ] as const) {
      await page.goto(path);
      await page.getByRole("heading", { name: ready }).first().waitFor();
      await page.locator("[role=status]", { hasText: "Loading" }).waitFor({ state: "detached" });
      expect(await overflow(page), path).toBe(0);
      await expectAccessible(page);
    }
    expectClean(watched.problems);
    await watched.context.close();
  }, 120_000);
});
