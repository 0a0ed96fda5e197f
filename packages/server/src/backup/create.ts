/**
 * `framegate backup`: one consistent archive of what an embedded deployment keeps on its disk,
 * taken while the server runs and writes.
 *
 * One tar file, not a directory: it is a single thing to copy off the machine, to checksum and
 * to keep N of, and its first entry (manifest.json) names every other entry with its SHA-256, so
 * a restore can prove the archive whole before it writes anything. No compression: the media are
 * already-compressed video and images, and an operator can still pipe the file through zstd.
 *
 * Consistency: the database is copied first (SQLite's online backup API, sqlite-snapshot.ts);
 * then the storage objects that copy references (and only those, snapshot-facts.ts) are
 * hard-linked into a staging directory at once, which freezes them: a purge or a replacement
 * after that point changes the live names, not the staged ones. Objects created after the
 * snapshot are not wanted (no row of the snapshot names them). An object the snapshot names but
 * that was deleted between the copy and the links (a retention purge in that instant) is listed
 * in the manifest as missing instead of failing the backup.
 */
import { randomBytes } from "node:crypto";
import { chmod, copyFile, link, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { create as createTar } from "tar";
import type { Config } from "../config.js";
import { signingSecretPath } from "../secrets/signing-secret.js";
import { hashFile, linkOrCopy, listFiles } from "./files.js";
import {
  type BackupManifest,
  DATABASE_PATH,
  isAllowedPath,
  MANIFEST_FORMAT,
  MANIFEST_PATH,
  MANIFEST_VERSION,
  type ManifestFile,
  SECRET_PATH,
  STORAGE_PREFIX,
} from "./manifest.js";
import { readSnapshotFacts, UNREFERENCED_PREFIXES } from "./snapshot-facts.js";
import { snapshotSqlite } from "./sqlite-snapshot.js";

export type BackupConfig = Pick<Config, "dataDir" | "databaseUrl" | "storage" | "signingSecret">;

export interface BackupProgress {
  phase: "database" | "media" | "hash" | "archive";
  /** Bytes (hash, archive) or objects (media) done, of `total`; 0 of 0 while unknown. */
  done: number;
  total: number;
}

export interface BackupSummary {
  /** The archive written; null when nothing is kept locally (PostgreSQL and S3). */
  archive: string | null;
  manifest: BackupManifest | null;
  /** Size of the archive in bytes. */
  bytes: number;
  durationMs: number;
  /** What the operator must do besides (pg_dump, bucket versioning, keeping SIGNING_SECRET). */
  notes: string[];
}

export class BackupError extends Error {
  override name = "BackupError";
}

/** Staging directories of backups that were killed are removed after this long. */
const STALE_STAGING_MS = 24 * 3600_000;
const STAGING_PREFIX = ".backup-";

const FRAMEGATE_VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export async function createBackup(
  config: BackupConfig,
  opts: {
    out: string;
    /** Leave the signing secret file out (kept apart from the data on purpose); default: include it. */
    withoutSecret?: boolean;
    now?: () => Date;
    onProgress?: (p: BackupProgress) => void;
  },
): Promise<BackupSummary> {
  const started = Date.now();
  const now = opts.now ?? (() => new Date());
  const progress = opts.onProgress ?? (() => {});
  const out = resolve(opts.out);
  const notes = advice(config);
  const secretFile = signingSecretPath(config.dataDir);
  const secretFileExists = config.signingSecret === undefined && (await exists(secretFile));
  const secretInFile = secretFileExists && !opts.withoutSecret;
  if (config.databaseUrl && config.storage.driver === "s3" && !secretInFile) {
    return { archive: null, manifest: null, bytes: 0, durationMs: Date.now() - started, notes };
  }
  if (await exists(out)) throw new BackupError(`${out} exists; choose another --out (a backup never overwrites one)`);
  await mkdir(dirname(out), { recursive: true });

  await removeStaleStaging(config.dataDir);
  const staging = join(config.dataDir, `${STAGING_PREFIX}${randomBytes(6).toString("hex")}`);
  const partial = join(dirname(out), `.${basename(out)}.${randomBytes(4).toString("hex")}.partial`);
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const paths: string[] = [];
    let database: BackupManifest["database"] = null;
    let referenced: Set<string> | undefined;
    if (!config.databaseUrl) {
      // The archive keeps the file under the name the server opens (server.ts, sqlitePath).
      const source = join(config.dataDir, DATABASE_PATH);
      if (!(await exists(source)))
        throw new BackupError(`no database at ${source}: nothing to back up (check DATA_DIR)`);
      progress({ phase: "database", done: 0, total: 0 });
      await snapshotSqlite(source, join(staging, DATABASE_PATH));
      const facts = await readSnapshotFacts(join(staging, DATABASE_PATH));
      database = { last_migration: facts.lastMigration, rows: facts.rows };
      referenced = facts.referencedKeys;
      paths.push(DATABASE_PATH);
    }

    const missing: string[] = [];
    if (config.storage.driver === "fs") {
      const root = join(config.dataDir, "storage");
      // With PostgreSQL there is no snapshot to read references from: every finished object goes.
      const all = await listFiles(root);
      const wanted = referenced
        ? [...referenced, ...all.filter((k) => UNREFERENCED_PREFIXES.some((p) => k.startsWith(p)))]
        : all.filter((k) => !k.startsWith("tmp/"));
      const keys = [...new Set(wanted)].filter((k) => !k.endsWith(".part")).sort();
      for (const [index, key] of keys.entries()) {
        const path = `${STORAGE_PREFIX}${key}`;
        if (!isAllowedPath(path)) throw new BackupError(`the database names an unsafe storage key: ${key}`);
        if (await linkOrCopy(join(root, key), join(staging, path))) paths.push(path);
        else if (referenced?.has(key)) missing.push(key);
        progress({ phase: "media", done: index + 1, total: keys.length });
      }
    }

    let secretState: BackupManifest["signing_secret"] =
      config.signingSecret !== undefined ? "environment" : secretFileExists ? "omitted" : "none";
    if (secretInFile) {
      await mkdir(join(staging, dirname(SECRET_PATH)), { recursive: true, mode: 0o700 });
      await copyFile(secretFile, join(staging, SECRET_PATH));
      await chmod(join(staging, SECRET_PATH), 0o600);
      paths.push(SECRET_PATH);
      secretState = "file";
    }

    const files = await hashAll(staging, paths, progress);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      created_at: now().toISOString(),
      framegate_version: FRAMEGATE_VERSION,
      database,
      signing_secret: secretState,
      storage: config.storage.driver,
      missing_objects: missing,
      files,
    };
    await writeFile(join(staging, MANIFEST_PATH), `${JSON.stringify(manifest, null, 2)}\n`);
    const total = files.reduce((s, f) => s + f.size, 0);
    await writeArchive(staging, [MANIFEST_PATH, ...paths], partial, total, progress);
    // A link, not a rename: it fails if `out` appeared meanwhile, so no archive is ever replaced.
    await link(partial, out).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") throw new BackupError(`${out} appeared while the backup ran; it was left alone`);
      throw error;
    });
    if (secretState === "omitted") {
      notes.push(
        `the signing secret was left out: keep a copy of ${secretFile}; a restore needs it back in place (or SIGNING_SECRET set to its value)`,
      );
    }
    if (missing.length) {
      notes.push(
        `${missing.length} object(s) the snapshot references were deleted before they could be copied (listed in the manifest as missing_objects)`,
      );
    }
    return { archive: out, manifest, bytes: (await stat(out)).size, durationMs: Date.now() - started, notes };
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(partial, { force: true });
  }
}

/** What the archive cannot hold, and what to use for it instead. */
function advice(config: BackupConfig): string[] {
  const notes: string[] = [];
  if (config.databaseUrl) {
    notes.push(
      "the database is PostgreSQL and is not in this archive: back it up with pg_dump (e.g. pg_dump -Fc), or base backups with WAL archiving for point-in-time recovery",
    );
  }
  if (config.storage.driver === "s3") {
    notes.push(
      `media are in the S3 bucket ${config.storage.bucket} and are not in this archive: turn on bucket versioning (with a lifecycle rule for old versions) or replicate the bucket`,
    );
  }
  if (config.signingSecret !== undefined) {
    notes.push(
      "SIGNING_SECRET comes from the environment and is not in this archive: keep it with your backups (signed URLs and stored webhook secrets depend on it)",
    );
  }
  return notes;
}

async function hashAll(
  staging: string,
  paths: string[],
  progress: (p: BackupProgress) => void,
): Promise<ManifestFile[]> {
  const sizes = await Promise.all(paths.map(async (p) => (await stat(join(staging, p))).size));
  const total = sizes.reduce((s, n) => s + n, 0);
  let done = 0;
  const files: ManifestFile[] = [];
  for (const path of paths) {
    const { size, sha256 } = await hashFile(join(staging, path), (n) => {
      done += n;
      progress({ phase: "hash", done, total });
    });
    files.push({ path, size, sha256 });
  }
  return files;
}

/** The tar, written to `partial` (0600: it may hold the signing secret), its growth reported as progress. */
async function writeArchive(
  staging: string,
  entries: string[],
  partial: string,
  total: number,
  progress: (p: BackupProgress) => void,
): Promise<void> {
  const timer = setInterval(() => {
    stat(partial)
      .then((s) => progress({ phase: "archive", done: Math.min(s.size, total), total }))
      .catch(() => {});
  }, 200);
  try {
    await createTar({ file: partial, cwd: staging, portable: true, mode: 0o600, linkCache: new NoLinks() }, entries);
  } finally {
    clearInterval(timer);
  }
  progress({ phase: "archive", done: total, total });
}

/**
 * tar's cache of files already packed, made to remember nothing: two storage objects that are hard
 * links of one file (a result and the simulator's video it was linked from, both staged while the
 * simulator still had it) then go in as two files of their own, not as a file and a Link entry,
 * which restore refuses (only files belong in a backup).
 */
class NoLinks extends Map<`${number}:${number}`, string> {
  override set(): this {
    return this;
  }
}

async function removeStaleStaging(dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch(() => [] as string[]);
  for (const name of entries) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const info = await stat(join(dataDir, name)).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_STAGING_MS)
      await rm(join(dataDir, name), { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
