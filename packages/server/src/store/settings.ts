import type { Executor } from "./db.js";

export async function getSetting(db: Executor, key: string): Promise<string | undefined> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value;
}

/** Stores the value unless the key already exists; returns the value that is stored. */
export async function setSettingOnce(db: Executor, key: string, value: string): Promise<string> {
  await db
    .insertInto("settings")
    .values({ key, value })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  return (await getSetting(db, key)) ?? value;
}

/** Deletes the setting if it still holds `value` (a concurrent change is left alone). */
export async function deleteSetting(db: Executor, key: string, value: string): Promise<void> {
  await db.deleteFrom("settings").where("key", "=", key).where("value", "=", value).execute();
}
