/**
 * Webhook endpoints that are switched off, across accounts (GET /admin/v1/stats): how many, and
 * the most recently disabled ones with why.
 *
 * An endpoint is disabled either by its account (PATCH status "disabled") or by the dispatcher
 * after failing for the whole auto-disable period. The dispatcher disables in the update that
 * records the failing attempt, so an auto-disabled endpoint's disabled_at equals its
 * last_failure_at and it is still failing (failing_since set); an account's disable writes its
 * own time and comes with no delivery attempt.
 *
 * Deleted endpoints (revoked_at) are not counted. No index leads with status: the table holds a
 * few endpoints per account (ACCOUNT_MAX_WEBHOOK_ENDPOINTS), and both queries read it once.
 */
import { sql } from "kysely";
import type { Executor } from "../store/db.js";

export interface DisabledEndpoint {
  id: string;
  account_id: string;
  /** Where it delivered to: what the operator recognises, and tells the account about. */
  url: string;
  /** Written with every disable; nullable only as the column is. */
  disabled_at: string | null;
  /** `failing`: disabled by the dispatcher; `account`: by the account's own request. */
  reason: "failing" | "account";
  /** Start of the failures that disabled it (reason `failing`), else null. */
  failing_since: string | null;
  failure_count: number;
}

export async function disabledEndpoints(
  db: Executor,
  limit: number,
): Promise<{ count: number; recent: DisabledEndpoint[] }> {
  const live = db.selectFrom("webhook_endpoints").where("status", "=", "disabled").where("revoked_at", "is", null);
  const total = await live.select(sql<number>`count(*)`.as("n")).executeTakeFirstOrThrow();
  const rows = await live
    .select(["id", "account_id", "url", "disabled_at", "failing_since", "last_failure_at", "failure_count"])
    .orderBy("disabled_at", "desc")
    .orderBy("id")
    .limit(limit)
    .execute();
  return {
    count: Number(total.n),
    recent: rows.map((r) => {
      const failing = r.failing_since !== null && r.disabled_at !== null && r.disabled_at === r.last_failure_at;
      return {
        id: r.id,
        account_id: r.account_id,
        url: r.url,
        disabled_at: r.disabled_at,
        reason: failing ? "failing" : "account",
        failing_since: failing ? r.failing_since : null,
        failure_count: r.failure_count,
      };
    }),
  };
}
