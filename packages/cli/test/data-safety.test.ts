/**
 * The data-safety commands, run from source on a local store (its SQLite file, or its own
 * database on the PostgreSQL run): `migrate --dry-run` lists without applying, `verify` exits 0 on
 * a sound store and 1 with the violation named, and every store command refuses a database that
 * a newer Framegate migrated.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/src/config.js";
import { openStore } from "../../server/src/server.js";
import { migrationProvider } from "../../server/src/store/migrations.js";
import { dropTestDatabase, testStoreEnv } from "../../server/test/test-store.js";
import { type CliResult, runCli as runCliProcess } from "./helpers.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) {
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  }
});

function tmp(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `framegate-cli-${name}-`));
  dirs.push(dir);
  return dir;
}

async function runCli(args: string[], dataDir: string): Promise<CliResult> {
  return runCliProcess(args, { DATA_DIR: dataDir, ...(await testStoreEnv(dataDir)) });
}

/** Runs one statement on the store of `dataDir`, opened as the CLI opens it but without migrating. */
async function onStore(dataDir: string, statement: ReturnType<typeof sql>): Promise<void> {
  const config = loadConfig({ DATA_DIR: dataDir, ...(await testStoreEnv(dataDir)) });
  const store = await openStore(config, { migrate: false });
  try {
    await statement.execute(store.db);
  } finally {
    await store.close();
  }
}

describe("framegate migrate --dry-run, verify", () => {
  it("migrate --dry-run lists every pending migration and applies none", { timeout: 120_000 }, async () => {
    const dir = tmp("dry-run");
    const all = Object.keys(await migrationProvider("sqlite").getMigrations()).sort();
    const dry = await runCli(["migrate", "--dry-run", "--json"], dir);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json).toMatchObject({ pending: all, applied: 0 });
    const text = await runCli(["migrate", "--dry-run"], dir);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`pending (${all.length}), not applied:\n  0001_core\n  0002_files\n`);
    // Nothing was applied: the real run applies all of them.
    const applied = await runCli(["migrate", "--json"], dir);
    expect(applied.json).toEqual({ applied: all });
    const again = await runCli(["migrate", "--dry-run"], dir);
    expect(again.stdout).toContain(`database is up to date (${all.length} migrations applied)`);
  });

  it("verify exits 0 on a sound store and 1 naming the violation", { timeout: 120_000 }, async () => {
    const dir = tmp("verify");
    const created = await runCli(["accounts", "create", "--name", "Acme", "--credits", "100", "--json"], dir);
    expect(created.code, created.stderr).toBe(0);
    const sound = await runCli(["verify"], dir);
    expect(sound.code, sound.stderr).toBe(0);
    expect(sound.stdout).toMatch(/^verify: OK, no violations/);
    expect(sound.stdout).toMatch(/ok {4}balances +1 accounts, 0 violations/);

    await onStore(dir, sql`update accounts set balance = balance + 1 where id = ${created.json.id}`);
    const broken = await runCli(["verify", "--json"], dir);
    expect(broken.code).toBe(1);
    expect(broken.json).toMatchObject({ ok: false, violations: 1 });
    const balances = broken.json.checks.find((c: { name: string }) => c.name === "balances");
    expect(balances.examples).toEqual([
      {
        subject: created.json.id,
        message: `account ${created.json.id}: balance is 101 but its 1 ledger entries sum to 100`,
      },
    ]);
    const text = await runCli(["verify"], dir);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^verify: 1 violation/);
    expect(text.stdout).toContain(`FAIL  balances`);
  });

  it("a database a newer version migrated: store commands refuse it and say why", { timeout: 240_000 }, async () => {
    const dir = tmp("newer");
    expect((await runCli(["migrate"], dir)).code).toBe(0);
    await onStore(
      dir,
      sql`insert into kysely_migration (name, timestamp) values ('9999_next', ${new Date().toISOString()})`,
    );
    for (const args of [["migrate"], ["migrate", "--dry-run"], ["verify"]]) {
      const res = await runCli(args, dir);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stderr, args.join(" ")).toMatch(
        /^error: database_too_new: This database was upgraded by a newer Framegate: it records migration 9999_next, which this version does not know/,
      );
    }
    // The server does not start on it either, and says why in the same words.
    const serve = await runCliProcess(["serve"], {
      DATA_DIR: dir,
      ...(await testStoreEnv(dir)),
      PORT: "0",
      HOST: "127.0.0.1",
      BOOTSTRAP_DEV_ACCOUNT: "false",
    });
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/^This database was upgraded by a newer Framegate: it records migration 9999_next/);
  });
});
