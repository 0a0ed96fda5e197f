/**
 * `framegate accounts export` and `framegate accounts delete` on a local data directory: the
 * export on stdout is the JSON document alone (no key secret), --out writes it to a new file and
 * never over an existing one; delete wants --yes, revokes the keys, and leaves other accounts be.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testStoreEnv } from "../../server/test/test-store.js";
import { type CliResult, runCli as runCliProcess } from "./helpers.js";

async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const store = env.DATA_DIR ? await testStoreEnv(env.DATA_DIR) : {};
  return runCliProcess(args, { ...store, ...env });
}

describe("framegate accounts export / delete", () => {
  const dir = mkdtempSync(join(tmpdir(), "framegate-cli-lifecycle-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exports to stdout and to a new file, then deletes with --yes only", { timeout: 300_000 }, async () => {
    const env = { DATA_DIR: join(dir, "data") };
    const created = await runCli(["accounts", "create", "--name", "Leaving", "--credits", "300", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const id = created.json.id as string;
    const other = (await runCli(["accounts", "create", "--name", "Staying", "--credits", "70", "--json"], env)).json;
    const key = await runCli(["keys", "create", "--account", id, "--json"], env);
    expect(key.code, key.stderr).toBe(0);

    const piped = await runCli(["accounts", "export", id], env);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.json).toMatchObject({ object: "account_export", schema_version: 1, account: { id, credits: 300 } });
    expect(piped.json.api_keys.map((k: { id: string }) => k.id)).toEqual([key.json.id]);
    expect(piped.json.ledger).toEqual([expect.objectContaining({ type: "grant", amount: 300 })]);
    expect(piped.stdout).not.toContain(key.json.key);

    const out = join(dir, "export.json");
    const written = await runCli(["accounts", "export", id, "--out", out, "--json"], env);
    expect(written.code, written.stderr).toBe(0);
    expect(written.json).toMatchObject({ account: id, file: out, bytes: readFileSync(out).length });
    expect(JSON.parse(readFileSync(out, "utf8")).account.id).toBe(id);
    writeFileSync(join(dir, "taken.json"), "keep me");
    const taken = await runCli(["accounts", "export", id, "--out", join(dir, "taken.json")], env);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/exists already/);
    expect(readFileSync(join(dir, "taken.json"), "utf8")).toBe("keep me");
    const missing = await runCli(["accounts", "export", "acct_missing", "--out", join(dir, "none.json")], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not_found/);
    expect(existsSync(join(dir, "none.json"))).toBe(false);

    const unconfirmed = await runCli(["accounts", "delete", id], env);
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toMatch(/--yes/);
    const deleted = await runCli(["accounts", "delete", id, "--yes", "--json"], env);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.json).toMatchObject({ id, deleted: true, keys_revoked: 1 });
    const again = await runCli(["accounts", "delete", id, "--yes", "--json"], env);
    expect(again.json).toMatchObject({ id, deleted_at: deleted.json.deleted_at, keys_revoked: 0 });

    const keys = await runCli(["keys", "list", "--account", id, "--json"], env);
    expect(keys.json[0].revoked_at).not.toBeNull();
    const newKey = await runCli(["keys", "create", "--account", id], env);
    expect(newKey.code).toBe(1);
    expect(newKey.stderr).toMatch(/was deleted/);
    const listed = (await runCli(["accounts", "list", "--json"], env)).json;
    expect(listed.find((a: { id: string }) => a.id === id)).toMatchObject({ deleted_at: deleted.json.deleted_at });
    expect(listed.find((a: { id: string }) => a.id === other.id)).toMatchObject({ credits: 70, deleted_at: null });
    const text = (await runCli(["accounts", "list"], env)).stdout;
    expect(text).toContain(`${id}`);
    expect(text).toMatch(new RegExp(`${id} .*Leaving  \\(deleted `));
    expect(text).not.toMatch(new RegExp(`${other.id} .*deleted`));
  });
});
