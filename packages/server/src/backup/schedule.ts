/**
 * Scheduled backups (BACKUP_DIR, BACKUP_INTERVAL, BACKUP_KEEP): the embedded server backs itself
 * up every interval into BACKUP_DIR and keeps the newest BACKUP_KEEP archives. It runs in the
 * process that owns the SQLite file (`framegate serve`); the archive is made exactly as
 * `framegate backup` makes it, the database copy on a thread of its own.
 *
 * A failure is logged, counted (framegate_backups_total{outcome="failed"}) and shown in /readyz's
 * `backup` check, but does not make the server unready: a full backup disk is the operator's to
 * fix, and taking the API out of its load balancer would not help. Old archives are pruned only
 * after a new one succeeded, so failures never eat into what is kept.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import { type BackupConfig, type BackupSummary, createBackup } from "./create.js";

const ARCHIVE_NAME = /^framegate-backup-\d{8}T\d{6}\d{3}Z\.tar$/;

export interface BackupSchedule {
  dir: string;
  intervalMs: number;
  keep: number;
}

/** `framegate-backup-20261207T041500123Z.tar`: names that sort by time. */
export function archiveName(at: Date): string {
  return `framegate-backup-${at.toISOString().replace(/[-:.]/g, "")}.tar`;
}

/** Deletes all but the newest `keep` scheduled archives in `dir`; returns the names removed. */
export async function pruneArchives(dir: string, keep: number): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => ARCHIVE_NAME.test(n)).sort();
  const doomed = names.slice(0, Math.max(0, names.length - keep));
  for (const name of doomed) await rm(join(dir, name), { force: true });
  return doomed;
}

export class BackupScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<BackupSummary | undefined> | undefined;
  private last: { at: Date; error?: string; archive?: string | null } | undefined;

  constructor(
    private readonly config: BackupConfig,
    private readonly schedule: BackupSchedule,
    private readonly deps: { log: Logger; metrics?: Metrics; now?: () => Date },
  ) {}

  /** The first backup runs one interval after the start (a restart loop must not fill the disk). */
  start(): void {
    this.timer = setInterval(() => void this.runNow(), this.schedule.intervalMs);
    this.timer.unref();
  }

  /** Takes a backup now (or joins the one running) and prunes; never rejects, failures are recorded. */
  runNow(): Promise<BackupSummary | undefined> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<BackupSummary | undefined> {
    const now = this.deps.now ?? (() => new Date());
    const at = now();
    try {
      const summary = await createBackup(this.config, { out: join(this.schedule.dir, archiveName(at)), now });
      const pruned = summary.archive ? await pruneArchives(this.schedule.dir, this.schedule.keep) : [];
      this.last = { at, archive: summary.archive };
      this.deps.metrics?.recordBackup("succeeded", now());
      this.deps.log.info(
        { archive: summary.archive, bytes: summary.bytes, ms: summary.durationMs, pruned: pruned.length },
        summary.archive ? "backup written" : "backup: nothing is kept locally (PostgreSQL and S3)",
      );
      return summary;
    } catch (error) {
      // /readyz is public: the error's code or name only (ENOSPC, SnapshotError, …), no paths; the log has the rest.
      const { code, name } = error as { code?: string; name?: string };
      this.last = { at, error: code ?? name ?? "Error" };
      this.deps.metrics?.recordBackup("failed");
      this.deps.log.error({ err: error, dir: this.schedule.dir }, "scheduled backup failed");
      return undefined;
    }
  }

  /** For /readyz: how the last scheduled backup went. */
  status(): string {
    if (!this.last) return "none yet";
    const when = this.last.at.toISOString();
    if (this.last.error !== undefined) return `error at ${when}: ${this.last.error}`;
    return this.last.archive === null ? `ok at ${when} (nothing local)` : `ok at ${when}`;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
