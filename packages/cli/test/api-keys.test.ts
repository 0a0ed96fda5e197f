/** `framegate api-keys list|create|revoke` end to end against a test server (no TTY). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../server/test/harness.js";
import { runCli } from "./helpers.js";

describe("framegate api-keys", () => {
  let t: TestServer;
  let key: string;
  let dir: string;

  const env = () => ({
    FRAMEGATE_BASE_URL: t.url,
    FRAMEGATE_API_KEY: key,
    FRAMEGATE_CONFIG: join(dir, "no-config", "config.json"),
  });

  beforeAll(async () => {
    t = await startTestServer();
    ({ key } = await t.createAccount(0));
    dir = mkdtempSync(join(tmpdir(), "framegate-cli-api-keys-"));
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("creates (secret shown once), lists and revokes; bad flags are usage errors", { timeout: 60_000 }, async () => {
    const created = await runCli(["api-keys", "create", "--name", "ci", "--scopes", "credits:read", "--json"], env());
    expect(created.code, created.stderr).toBe(0);
    const made = JSON.parse(created.stdout);
    expect(made).toMatchObject({ object: "api_key", name: "ci", scopes: ["credits:read"] });
    expect(made.key).toMatch(/^rvya_sk_/);

    const listed = await runCli(["api-keys", "list"], env());
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(made.id);
    expect(listed.stdout).not.toContain(made.key);

    const revoked = await runCli(["api-keys", "revoke", made.id], env());
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${made.id}`);
    expect((await t.request("/api/v1/credits", { key: made.key })).status).toBe(401);

    const bad = await runCli(["api-keys", "create", "--scopes", "root"], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--scopes");
  });
});
