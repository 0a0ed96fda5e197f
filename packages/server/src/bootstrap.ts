/**
 * First start on an empty data directory: create a dev account and key exactly once. The
 * settings row is claimed before anything else, so two racing starts cannot both do it.
 */
import type { AccountService } from "./accounts/service.js";
import type { Db } from "./store/db.js";
import { getSetting } from "./store/settings.js";

const BOOTSTRAP_KEY = "bootstrap.dev_account";

export async function bootstrapDevAccount(
  db: Db,
  accounts: AccountService,
  credits: number,
): Promise<{ accountId: string; key: string } | undefined> {
  if ((await getSetting(db, BOOTSTRAP_KEY)) !== undefined) return undefined;
  const existing = await db.selectFrom("accounts").select("id").limit(1).executeTakeFirst();
  const claimed = await db
    .insertInto("settings")
    .values({ key: BOOTSTRAP_KEY, value: existing ? "skipped: accounts existed" : "pending" })
    .onConflict((oc) => oc.column("key").doNothing())
    .executeTakeFirst();
  if (Number(claimed.numInsertedOrUpdatedRows ?? 0) !== 1 || existing) return undefined;
  const account = await accounts.createAccount({ name: "dev", credits });
  const key = await accounts.createKey(account.id, { name: "dev key (created at first start)" });
  await db.updateTable("settings").set({ value: account.id }).where("key", "=", BOOTSTRAP_KEY).execute();
  return { accountId: account.id, key: key.key };
}

/**
 * The dev account an earlier first start created, when it still exists: a later start can then
 * say how to mint a new key for it (the first one was shown only once). Undefined when no start
 * created one (accounts existed already, the bootstrap is off, or it has not finished).
 */
export async function existingDevAccount(db: Db): Promise<string | undefined> {
  const value = await getSetting(db, BOOTSTRAP_KEY);
  if (!value?.startsWith("acct_")) return undefined;
  const account = await db.selectFrom("accounts").select("id").where("id", "=", value).executeTakeFirst();
  return account?.id;
}
