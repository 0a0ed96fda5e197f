/**
 * `framegate verify`: the invariant checker (the server's ops/verify.ts) on the configured store
 * and storage, read-only. Prints the report and exits 1 when anything is violated, so a cron job
 * or a restore script can act on the exit code alone.
 */
import {
  type Config,
  formatVerifyReport,
  openStorage,
  type StoreHandle,
  systemClock,
  verifyStore,
} from "@framegate/server";
import { EXIT_FAILURE } from "./output.js";
import type { Printable } from "./run.js";

export async function verify(
  ctx: { store: StoreHandle; config: Config },
  opts: { graceMinutes?: number },
): Promise<Printable> {
  const storage = await openStorage(ctx.config);
  try {
    const report = await verifyStore({
      db: ctx.store.db,
      dialect: ctx.store.dialect,
      storage,
      clock: systemClock,
      ...(opts.graceMinutes !== undefined ? { graceMs: opts.graceMinutes * 60_000 } : {}),
    });
    if (!report.ok) process.exitCode = EXIT_FAILURE;
    return { json: report, text: formatVerifyReport(report) };
  } finally {
    storage.close?.();
  }
}
