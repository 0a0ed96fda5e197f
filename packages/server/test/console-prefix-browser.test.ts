/**
 * The console behind a reverse proxy's path: PUBLIC_BASE_URL is http://127.0.0.1:<proxy>/gw, and
 * a small proxy on that port strips /gw before passing a request on, as nginx's
 * `location /gw/ { proxy_pass http://framegate/; }` does. The console's script, stylesheet and
 * icon, its links, the session endpoint and every API call must then start with /gw: the proxy
 * answers 404 to anything else and the test records it. Signed in as a customer, the overview,
 * the generations list, a task's page (its video plays) and a reload of a deep link all work, and
 * signing out passes the Origin check.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeBrowser, expectVideoPlays, launchBrowser, watchedContext } from "./browser.js";
import { request, startTestServer, type TestServer, waitForTask } from "./harness.js";

const PREFIX = "/gw";

/** A proxy that serves `target` under PREFIX and refuses (and records) every other path. */
async function startPrefixProxy(): Promise<{
  server: Server;
  port: number;
  target: { port: number };
  outside: string[];
}> {
  const target = { port: 0 };
  const outside: string[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url !== PREFIX && !url.startsWith(`${PREFIX}/`) && !url.startsWith(`${PREFIX}?`)) {
      outside.push(`${req.method} ${url}`);
      res.writeHead(404, { "content-type": "text/plain" }).end("outside the proxy's path");
      return;
    }
    const upstream = httpRequest(
      {
        host: "127.0.0.1",
        port: target.port,
        method: req.method,
        path: url.slice(PREFIX.length) || "/",
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, target, outside };
}

describeBrowser("web console behind a proxy's path (PUBLIC_BASE_URL with a path)", () => {
  let proxy: Awaited<ReturnType<typeof startPrefixProxy>>;
  let t: TestServer;
  let browser: Browser;
  let direct = "";
  let account: { key: string; task: string };

  beforeAll(async () => {
    proxy = await startPrefixProxy();
    [t, browser] = await Promise.all([
      startTestServer({ PUBLIC_BASE_URL: `http://127.0.0.1:${proxy.port}${PREFIX}` }),
      launchBrowser(),
    ]);
    const listening = t.server.httpServer?.address() as AddressInfo | undefined;
    if (!listening) throw new Error("the test server has no HTTP listener");
    proxy.target.port = listening.port;
    direct = `http://127.0.0.1:${proxy.target.port}`;
    const { key } = await t.createAccount(100);
    const created = await request(direct, "/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "a lighthouse behind a proxy" },
    });
    if (created.status !== 202) throw new Error(`create failed: ${created.text}`);
    await waitForTask({ request: (path, init) => request(direct, path, init) }, key, created.body.id);
    account = { key, task: created.body.id };
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await new Promise((resolve) => proxy?.server.close(resolve));
  });

  it("loads, links, calls the API and signs in and out under the prefix", async () => {
    const watched = await watchedContext(browser, { baseURL: `http://127.0.0.1:${proxy.port}` });
    const page = await watched.context.newPage();
    await page.goto(`${PREFIX}/console`);
    await page.getByLabel("API key").fill(account.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Generations" }).click();
    await page.getByRole("heading", { name: "Generations", level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe(`${PREFIX}/console/generations`);
    await page.getByRole("link", { name: account.task }).click();
    await expectVideoPlays(page, `Video of ${account.task}`);

    // A deep link survives a reload.
    await page.reload();
    await page.getByLabel(`Video of ${account.task}`).waitFor();
    expect(new URL(page.url()).pathname).toBe(`${PREFIX}/console/generations/${account.task}`);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect((await watched.context.cookies()).some((c) => c.name === "framegate_session")).toBe(false);

    expect(proxy.outside).toEqual([]);
    expect(watched.problems).toEqual({ consoleErrors: [], pageErrors: [], cspViolations: [], offHostRequests: [] });
    await watched.context.close();
  }, 180_000);
});
