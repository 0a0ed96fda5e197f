/**
 * The backup archive's table of contents, `manifest.json`, the archive's first entry. It names
 * every other entry with its size and SHA-256, so a restore can prove the archive whole before it
 * writes a byte, and it records what the snapshot holds (schema migration, row counts) for the
 * operator reading it with `tar -xOf backup.tar manifest.json`.
 */
import { z } from "zod";

export const MANIFEST_PATH = "manifest.json";
export const DATABASE_PATH = "framegate.db";
export const SECRET_PATH = "secrets/signing_secret";
export const STORAGE_PREFIX = "storage/";
export const MANIFEST_FORMAT = "framegate-backup";
export const MANIFEST_VERSION = 1;

const FileEntry = z.object({
  path: z.string().min(1),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(MANIFEST_VERSION),
  created_at: z.string(),
  framegate_version: z.string(),
  /** SQLite: the snapshot's facts; null when the database is PostgreSQL (not in the archive). */
  database: z
    .object({
      last_migration: z.string().nullable(),
      rows: z.record(z.string(), z.number().int().nonnegative()),
    })
    .nullable(),
  /**
   * `file`: in the archive; `omitted`: a file, left out on request (--without-secret);
   * `environment`: SIGNING_SECRET, kept by the operator; `none`: neither existed.
   */
  signing_secret: z.enum(["file", "omitted", "environment", "none"]),
  /** `fs`: the referenced objects are in the archive under storage/; `s3`: they stay in the bucket. */
  storage: z.enum(["fs", "s3"]),
  /** Objects the snapshot references that were deleted (retention, file deletion) before they could be copied. */
  missing_objects: z.array(z.string()),
  files: z.array(FileEntry),
});

export type BackupManifest = z.infer<typeof ManifestSchema>;
export type ManifestFile = z.infer<typeof FileEntry>;

/**
 * The only paths an archive may hold: the database, the secret file and storage objects, relative,
 * without `..`, `.` or empty segments. Restore refuses anything else, so an archive cannot write
 * outside DATA_DIR or over files it has no business with.
 */
export function isAllowedPath(path: string): boolean {
  if (path === DATABASE_PATH || path === SECRET_PATH) return true;
  if (!path.startsWith(STORAGE_PREFIX) || path.includes("\\") || path.includes("\0")) return false;
  const segments = path.slice(STORAGE_PREFIX.length).split("/");
  return segments.every((s) => s !== "" && s !== "." && s !== "..");
}
