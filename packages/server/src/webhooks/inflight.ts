/**
 * Delivery slots: a cap on webhook deliveries in flight at once, per endpoint and per account,
 * shared by every process through the store. A delivery takes a slot (a row in
 * webhook_inflight) before its HTTP attempt and gives it back after; with none free it does not
 * attempt at all. So an endpoint that accepts connections and never answers holds at most
 * `perEndpoint` delivery runners (and one account's endpoints at most `perAccount`), each for
 * at most the delivery timeout, instead of all of them.
 *
 * Slots are counted and taken in one short transaction, one account at a time: on PostgreSQL the
 * account's row is locked (FOR UPDATE) until commit, so two processes cannot both see the last
 * free slot; SQLite runs one write transaction at a time anyway. A slot whose process died is
 * never released: it expires `holdMs` after it was taken (the delivery timeout plus a margin,
 * so a live attempt always finishes inside its slot).
 */
import type { Db } from "../store/db.js";
import { addMs, type Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";

export interface SlotLimits {
  perEndpoint: number;
  perAccount: number;
  /** A slot not released after this long is free again (its holder is presumed dead). */
  holdMs: number;
}

/** Beyond the delivery timeout: signing, the delivery log's transaction, a slow database. */
export const SLOT_MARGIN_MS = 30_000;

export class DeliverySlots {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly limits: SlotLimits,
  ) {}

  /** Takes a slot for a delivery to this endpoint of this account: its id, or undefined when none is free. */
  async acquire(accountId: string, endpointId: string): Promise<string | undefined> {
    const now = this.clock.now();
    const nowIso = now.toISOString();
    return this.db.transaction().execute(async (trx) => {
      // Expired slots go first. This write also makes the transaction SQLite's writer before it
      // reads, so what it counts cannot change under it.
      await trx
        .deleteFrom("webhook_inflight")
        .where("account_id", "=", accountId)
        .where("expires_at", "<=", nowIso)
        .execute();
      // One acquirer per account at a time (PostgreSQL): the count below stays true until commit.
      await trx.selectFrom("accounts").select("id").where("id", "=", accountId).forUpdate().executeTakeFirst();
      const live = await trx
        .selectFrom("webhook_inflight")
        .select("endpoint_id")
        .where("account_id", "=", accountId)
        .where("expires_at", ">", nowIso)
        .execute();
      if (live.length >= this.limits.perAccount) return undefined;
      if (live.filter((slot) => slot.endpoint_id === endpointId).length >= this.limits.perEndpoint) return undefined;
      const id = newId("whslot");
      await trx
        .insertInto("webhook_inflight")
        .values({
          id,
          account_id: accountId,
          endpoint_id: endpointId,
          expires_at: addMs(now, this.limits.holdMs).toISOString(),
        })
        .execute();
      return id;
    });
  }

  /** Gives a slot back (a no-op when it already expired and was taken away). */
  async release(slotId: string): Promise<void> {
    await this.db.deleteFrom("webhook_inflight").where("id", "=", slotId).execute();
  }
}
