/**
 * Named locks for transactions that read before they write (count, then claim), where the
 * rows they read cannot be locked themselves. Portable: on PostgreSQL the row lock on the
 * settings row `lock:<name>` serializes the holders until commit or rollback; SQLite runs one
 * write transaction at a time anyway, and the insert makes this transaction the writer now.
 */
import type { Executor } from "./db.js";

export async function lockNamed(trx: Executor, name: string): Promise<void> {
  const key = `lock:${name}`;
  await trx
    .insertInto("settings")
    .values({ key, value: "" })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  await trx.selectFrom("settings").select("key").where("key", "=", key).forUpdate().executeTakeFirst();
}
