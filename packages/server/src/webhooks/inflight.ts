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
import type { Db, Executor } from "../store/db.js";
import { writeTransaction } from "../store/group-commit.js";
import { PreparedQuery } from "../store/prepared.js";
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
    return writeTransaction(this.db, async (trx) => {
      // Expired slots go first. This write also makes the transaction SQLite's writer before it
      // reads, so what it counts cannot change under it.
      await dropExpired.execute(trx, accountId, nowIso);
      // One acquirer per account at a time (PostgreSQL): the count below stays true until commit.
      await lockAccount.execute(trx, accountId);
      const live = await liveSlots.execute(trx, accountId, nowIso);
      if (live.length >= this.limits.perAccount) return undefined;
      if (live.filter((slot) => slot.endpoint_id === endpointId).length >= this.limits.perEndpoint) return undefined;
      const id = newId("whslot");
      await insertSlot.execute(trx, id, accountId, endpointId, addMs(now, this.limits.holdMs).toISOString());
      return id;
    });
  }

  /** Gives a slot back (a no-op when it already expired and was taken away), in `db`'s transaction if given. */
  async release(slotId: string, db: Executor = this.db): Promise<void> {
    await releaseSlot.execute(db, slotId);
  }
}

// A delivery takes and gives back a slot: compiled once (store/prepared.ts).

const dropExpired = new PreparedQuery(
  (db, accountId: string, now: string) =>
    db.deleteFrom("webhook_inflight").where("account_id", "=", accountId).where("expires_at", "<=", now),
  2,
);

const lockAccount = new PreparedQuery(
  (db, accountId: string) => db.selectFrom("accounts").select("id").where("id", "=", accountId).forUpdate(),
  1,
);

const liveSlots = new PreparedQuery(
  (db, accountId: string, now: string) =>
    db
      .selectFrom("webhook_inflight")
      .select("endpoint_id")
      .where("account_id", "=", accountId)
      .where("expires_at", ">", now),
  2,
);

const insertSlot = new PreparedQuery(
  (db, id: string, accountId: string, endpointId: string, expiresAt: string) =>
    db
      .insertInto("webhook_inflight")
      .values({ id, account_id: accountId, endpoint_id: endpointId, expires_at: expiresAt }),
  4,
);

const releaseSlot = new PreparedQuery((db, id: string) => db.deleteFrom("webhook_inflight").where("id", "=", id), 1);
