/**
 * The console on S3 storage with redirect delivery (S3_MEDIA_DELIVERY=redirect, the default), in
 * real Chromium: a generation's /media URLs answer 302 to the bucket (an in-process s3rver on
 * another port, so another origin), and the player and the poster load from there under the
 * console's CSP, which names the bucket's origin (console/media-origin.ts). Before that, the CSP
 * blocked both.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeBrowser, expectVideoPlays, launchBrowser, seriousAxeViolations, watchedContext } from "./browser.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { startTestS3, type TestS3 } from "./s3-helpers.js";

describeBrowser("web console on S3 with media redirected to the bucket", () => {
  let s3: TestS3;
  let t: TestServer;
  let browser: Browser;
  let account: { key: string; task: string };

  beforeAll(async () => {
    s3 = await startTestS3();
    [t, browser] = await Promise.all([startTestServer(s3.env()), launchBrowser()]);
    const { key } = await t.createAccount(100);
    const created = await t.request("/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "a lighthouse in the fog" },
    });
    if (created.status !== 202) throw new Error(`create failed: ${created.text}`);
    await waitForTask(t, key, created.body.id);
    account = { key, task: created.body.id };
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await s3?.close();
  });

  it("plays the video and shows the poster from the bucket, with no CSP violation", async () => {
    const watched = await watchedContext(browser, { baseURL: t.url });
    const page = await watched.context.newPage();
    const fromBucket: string[] = [];
    page.on("response", (r) => {
      if (r.url().startsWith(`${s3.endpoint}/`) && r.status() < 400) fromBucket.push(r.url());
    });
    await page.goto("/console");
    await page.getByLabel("API key").fill(account.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Main" }).waitFor();
    await page.goto(`/console/generations/${account.task}`);
    await expectVideoPlays(page, `Video of ${account.task}`);
    // Both came from the bucket (after the server's redirect), not through the server.
    await expect.poll(() => fromBucket.some((u) => new URL(u).pathname.endsWith("/video.mp4"))).toBe(true);
    expect(fromBucket.some((u) => !new URL(u).pathname.endsWith("/video.mp4"))).toBe(true);
    expect(await seriousAxeViolations(page)).toEqual([]);
    expect(watched.problems).toEqual({ consoleErrors: [], pageErrors: [], cspViolations: [], offHostRequests: [] });
    await watched.context.close();
  }, 180_000);
});
