/**
 * `framegate restore FILE`: puts a backup archive (create.ts) back into DATA_DIR.
 *
 * Order of work, so that a bad archive or a busy directory changes nothing:
 *   1. read the whole archive once, hashing every entry, and check it against its manifest
 *      (every entry listed with its size and SHA-256, nothing unlisted, only allowed paths);
 *   2. check the target: never a directory a server has open (live-check.ts), and not a
 *      non-empty one unless forced;
 *   3. extract into a temporary directory inside DATA_DIR (same file system, so the final moves
 *      are renames), hash the extracted files again (the archive could have changed since step
 *      1) and run SQLite's quick_check on the database;
 *   4. move the existing contents aside (forced), then rename the restored entries into place,
 *      the database last: until it is there, no server would start on a half-restored directory.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { extract as extractTar, list as listTar } from "tar";
import type { Config } from "../config.js";
import { hashFile } from "./files.js";
import { isDatabaseInUse } from "./live-check.js";
import {
  type BackupManifest,
  DATABASE_PATH,
  isAllowedPath,
  MANIFEST_PATH,
  ManifestSchema,
  SECRET_PATH,
} from "./manifest.js";

export type RestoreConfig = Pick<Config, "dataDir" | "databaseUrl" | "storage">;

export interface RestoreProgress {
  phase: "verify" | "extract" | "check";
  done: number;
  total: number;
}

export interface RestoreSummary {
  dataDir: string;
  manifest: BackupManifest;
  files: number;
  bytes: number;
  /** Where the directory's previous contents went (forced restore into a non-empty directory). */
  previousContents: string | null;
  durationMs: number;
}

/** The archive is not a whole Framegate backup; nothing was written. */
export class ArchiveInvalid extends Error {
  override name = "ArchiveInvalid";
}

/** The target directory cannot be restored into as things are; nothing was written. */
export class RestoreRefused extends Error {
  override name = "RestoreRefused";
}

const TEMP_PREFIX = ".restore-";
const ASIDE_PREFIX = ".before-restore-";
/** A temp directory this old belongs to no running restore (one takes minutes, not an hour). */
const STALE_TEMP_MS = 3600_000;
/** Left by other tools or by our own interrupted runs; they do not make a directory "in use". */
const IGNORED_ENTRIES = (name: string) =>
  name === "lost+found" || name.startsWith(TEMP_PREFIX) || name.startsWith(".backup-");

export async function restoreBackup(
  config: RestoreConfig,
  file: string,
  opts: { force?: boolean; onProgress?: (p: RestoreProgress) => void } = {},
): Promise<RestoreSummary> {
  const started = Date.now();
  const progress = opts.onProgress ?? (() => {});
  const archive = resolve(file);
  const archiveSize = await stat(archive).then(
    (s) => s.size,
    () => {
      throw new ArchiveInvalid(`${archive} does not exist or cannot be read`);
    },
  );

  const manifest = await verifyArchive(archive, archiveSize, progress);
  checkCompatible(manifest, config);

  const dataDir = config.dataDir;
  const existing = (await readdir(dataDir).catch(() => [] as string[])).filter((n) => !IGNORED_ENTRIES(n));
  const liveDb = join(dataDir, DATABASE_PATH);
  if (!config.databaseUrl && existing.includes(DATABASE_PATH) && isDatabaseInUse(liveDb)) {
    throw new RestoreRefused(`${liveDb} is open in another process (a running server?): stop it before restoring`);
  }
  if (existing.length && !opts.force) {
    throw new RestoreRefused(
      `${dataDir} is not empty (${existing.slice(0, 5).join(", ")}${existing.length > 5 ? ", …" : ""}): restore into an empty DATA_DIR, or pass --force to move its contents aside`,
    );
  }

  await mkdir(dataDir, { recursive: true });
  await removeStaleTemps(dataDir);
  const temp = join(dataDir, `${TEMP_PREFIX}${randomBytes(6).toString("hex")}`);
  await mkdir(temp, { mode: 0o700 });
  let previousContents: string | null = null;
  try {
    progress({ phase: "extract", done: 0, total: archiveSize });
    await extractTar({
      file: archive,
      cwd: temp,
      strict: true,
      // Regular files at allowed paths only; the manifest was checked to list exactly those.
      filter: (path, entry) => ("type" in entry ? entry.type === "File" : true) && isAllowedPath(path),
    });
    await checkExtracted(temp, manifest, progress);
    if (manifest.files.some((f) => f.path === SECRET_PATH)) {
      await chmod(join(temp, "secrets"), 0o700);
      await chmod(join(temp, SECRET_PATH), 0o600);
    }
    if (existing.length) {
      previousContents = join(dataDir, `${ASIDE_PREFIX}${new Date().toISOString().replace(/[:.]/g, "-")}`);
      await mkdir(previousContents);
      for (const name of existing) await rename(join(dataDir, name), join(previousContents, name));
    }
    const restored = (await readdir(temp)).sort((a, b) => Number(a === DATABASE_PATH) - Number(b === DATABASE_PATH));
    for (const name of restored) await rename(join(temp, name), join(dataDir, name));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return {
    dataDir,
    manifest,
    files: manifest.files.length,
    bytes: manifest.files.reduce((s, f) => s + f.size, 0),
    previousContents,
    durationMs: Date.now() - started,
  };
}

/** What restores killed midway left behind (their temp directories never became the data). */
async function removeStaleTemps(dataDir: string): Promise<void> {
  for (const name of await readdir(dataDir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const info = await stat(join(dataDir, name)).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_TEMP_MS)
      await rm(join(dataDir, name), { recursive: true, force: true });
  }
}

/** Step 1: the archive's manifest, once every entry has been read and found as it lists. */
async function verifyArchive(
  archive: string,
  archiveSize: number,
  progress: (p: RestoreProgress) => void,
): Promise<BackupManifest> {
  const seen = new Map<string, { size: number; sha256: string }>();
  const problems: string[] = [];
  let manifestText: string | undefined;
  let read = 0;
  try {
    await listTar({
      file: archive,
      strict: true,
      onReadEntry: (entry) => {
        const path = entry.path;
        const hash = createHash("sha256");
        const chunks: Buffer[] = [];
        let size = 0;
        if (entry.type !== "File") problems.push(`${path}: a ${entry.type} entry (only files belong in a backup)`);
        if (seen.has(path) || (path === MANIFEST_PATH && manifestText !== undefined)) problems.push(`${path}: twice`);
        entry.on("data", (chunk: Buffer) => {
          size += chunk.length;
          read += chunk.length;
          if (path === MANIFEST_PATH) chunks.push(chunk);
          else hash.update(chunk);
          progress({ phase: "verify", done: Math.min(read, archiveSize), total: archiveSize });
        });
        entry.on("end", () => {
          if (path === MANIFEST_PATH) manifestText = Buffer.concat(chunks).toString("utf8");
          else seen.set(path, { size, sha256: hash.digest("hex") });
        });
      },
    });
  } catch (error) {
    throw new ArchiveInvalid(`${archive} is not a readable tar archive: ${(error as Error).message}`);
  }
  if (manifestText === undefined)
    throw new ArchiveInvalid(`${archive} has no ${MANIFEST_PATH}: not a Framegate backup`);
  let manifest: BackupManifest;
  try {
    manifest = ManifestSchema.parse(JSON.parse(manifestText));
  } catch (error) {
    throw new ArchiveInvalid(
      `${archive}: its ${MANIFEST_PATH} is not a Framegate backup manifest (${(error as Error).message.slice(0, 300)})`,
    );
  }
  const listed = new Set<string>();
  for (const f of manifest.files) {
    if (!isAllowedPath(f.path)) problems.push(`${f.path}: not a path a backup may hold`);
    if (listed.has(f.path)) problems.push(`${f.path}: listed twice`);
    listed.add(f.path);
    const actual = seen.get(f.path);
    if (!actual) problems.push(`${f.path}: listed in the manifest, missing from the archive`);
    else if (actual.size !== f.size || actual.sha256 !== f.sha256) {
      problems.push(
        `${f.path}: ${actual.size} bytes with SHA-256 ${actual.sha256.slice(0, 12)}…, the manifest says ${f.size} bytes, ${f.sha256.slice(0, 12)}…`,
      );
    }
  }
  for (const path of seen.keys()) if (!listed.has(path)) problems.push(`${path}: in the archive, not in the manifest`);
  if (problems.length) {
    const shown = problems.slice(0, 10).join("\n  ");
    throw new ArchiveInvalid(
      `${archive} is damaged or was altered; nothing was restored:\n  ${shown}${problems.length > 10 ? `\n  … and ${problems.length - 10} more` : ""}`,
    );
  }
  return manifest;
}

/** The archive must fit the configuration it is restored under. */
function checkCompatible(manifest: BackupManifest, config: RestoreConfig): void {
  if (!manifest.database && !config.databaseUrl) {
    throw new RestoreRefused(
      "this archive has no database (it was taken with PostgreSQL, which pg_dump backs up): set DATABASE_URL to the restored PostgreSQL database to restore its files",
    );
  }
  if (manifest.database && config.databaseUrl) {
    throw new RestoreRefused(
      "this archive holds a SQLite database, but DATABASE_URL points the server at PostgreSQL: unset DATABASE_URL to restore it",
    );
  }
  if (
    manifest.storage === "fs" &&
    config.storage.driver === "s3" &&
    manifest.files.some((f) => f.path.startsWith("storage/"))
  ) {
    throw new RestoreRefused(
      "this archive holds local media (STORAGE_DRIVER=fs), but STORAGE_DRIVER is s3: restore with STORAGE_DRIVER=fs, or copy its storage/ objects to the bucket",
    );
  }
}

/** Step 3: the extracted files are the ones the manifest lists, byte for byte, and the database opens. */
async function checkExtracted(temp: string, manifest: BackupManifest, progress: (p: RestoreProgress) => void) {
  const total = manifest.files.reduce((s, f) => s + f.size, 0);
  let done = 0;
  for (const f of manifest.files) {
    const actual = await hashFile(join(temp, f.path), (n) => {
      done += n;
      progress({ phase: "check", done, total });
    }).catch(() => undefined);
    if (!actual || actual.sha256 !== f.sha256 || actual.size !== f.size) {
      throw new ArchiveInvalid(
        `${f.path} changed while it was restored (the archive was modified?); nothing was restored`,
      );
    }
  }
  if (manifest.database) {
    // Read-write, so closing removes the -wal and -shm files the open makes; they are not moved in.
    const db = new Database(join(temp, DATABASE_PATH), { fileMustExist: true });
    try {
      const result = db.pragma("quick_check", { simple: true });
      if (result !== "ok")
        throw new ArchiveInvalid(
          `the archived database fails SQLite's quick_check (${String(result)}); nothing was restored`,
        );
    } finally {
      db.close();
    }
  }
}
