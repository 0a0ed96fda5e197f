/**
 * Secrets at rest (issue #12): without SIGNING_SECRET the generated signing secret lives in
 * DATA_DIR/secrets/signing_secret (0600, in a 0700 directory), never in the database, so a copy
 * of the database alone cannot forge media URLs or decrypt webhook secrets. An install from
 * before kept it in settings.signing_secret: a start moves it out without invalidating anything
 * it signed. Processes that run apart (`framegate api` / `worker`) need SIGNING_SECRET.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { signingSecretPath } from "../src/secrets/signing-secret.js";
import { startServer } from "../src/server.js";
import { setSettingOnce } from "../src/store/settings.js";
import { download, uploadFile } from "./files-helpers.js";
import { startTestServer, TEST_ENV, type TestServer } from "./harness.js";
import { dropTestDatabase, TEST_STORE, testStoreEnv } from "./test-store.js";
import { WebhookReceiver } from "./webhook-receiver.js";

let png: string;
const scratch = mkdtempSync(join(tmpdir(), "framegate-secret-fixtures-"));
beforeAll(async () => {
  png = join(scratch, "tiny.png");
  await sharp({ create: { width: 64, height: 48, channels: 3, background: "#2060c0" } })
    .png()
    .toFile(png);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Servers and directories a test made; closed and removed whatever the test's outcome. */
const servers: TestServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const t of servers.splice(0)) await t.close();
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  }
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-secret-"));
  dirs.push(dir);
  return dir;
}

async function start(dir: string, env: Record<string, string> = {}): Promise<TestServer> {
  const t = await startTestServer({ WORKER_CONCURRENCY: "0", ...env }, dir);
  servers.push(t);
  return t;
}

async function stop(t: TestServer): Promise<void> {
  servers.splice(servers.indexOf(t), 1);
  await t.close();
}

/** Uploads a small image; returns its signed media URL. */
async function uploadedUrl(t: TestServer): Promise<string> {
  const { key } = await t.createAccount(100);
  const res = await uploadFile(t, key, png, { kind: "image" });
  expect(res.status, res.text).toBe(201);
  expect((await download(res.body.url)).status).toBe(200);
  return res.body.url as string;
}

async function legacyRows(t: TestServer): Promise<string[]> {
  const rows = await t.server.store.db
    .selectFrom("settings")
    .select("value")
    .where("key", "=", "signing_secret")
    .execute();
  return rows.map((r) => r.value);
}

/** The same signed path and query, asked of another server (a restart listens on a new port). */
function on(t: TestServer, url: string): string {
  const { pathname, search } = new URL(url);
  return `${t.url}${pathname}${search}`;
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Every byte the SQLite store keeps on disk: the database file and its WAL, if any. */
function sqliteBytes(dir: string): Buffer {
  const files = readdirSync(dir).filter((name) => name.startsWith("framegate.db"));
  expect(files).toContain("framegate.db");
  return Buffer.concat(files.map((name) => readFileSync(join(dir, name))));
}

describe("the generated signing secret", () => {
  it("lives in DATA_DIR/secrets/signing_secret (0600 in a 0700 directory), not in the database", async () => {
    const dir = dataDir();
    const t = await start(dir);
    const url = await uploadedUrl(t);
    const path = signingSecretPath(dir);
    expect(path).toBe(join(dir, "secrets", "signing_secret"));
    const secret = readFileSync(path, "utf8").trim();
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(mode(path)).toBe(0o600);
    expect(mode(join(dir, "secrets"))).toBe(0o700);
    expect(readdirSync(join(dir, "secrets"))).toEqual(["signing_secret"]);

    expect(await legacyRows(t)).toEqual([]);
    const anyRow = await t.server.store.db.selectFrom("settings").select("key").where("value", "=", secret).execute();
    expect(anyRow).toEqual([]);
    await stop(t);
    if (TEST_STORE === "sqlite") {
      const bytes = sqliteBytes(dir);
      expect(bytes.includes(secret)).toBe(false);
      expect(bytes.includes(Buffer.from(secret, "base64url"))).toBe(false);
    }

    // The same secret on the next start: what it signed stays valid.
    const again = await start(dir);
    expect((await download(on(again, url))).status).toBe(200);
    expect(readFileSync(path, "utf8").trim()).toBe(secret);
    expect(await legacyRows(again)).toEqual([]);
  });

  it("moves an older install's secret out of the database on start, keeping its URLs and webhook secrets valid", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const dir = dataDir();
      const env = { WEBHOOK_ALLOW_INSECURE_URLS: "true" };
      const t = await start(dir, env);
      const url = await uploadedUrl(t);
      const { key } = await t.createAccount(0);
      const endpoint = await t.request("/api/v1/webhooks", { key, json: { url: receiver.url } });
      expect(endpoint.status, endpoint.text).toBe(201);
      const path = signingSecretPath(dir);
      const secret = readFileSync(path, "utf8").trim();
      // The state an older version left: the secret in settings, no secret file.
      await setSettingOnce(t.server.store.db, "signing_secret", secret);
      await stop(t);
      rmSync(join(dir, "secrets"), { recursive: true });

      const upgraded = await start(dir, { ...env, WORKER_CONCURRENCY: "1" });
      expect((await download(on(upgraded, url))).status).toBe(200);
      // The endpoint's stored secret still decrypts: a test event is signed with the original one.
      const sent = await upgraded.request(`/api/v1/webhooks/${endpoint.body.id}/test`, { key, method: "POST" });
      expect(sent.status, sent.text).toBe(202);
      await receiver.waitUntil((r) => r.requests.length > 0, 10_000, "the test event");
      const [delivery] = receiver.requests;
      expect(() =>
        new Webhook(endpoint.body.signing_secret).verify(delivery?.body ?? "", delivery?.headers ?? {}),
      ).not.toThrow();

      expect(await legacyRows(upgraded)).toEqual([]);
      expect(readFileSync(path, "utf8").trim()).toBe(secret);
      expect(mode(path)).toBe(0o600);
      expect(mode(join(dir, "secrets"))).toBe(0o700);
    } finally {
      await receiver.close();
    }
  });

  it("with SIGNING_SECRET set, deletes a database copy that equals it", async () => {
    const dir = dataDir();
    const secret = "operator-chosen-signing-secret-0123456789";
    const t = await start(dir, { SIGNING_SECRET: secret });
    const url = await uploadedUrl(t);
    await setSettingOnce(t.server.store.db, "signing_secret", secret);
    await stop(t);

    const again = await start(dir, { SIGNING_SECRET: secret });
    expect(await legacyRows(again)).toEqual([]);
    expect((await download(on(again, url))).status).toBe(200);
    expect(existsSync(signingSecretPath(dir))).toBe(false);
  });

  it("with SIGNING_SECRET set, moves a different database copy into the secret file before deleting it", async () => {
    const dir = dataDir();
    const explicit = { SIGNING_SECRET: "explicit-signing-secret-0123456789abcdef" };
    const generated = "formerly-generated-signing-secret-0123456789";
    // An older install that generated `generated`, since configured with an explicit secret:
    // the row may be the only copy of what signed its older URLs, so it is kept, in the file.
    const seeded = await start(dir, explicit);
    await setSettingOnce(seeded.server.store.db, "signing_secret", generated);
    await stop(seeded);
    expect(existsSync(signingSecretPath(dir))).toBe(false);

    const configured = await start(dir, explicit);
    expect(await legacyRows(configured)).toEqual([]);
    expect(readFileSync(signingSecretPath(dir), "utf8").trim()).toBe(generated);
    expect(mode(signingSecretPath(dir))).toBe(0o600);
  });

  it("refuses a secret file that was emptied or cut short", async () => {
    const dir = dataDir();
    mkdirSync(join(dir, "secrets"), { recursive: true, mode: 0o700 });
    writeFileSync(signingSecretPath(dir), "short\n", { mode: 0o600 });
    await expect(startTestServer({ WORKER_CONCURRENCY: "0" }, dir)).rejects.toThrow(/fewer than 32 characters/);
  });

  it.each(["api", "worker"] as const)("`framegate %s` refuses to start without SIGNING_SECRET", async (role) => {
    const dir = dataDir();
    const config = loadConfig({
      ...TEST_ENV,
      DATA_DIR: dir,
      PUBLIC_BASE_URL: "http://127.0.0.1:9",
      ...(await testStoreEnv(dir)),
    });
    const started = startServer(config, { role, log: createLogger("silent") });
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow(/SIGNING_SECRET: required by `framegate .*openssl rand/s);
    expect(existsSync(signingSecretPath(dir))).toBe(false);
  });
});
