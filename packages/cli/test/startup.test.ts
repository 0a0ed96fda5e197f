/**
 * What `framegate serve` tells a person at start-up: a busy port in one sentence (no stack), the
 * API reference in the banner, on a later start how to get a new key for the dev account, and
 * readable logs when asked for (LOG_FORMAT=pretty) with the key still printed only once.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ChildServer, freePort, killAll, sleep } from "../../server/test/process-helpers.js";
import { testStoreEnv } from "../../server/test/test-store.js";
import { runCli } from "./helpers.js";

const KEY_RE = /rvya_sk_[A-Za-z0-9]{20,}/g;

describe("framegate serve at start-up", () => {
  const children: ChildServer[] = [];
  const dirs: string[] = [];
  const tmp = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), `framegate-startup-${name}-`));
    dirs.push(dir);
    return dir;
  };
  afterAll(async () => {
    await killAll(children);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until the child's stdout matches, or fails with its output. */
  async function waitFor(child: ChildServer, pattern: RegExp) {
    const deadline = Date.now() + 15_000;
    while (!pattern.test(child.stdout)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${child.output()}`);
      await sleep(50);
    }
  }

  it("names a busy port and how to pick another, exits non-zero, prints no stack", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const server = new ChildServer(`http://127.0.0.1:${port}`, { DATA_DIR: tmp("busy"), PORT: String(port) });
      children.push(server);
      const exit = await server.waitExit(30_000);
      expect(exit.code).toBe(1);
      expect(server.stderr.trim()).toBe(
        `Cannot listen on HOST=127.0.0.1 PORT=${port}: the port is already in use (another Framegate, or another program). Stop it, or pick another port: PORT=${port + 1}.`,
      );
      expect(server.stderr).not.toMatch(/^\s+at /m);
    } finally {
      holder.close();
    }
  }, 60_000);

  it("links the API reference, and on a later start says how to mint a new dev key", async () => {
    const dataDir = tmp("restart");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { DATA_DIR: dataDir, PORT: String(port), BOOTSTRAP_DEV_ACCOUNT: "true", LOG_LEVEL: "info" };

    const first = new ChildServer(url, env);
    children.push(first);
    await first.waitReady();
    await waitFor(first, /\/api\/v1\/credits -H/);
    expect(first.stdout).toContain(`Framegate is running at ${url} (API reference: ${url}/docs).`);
    first.proc.kill("SIGTERM");
    expect(await first.waitExit(15_000)).toEqual({ code: 0, signal: null });

    const second = new ChildServer(url, env);
    children.push(second);
    await second.waitReady();
    await waitFor(second, /keys create --account/);
    const account = /The dev account \((acct_\w+)\) was created at the first start/.exec(second.stdout)?.[1];
    expect(account, second.output()).toBeDefined();
    expect(second.stdout).toContain(`Framegate is running at ${url} (API reference: ${url}/docs).`);
    expect(second.stdout).toContain(`    framegate keys create --account ${account} --name "dev key"\n`);
    expect(second.stdout.match(KEY_RE)).toBeNull();

    // The command it prints works, against the same data directory, while the server runs.
    // The server's store: its SQLite file, or its database on the PostgreSQL run.
    const made = await runCli(["keys", "create", "--account", account as string, "--name", "dev key", "--json"], {
      DATA_DIR: dataDir,
      ...(await testStoreEnv(dataDir)),
    });
    expect(made.code, made.stderr).toBe(0);
    const credits = await second.request("/api/v1/credits", { key: made.json.key });
    expect(credits.status).toBe(200);
    expect(credits.body).toEqual({ current_credits: 1000 });
    second.proc.kill("SIGTERM");
    expect(await second.waitExit(15_000)).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("says only where it runs when no dev account was made", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = new ChildServer(url, { DATA_DIR: tmp("nodev"), PORT: String(port), BOOTSTRAP_DEV_ACCOUNT: "false" });
    children.push(server);
    await server.waitReady();
    await waitFor(server, /Framegate is running at/);
    expect(server.stdout).toContain(`Framegate is running at ${url} (API reference: ${url}/docs).`);
    expect(server.stdout).not.toContain("keys create");
    server.proc.kill("SIGTERM");
    expect(await server.waitExit(15_000)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("logs readable lines with LOG_FORMAT=pretty, the key shown once, in the banner", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = new ChildServer(url, {
      DATA_DIR: tmp("pretty"),
      PORT: String(port),
      BOOTSTRAP_DEV_ACCOUNT: "true",
      LOG_LEVEL: "info",
      LOG_FORMAT: "pretty",
    });
    children.push(server);
    await server.waitReady();
    await waitFor(server, /\/api\/v1\/credits -H/);
    const key = (server.stdout.match(KEY_RE) ?? [])[0] as string;
    expect(key).toBeDefined();
    const used = await server.request("/api/v1/credits", { key });
    expect(used.status).toBe(200);
    await waitFor(server, /INFO: request .*"route":"\/api\/v1\/credits"/);
    expect(server.stdout).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: framegate listening \{/m);
    // Not one JSON log line, and the key only in the banner.
    for (const line of server.stdout.split("\n")) expect(line.startsWith('{"level"'), line).toBe(false);
    expect(server.stdout.match(KEY_RE)).toHaveLength(1);
    // The banner comes after the "listening" line, not in the middle of a log line.
    expect(server.stdout.indexOf("INFO: framegate listening")).toBeLessThan(
      server.stdout.indexOf("Framegate is running"),
    );
    server.proc.kill("SIGTERM");
    expect(await server.waitExit(15_000)).toEqual({ code: 0, signal: null });
  }, 60_000);
});
