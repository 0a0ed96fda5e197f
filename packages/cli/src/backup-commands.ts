/**
 * `framegate backup` and `framegate restore` (the work is in @framegate/server's backup/). They
 * read the configuration like every other operator command (the environment, DATA_DIR, …) and
 * open no store of their own: backup copies the live SQLite file through the online backup API,
 * restore refuses a directory a server has open.
 */
import {
  ArchiveInvalid,
  BackupError,
  type BackupProgress,
  ConfigError,
  createBackup,
  loadConfig,
  type RestoreProgress,
  RestoreRefused,
  restoreBackup,
} from "@framegate/server";
import { CliError, EXIT_FAILURE, formatBytes, formatElapsed, Output } from "./output.js";
import { type ByteProgress, byteProgress } from "./progress.js";

const PHASE_LABELS: Record<BackupProgress["phase"] | RestoreProgress["phase"], string> = {
  database: "copying the database",
  media: "collecting media",
  hash: "hashing",
  archive: "writing the archive",
  verify: "verifying the archive",
  extract: "extracting",
  check: "checking the restored files",
};

/**
 * Progress on a terminal: a byte bar per phase that counts bytes, a line for the others. Plain
 * output (a pipe, a log) gets one line per phase; --json gets nothing.
 */
function phaseReporter(out: Output) {
  let phase: string | undefined;
  let bar: ByteProgress | undefined;
  return {
    update(p: { phase: keyof typeof PHASE_LABELS; done: number; total: number }) {
      if (out.json) return;
      if (p.phase !== phase) {
        bar?.stop();
        bar = undefined;
        phase = p.phase;
        const counted = p.phase !== "database" && p.phase !== "media";
        if (out.tty && counted) {
          bar = byteProgress(out, PHASE_LABELS[p.phase]);
          bar.start(p.total);
        } else {
          process.stderr.write(`${PHASE_LABELS[p.phase]}…\n`);
        }
      }
      bar?.update(p.done);
    },
    stop() {
      bar?.stop();
    },
  };
}

const SECRET_STATES = {
  file: "included",
  omitted: "left out (--without-secret)",
  environment: "SIGNING_SECRET, not included",
  none: "none",
} as const;

function asCliError(error: unknown): unknown {
  if (error instanceof ConfigError) return new CliError("config_invalid", error.message, { exitCode: EXIT_FAILURE });
  if (error instanceof ArchiveInvalid)
    return new CliError("archive_invalid", error.message, { exitCode: EXIT_FAILURE });
  if (error instanceof RestoreRefused)
    return new CliError("restore_refused", error.message, { exitCode: EXIT_FAILURE });
  if (error instanceof BackupError) return new CliError("backup_failed", error.message, { exitCode: EXIT_FAILURE });
  return error;
}

export async function backupCommand(opts: { out: string; withoutSecret?: boolean; json?: boolean }): Promise<void> {
  const out = new Output(opts);
  const progress = phaseReporter(out);
  try {
    const summary = await createBackup(loadConfig(), {
      out: opts.out,
      withoutSecret: opts.withoutSecret ?? false,
      onProgress: (p) => progress.update(p),
    });
    progress.stop();
    const manifest = summary.manifest;
    const rows = manifest?.database ? Object.values(manifest.database.rows).reduce((s, n) => s + n, 0) : 0;
    const objects = manifest?.files.filter((f) => f.path.startsWith("storage/")).length ?? 0;
    const lines = summary.archive
      ? [
          `backup written to ${summary.archive}`,
          `  database: ${manifest?.database ? `${rows} rows in ${Object.keys(manifest.database.rows).length} tables, migration ${manifest.database.last_migration}` : "not included"}`,
          `  media:    ${objects} objects`,
          `  secret:   ${SECRET_STATES[manifest?.signing_secret ?? "none"]}`,
          `  size:     ${formatBytes(summary.bytes)} in ${formatElapsed(summary.durationMs)}`,
        ]
      : ["nothing is kept on this machine: no archive was written"];
    for (const note of summary.notes) lines.push(`note: ${note}`);
    out.result(
      {
        archive: summary.archive,
        bytes: summary.bytes,
        duration_ms: summary.durationMs,
        rows,
        objects,
        notes: summary.notes,
        manifest,
      },
      lines.join("\n"),
    );
  } catch (error) {
    progress.stop();
    out.fail(asCliError(error));
  }
}

export async function restoreCommand(file: string, opts: { force?: boolean; json?: boolean }): Promise<void> {
  const out = new Output(opts);
  const progress = phaseReporter(out);
  try {
    const summary = await restoreBackup(loadConfig(), file, {
      force: opts.force ?? false,
      onProgress: (p) => progress.update(p),
    });
    progress.stop();
    const lines = [
      `restored ${summary.files} files (${formatBytes(summary.bytes)}) into ${summary.dataDir} in ${formatElapsed(summary.durationMs)}`,
      `  snapshot of ${summary.manifest.created_at}, Framegate ${summary.manifest.framegate_version}${summary.manifest.database ? `, migration ${summary.manifest.database.last_migration}` : ""}`,
    ];
    if (summary.previousContents) lines.push(`  the directory's previous contents are in ${summary.previousContents}`);
    if (summary.manifest.signing_secret === "environment") {
      lines.push("note: the backup was taken with SIGNING_SECRET set: start the server with the same value");
    }
    if (summary.manifest.signing_secret === "omitted") {
      lines.push(
        `note: the archive has no signing secret: put the saved copy at ${summary.dataDir}/secrets/signing_secret (mode 0600) or set SIGNING_SECRET before starting, or issued URLs and webhook secrets stop working`,
      );
    }
    out.result(
      {
        data_dir: summary.dataDir,
        files: summary.files,
        bytes: summary.bytes,
        duration_ms: summary.durationMs,
        previous_contents: summary.previousContents,
        manifest: summary.manifest,
      },
      lines.join("\n"),
    );
  } catch (error) {
    progress.stop();
    out.fail(asCliError(error));
  }
}
