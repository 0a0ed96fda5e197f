/**
 * Backup archives in process: a damaged or altered archive is refused before anything is
 * written, restore refuses a non-empty or live directory, scheduled backups prune and report
 * failures in /readyz and the metrics, and PostgreSQL/S3 deployments get advice instead.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { link, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { create as createTar } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BackupSummary, createBackup } from "../src/backup/create.js";
import { ArchiveInvalid, RestoreRefused, restoreBackup } from "../src/backup/restore.js";
import { BackupScheduler } from "../src/backup/schedule.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { Metrics } from "../src/observability/metrics.js";
import { uploadFile } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { startTestServer, type TestServer, waitForTask } from "./harness.js";
import { TEST_STORE } from "./test-store.js";

const root = mkdtempSync(join(tmpdir(), "framegate-backup-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(root, `${name}-${++n}`);

/** The configuration restore reads for a DATA_DIR (SQLite, local storage). */
const configFor = (dataDir: string) => loadConfig({ DATA_DIR: dataDir });

describe.skipIf(TEST_STORE === "postgres")("backup and restore of a running SQLite server", () => {
  let t: TestServer;
  let backup: BackupSummary;
  let archive: string;

  beforeAll(async () => {
    t = await startTestServer();
    const { key } = await t.createAccount(1000);
    const image = await makeImage(root, { format: "png", width: 32, height: 32 });
    expect((await uploadFile(t, key, image, { kind: "image" })).status).toBe(201);
    const created = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt: "a lake" } });
    expect((await waitForTask(t, key, created.body.id)).status).toBe("succeeded");
    archive = join(fresh("out"), "backup.tar");
    backup = await createBackup(t.server.config, { out: archive });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it("writes one private archive whose manifest names the database, the secret and the referenced media", () => {
    const paths = backup.manifest?.files.map((f) => f.path) ?? [];
    expect(paths).toContain("framegate.db");
    expect(paths).toContain("secrets/signing_secret");
    // The upload, the result video and its poster.
    expect(paths.filter((p) => p.startsWith("storage/files/"))).toHaveLength(1);
    expect(paths.filter((p) => p.startsWith("storage/results/"))).toHaveLength(2);
    expect(backup.manifest?.database?.rows.tasks).toBe(1);
    expect(backup.manifest?.missing_objects).toEqual([]);
    expect(readdirSync(t.dataDir).filter((e) => e.startsWith(".backup-"))).toEqual([]);
    expect(existsSync(archive)).toBe(true);
  });

  it("never overwrites an archive", async () => {
    await expect(createBackup(t.server.config, { out: archive })).rejects.toThrow(/exists/);
  });

  it("refuses an archive with a flipped byte, a truncated one and one with a foreign entry, writing nothing", async () => {
    const bytes = readFileSync(archive);
    const flipped = Buffer.from(bytes);
    // A byte inside the result video (its ftyp box), not in a tar header.
    const at = flipped.indexOf("ftyp") + 8;
    flipped[at] = (flipped[at] as number) ^ 0xff;
    const damaged = join(fresh("bad"), "flipped.tar");
    await mkdir(join(damaged, ".."), { recursive: true });
    writeFileSync(damaged, flipped);
    const truncated = `${damaged}.truncated.tar`;
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));

    // A well-formed tar whose manifest also lists a file outside the allowed paths.
    const staged = fresh("foreign");
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, "notes.txt"), "hello");
    const manifest = {
      ...backup.manifest,
      files: [
        { path: "notes.txt", size: 5, sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" },
      ],
    };
    await writeFile(join(staged, "manifest.json"), JSON.stringify(manifest));
    const foreign = join(staged, "..", `foreign-${n}.tar`);
    await createTar({ file: foreign, cwd: staged }, ["manifest.json", "notes.txt"]);

    for (const [file, message] of [
      [damaged, /damaged or was altered[\s\S]*storage\/results\/.*video\.mp4/],
      [truncated, /damaged|not a readable tar|no manifest/],
      [foreign, /notes\.txt: not a path a backup may hold/],
    ] as const) {
      const target = fresh("target");
      const error = await restoreBackup(configFor(target), file).catch((e: unknown) => e);
      expect(error, file).toBeInstanceOf(ArchiveInvalid);
      expect((error as Error).message).toMatch(message);
      expect(existsSync(target), file).toBe(false);
    }
  });

  it("archives hard-linked storage objects as files of their own, which restore accepts", async () => {
    // A result still linked to the simulator's video, as when a backup is taken while the task ends.
    const video = backup.manifest?.files.find((f) => f.path.startsWith("storage/results/") && f.path.endsWith(".mp4"));
    if (!video) throw new Error("no result video in the backup");
    const simulatorCopy = "storage/simulator/sim_linked/video.mp4";
    await mkdir(join(t.dataDir, "storage/simulator/sim_linked"), { recursive: true });
    await link(join(t.dataDir, video.path), join(t.dataDir, simulatorCopy));
    try {
      const linkedArchive = join(fresh("out"), "linked.tar");
      const linked = await createBackup(t.server.config, { out: linkedArchive });
      const target = fresh("linked-restore");
      const restored = await restoreBackup(configFor(target), linkedArchive);
      expect(restored.files).toBe(linked.manifest?.files.length);
      for (const path of [video.path, simulatorCopy]) {
        expect(readFileSync(join(target, path)).equals(readFileSync(join(t.dataDir, video.path))), path).toBe(true);
      }
    } finally {
      rmSync(join(t.dataDir, "storage/simulator/sim_linked"), { recursive: true, force: true });
    }
  });

  it("refuses a non-empty directory unless forced, and then moves its contents aside", async () => {
    const target = fresh("busy");
    await mkdir(target, { recursive: true });
    await writeFile(join(target, "keep-me"), "x");
    const error = await restoreBackup(configFor(target), archive).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreRefused);
    expect((error as Error).message).toMatch(/not empty \(keep-me\)/);
    expect(readdirSync(target)).toEqual(["keep-me"]);

    const summary = await restoreBackup(configFor(target), archive, { force: true });
    expect(summary.previousContents).toMatch(/\.before-restore-/);
    expect(readFileSync(join(summary.previousContents as string, "keep-me"), "utf8")).toBe("x");
    expect(readdirSync(target).sort()).toEqual(
      [
        ...(summary.previousContents ? [summary.previousContents.split("/").pop()] : []),
        "framegate.db",
        "secrets",
        "storage",
      ].sort(),
    );
    expect(readFileSync(join(target, "secrets/signing_secret"), "utf8")).toBe(
      readFileSync(join(t.dataDir, "secrets/signing_secret"), "utf8"),
    );
  });

  it("refuses the directory of a running server, even forced, and leaves it alone", async () => {
    const before = readdirSync(t.dataDir).sort();
    const error = await restoreBackup(configFor(t.dataDir), archive, { force: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreRefused);
    expect((error as Error).message).toMatch(/open in another process/);
    expect(readdirSync(t.dataDir).sort()).toEqual(before);
    expect((await t.request("/readyz")).status).toBe(200);
  });

  it("schedules backups: keeps the newest BACKUP_KEEP, and reports a failure without pruning", async () => {
    const dir = fresh("scheduled");
    const metrics = new Metrics();
    let clock = Date.parse("2026-12-07T00:00:00.000Z");
    const now = () => {
      clock += 60_000;
      return new Date(clock);
    };
    const scheduler = new BackupScheduler(
      t.server.config,
      { dir, intervalMs: 3600_000, keep: 2 },
      { log: createLogger("silent"), metrics, now },
    );
    expect(scheduler.status()).toBe("none yet");
    const written: string[] = [];
    for (let i = 0; i < 3; i++) {
      const summary = await scheduler.runNow();
      written.push(basename(String(summary?.archive)));
    }
    expect(written.every((name) => /^framegate-backup-20261207T\d{9}Z\.tar$/.test(name))).toBe(true);
    const names = readdirSync(dir).sort();
    expect(names).toEqual(written.slice(1));
    expect(scheduler.status()).toMatch(/^ok at 2026-12-07T00:0/);

    // BACKUP_DIR turned into a file: the backup fails, nothing is pruned, and it shows.
    const broken = new BackupScheduler(
      t.server.config,
      { dir: join(dir, names[0] as string), intervalMs: 3600_000, keep: 1 },
      { log: createLogger("silent"), metrics, now },
    );
    expect(await broken.runNow()).toBeUndefined();
    expect(broken.status()).toMatch(/^error at .*: E[A-Z]+$/);
    expect(readdirSync(dir).sort()).toEqual(names);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/framegate_backups_total\{outcome="succeeded"\} 3/);
    expect(text).toMatch(/framegate_backups_total\{outcome="failed"\} 1/);
  });
});

describe.skipIf(TEST_STORE === "postgres")("scheduled backups in the server", () => {
  it("shows a failing backup in /readyz without making the server unready", { timeout: 60_000 }, async () => {
    const notADir = join(fresh("file"), "backups");
    await mkdir(join(notADir, ".."), { recursive: true });
    writeFileSync(notADir, "a file where BACKUP_DIR should be");
    const t = await startTestServer({ BACKUP_DIR: notADir, BACKUP_INTERVAL: "1s" });
    try {
      let ready = await t.request("/readyz");
      while (!String(ready.body.checks.backup).startsWith("error")) {
        await new Promise((r) => setTimeout(r, 200));
        ready = await t.request("/readyz");
      }
      expect(ready.status).toBe(200);
      expect(ready.body.checks.backup).toMatch(/^error at \S+: E[A-Z]+$/);
      expect(ready.body.checks.backup).not.toContain(root);
    } finally {
      await t.close();
    }
  });
});

describe("backups of PostgreSQL and S3 deployments", () => {
  it("writes nothing and explains what to use instead when nothing is local", async () => {
    const config = loadConfig({
      DATA_DIR: fresh("pg-s3"),
      DATABASE_URL: "postgres://127.0.0.1:1/none",
      STORAGE_DRIVER: "s3",
      S3_BUCKET: "media-bucket",
      SIGNING_SECRET: "s".repeat(40),
    });
    const out = join(fresh("pg-s3-out"), "x.tar");
    const summary = await createBackup(config, { out });
    expect(summary.archive).toBeNull();
    expect(existsSync(out)).toBe(false);
    const notes = summary.notes.join("\n");
    expect(notes).toMatch(/pg_dump/);
    expect(notes).toMatch(/point-in-time/);
    expect(notes).toMatch(/media-bucket[\s\S]*versioning/);
    expect(notes).toMatch(/SIGNING_SECRET/);
  });

  it("archives the local media and the secret file of a PostgreSQL deployment, without a database", async () => {
    const dataDir = fresh("pg-fs");
    await mkdir(join(dataDir, "storage/files/acct"), { recursive: true });
    await writeFile(join(dataDir, "storage/files/acct/a.png"), "png bytes");
    await mkdir(join(dataDir, "storage/tmp"), { recursive: true });
    await writeFile(join(dataDir, "storage/tmp/upload.part"), "half");
    await mkdir(join(dataDir, "secrets"), { recursive: true });
    await writeFile(join(dataDir, "secrets/signing_secret"), `${"k".repeat(43)}\n`);
    const config = loadConfig({ DATA_DIR: dataDir, DATABASE_URL: "postgres://127.0.0.1:1/none" });
    const summary = await createBackup(config, { out: join(fresh("pg-fs-out"), "x.tar") });
    expect(summary.manifest?.database).toBeNull();
    expect(summary.manifest?.files.map((f) => f.path)).toEqual(["storage/files/acct/a.png", "secrets/signing_secret"]);
    expect(summary.notes.join("\n")).toMatch(/pg_dump/);
    // Under SQLite it would come back as media without a database: refused, nothing written.
    const sqliteTarget = fresh("pg-fs-into-sqlite");
    await expect(restoreBackup(configFor(sqliteTarget), summary.archive as string)).rejects.toThrow(/has no database/);
    expect(existsSync(sqliteTarget)).toBe(false);
    // Restored under PostgreSQL: the media and the secret come back (the database is pg_restore's job).
    const target = fresh("pg-fs-restored");
    await restoreBackup({ ...config, dataDir: target }, summary.archive as string);
    expect(readFileSync(join(target, "storage/files/acct/a.png"), "utf8")).toBe("png bytes");
  });
});
