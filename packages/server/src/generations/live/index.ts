/**
 * Wiring of live status for one process. Every process forwards the status changes it commits
 * to the others (PostgreSQL only: ChangeAnnouncer); a process that serves the API also follows
 * them (TaskWatcher, fed by its own changes, by LISTEN on PostgreSQL, and by a backstop poll)
 * for SSE streams and `Prefer: wait`.
 */
import type { Logger } from "pino";
import type { Config } from "../../config.js";
import type { Db } from "../../store/db.js";
import { taskChangeChannel } from "./changes.js";
import { LiveStatus } from "./live-status.js";
import { ChangeAnnouncer, ChangeListener } from "./pg-channel.js";
import { TaskWatcher } from "./watcher.js";

export { publishTaskChange } from "./changes.js";
export { LiveStatus } from "./live-status.js";

export interface LiveStatusHandle {
  /** Undefined in a process that serves no API (a worker). */
  status: LiveStatus | undefined;
  /** First step of shutdown: held requests answered, streams ended, listening stopped. */
  releaseClients(): Promise<void>;
  /** After the job runners stopped (their last changes are still announced), before the store closes. */
  close(): Promise<void>;
}

export async function startLiveStatus(opts: {
  config: Config;
  db: Db;
  servesApi: boolean;
  log: Logger;
}): Promise<LiveStatusHandle> {
  const { config, db, log } = opts;
  const channel = taskChangeChannel(db);
  const announcer = config.databaseUrl ? new ChangeAnnouncer(db, channel, log) : undefined;
  const closeAnnouncer = async () => announcer?.close();
  if (!opts.servesApi) return { status: undefined, releaseClients: async () => {}, close: closeAnnouncer };

  const watcher = new TaskWatcher({ db, channel, pollMs: config.live.pollMs, log });
  const status = new LiveStatus(watcher, config.live, log);
  const listener = config.databaseUrl ? new ChangeListener(config.databaseUrl, watcher, log) : undefined;
  await listener?.start();
  return {
    status,
    async releaseClients() {
      status.close();
      watcher.close();
      await listener?.stop();
    },
    close: closeAnnouncer,
  };
}
