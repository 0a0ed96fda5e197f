/**
 * The account lifecycle for the CLI (`framegate accounts export|delete`), on the local store with
 * no server running in this process: the export signs its URLs with the server's own signing
 * secret (SIGNING_SECRET, or the file under DATA_DIR), so they work as the server's do; the
 * delete closes the account (lifecycle.ts step 1) and leaves the rest to the server, whose
 * housekeeping cancels the account's tasks and removes its bytes (or DELETE /admin/v1/accounts/{id}
 * at once): cancelling a task may need its upstream, which only the server reaches.
 */
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { dialableUrl } from "../http/listen.js";
import { resolveSigningSecret } from "../secrets/signing-secret.js";
import { UrlSigner } from "../storage/signed-urls.js";
import type { StoreHandle } from "../store/db.js";
import { systemClock } from "../util/clock.js";
import { closeAccount, exportAccount } from "./lifecycle.js";
import { AccountService } from "./service.js";

export interface OfflineLifecycle {
  export(accountId: string): AsyncGenerator<string>;
  close(accountId: string): ReturnType<typeof closeAccount>;
}

export async function offlineLifecycle(config: Config, store: StoreHandle, log: Logger): Promise<OfflineLifecycle> {
  const { db } = store;
  const clock = systemClock;
  const accounts = new AccountService(db, clock, {
    defaultMaxRunningTasks: config.worker.accountMaxRunningTasks,
    quotas: config.quotas,
  });
  const secret = await resolveSigningSecret({ envSecret: config.signingSecret, dataDir: config.dataDir, db, log });
  const baseUrl = config.publicBaseUrl ?? dialableUrl(config.host, config.port);
  const signer = new UrlSigner(secret, () => baseUrl);
  return {
    export: (accountId) => exportAccount({ db, clock, signer, accounts }, accountId),
    close: (accountId) => closeAccount({ db, clock, accounts }, accountId),
  };
}
