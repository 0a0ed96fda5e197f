/**
 * The `framegate` CLI, run from source the way a user runs it: migrate, accounts, keys and
 * credits on a local data directory (human and --json output, exit codes), configuration
 * errors, and the first-start bootstrap of `serve`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { migrationProvider } from "../../server/src/store/migrations.js";

import { ChildServer, freePort, killAll, sleep } from "../../server/test/process-helpers.js";
import { testStoreEnv } from "../../server/test/test-store.js";
import { type CliResult, runCli as runCliProcess } from "./helpers.js";

/** The CLI on the store of env.DATA_DIR: its SQLite file, or its own database on the PostgreSQL run. */
async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const store = env.DATA_DIR ? await testStoreEnv(env.DATA_DIR) : {};
  return runCliProcess(args, { ...store, ...env });
}

/** A whole secret (the visible 12-char prefix alone, `rvya_sk_` + 4, does not match). */
const KEY_RE = /rvya_sk_[A-Za-z0-9]{20,}/g;

describe("framegate CLI", () => {
  const dirs: string[] = [];
  const children: ChildServer[] = [];
  const tmp = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), `framegate-cli-${name}-`));
    dirs.push(dir);
    return dir;
  };
  afterAll(async () => {
    await killAll(children);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("migrate --json applies the schema once, then has nothing to do", async () => {
    const env = { DATA_DIR: tmp("migrate") };
    const first = await runCli(["migrate", "--json"], env);
    expect(first.code, first.stderr).toBe(0);
    // Every migration the server has, in order (the list grows with the schema).
    const all = Object.keys(await migrationProvider("sqlite").getMigrations()).sort();
    expect(all.slice(0, 2)).toEqual(["0001_core", "0002_files"]);
    expect(first.json).toEqual({ applied: all });
    const second = await runCli(["migrate", "--json"], env);
    expect(second.code).toBe(0);
    expect(second.json).toEqual({ applied: [] });
    const text = await runCli(["migrate"], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/up to date/);
  });

  it("accounts, keys and credits: --json output, the secret shown only at creation, exit codes", {
    timeout: 120_000,
  }, async () => {
    const dataDir = tmp("admin");
    const env = { DATA_DIR: dataDir };

    const created = await runCli(["accounts", "create", "--name", "Acme Films", "--credits", "500", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.json).toMatchObject({ name: "Acme Films", credits: 500 });
    expect(created.json.id).toMatch(/^acct_/);
    const accountId: string = created.json.id;

    const other = await runCli(["accounts", "create", "--name", "Other"], env);
    expect(other.code).toBe(0);
    expect(other.stdout).toMatch(/^created acct_\S+ \(Other\) with 0 credits/);
    const listed = await runCli(["accounts", "list", "--json"], env);
    expect(listed.code).toBe(0);
    expect(listed.json).toHaveLength(2);
    expect(listed.json.find((a: { id: string }) => a.id === accountId)).toMatchObject({ credits: 500 });

    // Keys: the secret is printed by create (json and text) and never again.
    const key = await runCli(
      ["keys", "create", "--account", accountId, "--name", "ci", "--scopes", "credits:read,generations:read", "--json"],
      env,
    );
    expect(key.code, key.stderr).toBe(0);
    expect(key.json.id).toMatch(/^key_/);
    expect(key.json.key).toMatch(/^rvya_sk_[A-Za-z0-9]{40,}$/);
    expect(key.json.prefix).toBe(key.json.key.slice(0, 12));
    expect(key.json.scopes).toEqual(["credits:read", "generations:read"]);
    const secret: string = key.json.key;

    const textKey = await runCli(["keys", "create", "--account", accountId], env);
    expect(textKey.code).toBe(0);
    const textSecrets = textKey.stdout.match(KEY_RE) ?? [];
    expect(textSecrets).toHaveLength(1);
    expect(textKey.stdout).toMatch(/only time the key is shown/);

    const [keys, keysText] = await Promise.all([
      runCli(["keys", "list", "--account", accountId, "--json"], env),
      runCli(["keys", "list", "--account", accountId], env),
    ]);
    expect(keys.code).toBe(0);
    expect(keys.json).toHaveLength(2);
    for (const k of keys.json) {
      expect(k).not.toHaveProperty("key");
      expect(k).not.toHaveProperty("key_hash");
      expect(k.revoked_at).toBeNull();
    }
    expect(keys.stdout).not.toContain(secret);
    expect(keys.stdout).not.toContain(textSecrets[0]);
    expect(keys.stdout.match(KEY_RE)).toBeNull();
    expect(keysText.stdout).not.toContain(secret);
    expect(keysText.stdout).toContain(key.json.prefix);
    // The table has a scopes column: the narrowed key lists its two, the default key says "all".
    const [header, ...keyRows] = keysText.stdout.trimEnd().split("\n");
    expect(header?.split(/\s{2,}/)).toEqual(["ID", "PREFIX", "STATE", "SCOPES", "NAME"]);
    const rowOf = (id: string) => keyRows.find((r) => r.startsWith(id))?.split(/\s{2,}/);
    expect(rowOf(key.json.id)).toEqual([
      key.json.id,
      `${key.json.prefix}…`,
      "active",
      "credits:read,generations:read",
      "ci",
    ]);
    const defaultKey = keys.json.find((k: { id: string }) => k.id !== key.json.id);
    expect(rowOf(defaultKey.id)?.slice(2)).toEqual(["active", "all"]);

    const [badScope, chatScope, noAccount] = await Promise.all([
      runCli(["keys", "create", "--account", accountId, "--scopes", "nope", "--json"], env),
      // No chat API exists, so its scopes are not offered.
      runCli(["keys", "create", "--account", accountId, "--scopes", "chat:create", "--json"], env),
      runCli(["keys", "create", "--account", "acct_missing", "--json"], env),
    ]);
    expect(badScope.code).not.toBe(0);
    expect(JSON.parse(badScope.stderr).error.code).toBe("validation_failed");
    expect(chatScope.code).not.toBe(0);
    expect(JSON.parse(chatScope.stderr).error.message).toMatch(/unknown scope\(s\) chat:create; valid: models:read/);
    expect(noAccount.code).not.toBe(0);
    expect(JSON.parse(noAccount.stderr).error.code).toBe("not_found");

    // Credits: grant, debit, and a debit below 0 that fails without changing anything.
    const grant = await runCli(["credits", "grant", "--account", accountId, "--amount", "250", "--json"], env);
    expect(grant.code, grant.stderr).toBe(0);
    expect(grant.json).toEqual({ account: accountId, credits: 750 });
    const debit = await runCli(
      ["credits", "grant", "--account", accountId, "--amount", "-700", "--reason", "refund to card", "--json"],
      env,
    );
    expect(debit.code, debit.stderr).toBe(0);
    expect(debit.json.credits).toBe(50);
    // Refused commands (run together: none of them may change anything).
    const [overdraw, overdrawText, zero, notNumber, missing, missingText, negative] = await Promise.all([
      runCli(["credits", "grant", "--account", accountId, "--amount", "-51", "--json"], env),
      runCli(["credits", "grant", "--account", accountId, "--amount", "-51"], env),
      runCli(["credits", "grant", "--account", accountId, "--amount", "0", "--json"], env),
      runCli(["credits", "grant", "--account", accountId, "--amount", "ten"], env),
      runCli(["credits", "grant", "--account", "acct_missing", "--amount", "5", "--json"], env),
      runCli(["credits", "grant", "--account", "acct_missing", "--amount", "5"], env),
      runCli(["accounts", "create", "--name", "x", "--credits", "-5", "--json"], env),
    ]);
    expect(overdraw.code).not.toBe(0);
    expect(overdraw.stdout).toBe("");
    expect(JSON.parse(overdraw.stderr).error.code).toBe("insufficient_credits");
    expect(overdrawText.code).not.toBe(0);
    // The code, as every other command prints it: `error: <code>: <message>`.
    expect(overdrawText.stderr).toMatch(/^error: insufficient_credits: .*below 0/);
    expect(zero.code).not.toBe(0);
    expect(notNumber.code).not.toBe(0);
    expect(notNumber.stderr).toMatch(/whole number/);
    expect(missing.code).not.toBe(0);
    expect(JSON.parse(missing.stderr).error.code).toBe("not_found");
    expect(missingText.code).toBe(1);
    expect(missingText.stderr).toBe("error: not_found: Account not found.\n");
    expect(negative.code).not.toBe(0);

    const after = await runCli(["accounts", "list", "--json"], env);
    expect(after.json.find((a: { id: string }) => a.id === accountId).credits).toBe(50);
    expect(after.json).toHaveLength(2);

    // The CLI-made key works against a running server on the same directory, and the CLI can
    // change the store while the server runs.
    const port = await freePort();
    const server = new ChildServer(`http://127.0.0.1:${port}`, { DATA_DIR: dataDir, PORT: String(port) });
    children.push(server);
    await server.waitReady();
    expect((await server.request("/api/v1/credits", { key: secret })).body).toEqual({ current_credits: 50 });
    const live = await runCli(["credits", "grant", "--account", accountId, "--amount", "5", "--json"], env);
    expect(live.code, live.stderr).toBe(0);
    expect((await server.request("/api/v1/credits", { key: secret })).body).toEqual({ current_credits: 55 });
    const view = await server.admin(`/admin/v1/accounts/${accountId}`);
    expect(view.body.credits).toBe(view.body.ledger.ledger_sum);

    const revoked = await runCli(["keys", "revoke", key.json.id, "--json"], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.json).toMatchObject({ id: key.json.id, account_id: accountId });
    expect(revoked.json.revoked_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(revoked.json).not.toHaveProperty("key");
    const rejected = await server.request("/api/v1/credits", { key: secret });
    expect(rejected.status).toBe(401);
    expect(rejected.body.error.code).toBe("api_key_revoked");
    const keysAfter = await runCli(["keys", "list", "--account", accountId, "--json"], env);
    expect(keysAfter.json.find((k: { id: string }) => k.id === key.json.id).revoked_at).toBe(revoked.json.revoked_at);
    const unknownKey = await runCli(["keys", "revoke", "key_missing", "--json"], env);
    expect(unknownKey.code).not.toBe(0);
    expect(JSON.parse(unknownKey.stderr).error.code).toBe("not_found");

    server.proc.kill("SIGTERM");
    expect(await server.waitExit(15_000)).toEqual({ code: 0, signal: null });
  });

  it("a bad configuration value stops serve and admin commands with a message naming it", async () => {
    const dataDir = tmp("config");
    const server = new ChildServer("http://127.0.0.1:1", { DATA_DIR: dataDir, PORT: "abc" });
    children.push(server);
    const exit = await server.waitExit(20_000);
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(server.stderr).toMatch(/PORT/);
    expect(server.stderr).toMatch(/whole number/);

    const tooBig = await runCli(["accounts", "list", "--json"], { DATA_DIR: dataDir, PORT: "70000" });
    expect(tooBig.code).not.toBe(0);
    expect(tooBig.stderr).toMatch(/PORT/);
    const badLevel = await runCli(["accounts", "list"], { DATA_DIR: dataDir, LOG_LEVEL: "loud" });
    expect(badLevel.code).not.toBe(0);
    expect(badLevel.stderr).toMatch(/LOG_LEVEL/);
  });

  it("first start on an empty directory prints a working key and a curl command, once", async () => {
    const dataDir = tmp("bootstrap");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { DATA_DIR: dataDir, PORT: String(port), BOOTSTRAP_DEV_ACCOUNT: "true", LOG_LEVEL: "info" };

    const first = new ChildServer(url, env);
    children.push(first);
    await first.waitReady();
    const deadline = Date.now() + 10_000;
    while (!/curl -s .*\/api\/v1\/credits/.test(first.stdout) && Date.now() < deadline) await sleep(50);
    const keys = first.stdout.match(KEY_RE) ?? [];
    expect(keys, first.output()).toHaveLength(1);
    const key = keys[0] as string;
    expect(first.stdout).toContain(`export FRAMEGATE_API_KEY=${key}`);
    expect(first.stdout).toContain(`curl -s ${url}/api/v1/generations`);
    expect(first.stdout).toContain(`curl -s ${url}/api/v1/credits -H "Authorization: Bearer $FRAMEGATE_API_KEY"`);

    const credits = await first.request("/api/v1/credits", { key });
    expect(credits.status).toBe(200);
    expect(credits.body).toEqual({ current_credits: 1000 });
    const created = await first.request("/api/v1/generations", {
      key,
      json: { model: "kling-2-6", prompt: "A paper boat drifting down a rainy street" },
    });
    expect(created.status).toBe(202);
    // Using the key does not leak it into the logs.
    expect(first.stdout.match(KEY_RE)).toHaveLength(1);

    first.proc.kill("SIGTERM");
    expect(await first.waitExit(15_000)).toEqual({ code: 0, signal: null });

    const second = new ChildServer(url, env);
    children.push(second);
    await second.waitReady();
    await sleep(1000);
    expect(second.stdout.match(KEY_RE)).toBeNull();
    expect(second.stdout).not.toContain("FRAMEGATE_API_KEY");
    expect((await second.request("/api/v1/credits", { key })).status).toBe(200);
    second.proc.kill("SIGTERM");
    expect(await second.waitExit(15_000)).toEqual({ code: 0, signal: null });

    const accounts = await runCli(["accounts", "list", "--json"], { DATA_DIR: dataDir });
    expect(accounts.json).toHaveLength(1);
    expect(accounts.json[0]).toMatchObject({ name: "dev", credits: 1000 - 55 });
  });

  it("no bootstrap key when accounts already exist before the first start", async () => {
    const dataDir = tmp("preexisting");
    const made = await runCli(["accounts", "create", "--name", "ops", "--json"], { DATA_DIR: dataDir });
    expect(made.code, made.stderr).toBe(0);
    const port = await freePort();
    const server = new ChildServer(`http://127.0.0.1:${port}`, {
      DATA_DIR: dataDir,
      PORT: String(port),
      BOOTSTRAP_DEV_ACCOUNT: "true",
    });
    children.push(server);
    await server.waitReady();
    await sleep(1000);
    expect(server.stdout.match(KEY_RE)).toBeNull();
    server.proc.kill("SIGTERM");
    expect(await server.waitExit(15_000)).toEqual({ code: 0, signal: null });
    const accounts = await runCli(["accounts", "list", "--json"], { DATA_DIR: dataDir });
    expect(accounts.json.map((a: { name: string }) => a.name)).toEqual(["ops"]);
  });
});
