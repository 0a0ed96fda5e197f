/**
 * The customer's playground in real headless Chromium: the prompt's counter refuses 1001
 * characters (and counts an emoji as one, as the server does); a reference image too small for
 * the model is refused in the browser with no upload sent, a valid one is previewed and uploaded;
 * the price and balance come from the API; a create clicked twice at once makes one task, whose
 * status the page follows live from the event stream (no reload, no polling) to the video, which
 * plays; the balance then shows the charge. A failed task shows its error and refund. The stream
 * failing falls back to polling; an API refusal is shown next to the form. Every page: no CSP
 * violation, no request off 127.0.0.1, no console error, no serious or critical axe finding, no
 * sideways scroll at 375 px.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  describeBrowser,
  expectAccessible,
  expectClean,
  expectVideoPlays,
  launchBrowser,
  overflow,
  type WatchedContext,
  watchedContext,
} from "./browser.js";
import { makeImage } from "./fixtures/media.js";
import { startTestServer, type TestServer } from "./harness.js";

const credits = (n: number) => `${new Intl.NumberFormat("en-US").format(n)} credits`;

async function openPlayground(page: Page, key: string): Promise<void> {
  await page.goto("/console");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Playground" }).click();
  await page.getByRole("heading", { name: "Playground", level: 1 }).waitFor();
  await page.getByLabel("Prompt").waitFor();
}

describeBrowser("the playground in Chromium", () => {
  let t: TestServer;
  let browser: Browser;
  let dir: string;
  let smallImage: string;
  let goodImage: string;
  let price: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-playground-"));
    [t, browser, smallImage, goodImage] = await Promise.all([
      startTestServer(),
      launchBrowser(),
      makeImage(dir, { format: "png", width: 200, height: 200 }),
      makeImage(dir, { format: "png", width: 640, height: 480, color: "#c04020" }),
    ]);
    const models = await t.request("/api/v1/models");
    price = models.body.data.find((m: { id: string }) => m.id === "kling-2-6").base_credits;
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("checks the prompt and the image before sending, creates once, follows the task live and plays the video", async () => {
    const alice = await t.createAccount(1000);
    const watched: WatchedContext = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    const uploads: string[] = [];
    const taskReads: string[] = [];
    const streams: string[] = [];
    page.on("request", (r) => {
      const { pathname } = new URL(r.url());
      if (pathname === "/api/v1/files" && r.method() === "POST") uploads.push(pathname);
      else if (/^\/api\/v1\/generations\/[^/]+\/events$/.test(pathname)) streams.push(pathname);
      else if (/^\/api\/v1\/generations\/[^/]+$/.test(pathname)) taskReads.push(pathname);
    });
    await openPlayground(page, alice.key);
    await expectAccessible(page);

    // The params come from the catalog, with its defaults.
    await expect.poll(() => page.getByRole("radio", { name: "5 s" }).isChecked()).toBe(true);
    await expect.poll(() => page.getByRole("radio", { name: "1:1" }).isChecked()).toBe(true);
    expect(await page.getByRole("checkbox", { name: "Generate audio" }).isChecked()).toBe(false);

    // The price as the catalog states it, and the balance as the API states it.
    await expect.poll(() => page.locator(".cost").textContent()).toContain(`Price: ${credits(price)}`);
    await expect.poll(() => page.locator(".playground-balance").textContent()).toBe(credits(1000));

    // 1001 characters are refused; 1000 are not, nor are 1000 emoji (2000 UTF-16 units).
    const prompt = page.getByLabel("Prompt");
    const create = page.getByRole("button", { name: "Create generation" });
    await prompt.fill("a".repeat(1001));
    await expect.poll(() => page.locator("#prompt-counter").textContent()).toBe("1001 / 1000 characters");
    await expect
      .poll(() => page.locator("#prompt-problem").textContent())
      .toBe("The prompt is 1 character over the limit of 1000.");
    expect(await prompt.getAttribute("aria-invalid")).toBe("true");
    expect(await create.isDisabled()).toBe(true);
    await prompt.fill("🎬".repeat(1000));
    await expect.poll(() => page.locator("#prompt-counter").textContent()).toBe("1000 / 1000 characters");
    expect(await create.isDisabled()).toBe(false);

    // An image below the model's 300 px minimum: refused in the browser, nothing uploaded.
    const picker = page.getByLabel("Reference image (optional)");
    await picker.setInputFiles(smallImage);
    await expect
      .poll(() => page.locator(".reference-field .notice.error").textContent())
      .toContain("The image is 200×200 px; both sides must be at least 300 px.");
    expect(await create.isDisabled()).toBe(true);
    expect(uploads).toEqual([]);
    await expectAccessible(page);

    // A valid image: previewed, then uploaded through the files API.
    await picker.setInputFiles(goodImage);
    await page.getByRole("img", { name: /^Preview of png-640x480.*, 640×480 px$/ }).waitFor();
    await expect.poll(() => page.locator(".reference-ok").textContent()).toMatch(/^Uploaded png-640x480/);
    expect(uploads).toHaveLength(1);

    await page.getByRole("checkbox", { name: "Generate audio" }).check();
    await page.getByRole("radio", { name: "16:9" }).check();
    await prompt.fill("a lighthouse at dusk [sim:delay=4]");

    // Two clicks in one go (before the page can disable the button) make one task.
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    await create.evaluate((button: unknown) => {
      const b = button as { click(): void };
      b.click();
      b.click();
    });
    const heading = page.locator("#live-task-heading span").first();
    await heading.waitFor();
    const id = (await heading.textContent()) ?? "";
    expect(id).toMatch(/^task_/);

    // The status changes on the page by itself, from the stream.
    const badge = page.locator(".live-task .badge").first();
    await expect.poll(() => badge.textContent(), { timeout: 60_000 }).toBe("Processing");
    await expect.poll(() => badge.textContent(), { timeout: 60_000 }).toBe("Succeeded");
    expect(navigations).toBe(0);
    expect(streams).toContain(`/api/v1/generations/${id}/events`);
    expect(taskReads).toEqual([]);
    expect(await page.locator(".live-task").textContent()).toContain("Followed live through the status stream.");

    // The video plays (the player's clock really advances), and the generation's page is linked.
    expect(await page.getByLabel(`Video of ${id}`).getAttribute("poster")).toBeTruthy();
    await expectVideoPlays(page, `Video of ${id}`);
    expect(await page.getByRole("link", { name: "Open the generation's page" }).getAttribute("href")).toBe(
      `/console/generations/${id}`,
    );

    // One task for the account, with the form's params and the uploaded reference; the balance
    // on the page is the API's, less the price.
    const list = await t.request("/api/v1/generations", { key: alice.key });
    expect(list.body.data.map((task: { id: string }) => task.id)).toEqual([id]);
    expect(list.body.data[0].params).toMatchObject({ duration: "5", sound: "true", aspect_ratio: "16:9" });
    expect(list.body.data[0].references).toHaveLength(1);
    const balance = (await t.request("/api/v1/credits", { key: alice.key })).body.current_credits;
    expect(balance).toBe(1000 - price);
    await expect.poll(() => page.locator(".playground-balance").textContent()).toBe(credits(balance));

    await expectAccessible(page);
    expectClean(watched.problems);
    await watched.context.close();
  }, 240_000);

  it("falls back to polling when the status stream cannot be had (at 375 px)", async () => {
    const bob = await t.createAccount(1000);
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: { width: 375, height: 740 } });
    const page = await watched.context.newPage();
    // Every stream request is refused as an overloaded server would refuse it.
    await page.route(/\/api\/v1\/generations\/[^/]+\/events$/, (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        headers: { "retry-after": "0" },
        body: JSON.stringify({ error: { code: "service_unavailable", message: "Too many streams.", requestId: "r" } }),
      }),
    );
    await openPlayground(page, bob.key);
    await page.getByLabel("Prompt").fill("a slow river [sim:delay=1]");
    await page.getByRole("button", { name: "Create generation" }).click();
    await expect
      .poll(() => page.locator(".live-task").textContent(), { timeout: 30_000 })
      .toContain("checking the task by polling instead");
    await expect
      .poll(() => page.locator(".live-task .badge").first().textContent(), { timeout: 60_000 })
      .toBe("Succeeded");
    await page.locator(".live-task video").waitFor();
    expect(await overflow(page)).toBe(0);
    // The browser logs each refused stream request; nothing else.
    expectClean(watched.problems, (line) => /status of 503/.test(line) && line.includes("/events"));
    await watched.context.close();
  }, 180_000);

  it("a failed generation shows its error and the refund, and the balance is whole again", async () => {
    const carol = await t.createAccount(1000);
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    await openPlayground(page, carol.key);
    await page.getByLabel("Prompt").fill("a storm at sea [sim:fail]");
    await page.getByRole("button", { name: "Create generation" }).click();
    await expect
      .poll(() => page.locator(".live-task .badge").first().textContent(), { timeout: 60_000 })
      .toBe("Failed");
    const outcome = page.locator(".live-task .notice.error");
    await expect.poll(() => outcome.textContent()).toContain("provider_error");
    expect(await outcome.textContent()).toContain(`${credits(price)} refunded to the balance.`);
    expect((await t.request("/api/v1/credits", { key: carol.key })).body.current_credits).toBe(1000);
    await expect.poll(() => page.locator(".playground-balance").textContent()).toBe(credits(1000));
    await expectAccessible(page);
    expectClean(watched.problems);
    await watched.context.close();
  }, 180_000);

  it("shows the API's refusal next to the form, and fits 375 px", async () => {
    const poor = await t.createAccount(10);
    const watched = await watchedContext(browser, { baseURL: t.url, viewport: { width: 375, height: 740 } });
    const page = await watched.context.newPage();
    await openPlayground(page, poor.key);
    await expect.poll(() => page.locator(".playground-balance").textContent()).toBe(credits(10));
    await expect.poll(() => page.locator(".cost .notice").textContent()).toContain("short of the price");
    await page.getByLabel("Prompt").fill("a".repeat(1001));
    await page.getByLabel("Reference image (optional)").setInputFiles(smallImage);
    await page.locator(".reference-field .notice.error").waitFor();
    expect(await overflow(page)).toBe(0);
    await expectAccessible(page);

    await page.getByLabel("Reference image (optional)").setInputFiles([]);
    await page.getByLabel("Prompt").fill("a harbour at night");
    await page.getByRole("button", { name: "Create generation" }).click();
    const alert = page.getByRole("alert");
    await expect.poll(() => alert.textContent()).toMatch(/^The generation was not created: .*credit/i);
    expect((await t.request("/api/v1/generations", { key: poor.key })).body.data).toEqual([]);
    expect(await overflow(page)).toBe(0);
    await expectAccessible(page);
    // The browser logs the 402 answer.
    expectClean(watched.problems, (line) => /status of 402/.test(line) && line.includes("/api/v1/generations"));
    await watched.context.close();
  }, 180_000);
});
