/**
 * `framegate accounts usage`: the operators' usage report (GET /admin/v1/usage's body) read
 * straight from the local store: buckets over every account (or one), then per account, per
 * provider, and refunds by reason.
 */
import { ApiError, adminUsage, type Config, resolveBucketRange, type StoreHandle } from "@framegate/server";
import { formatTable } from "./pages.js";
import type { Printable } from "./run.js";
import { checkUsage, formatUsage, type UsageOptions } from "./usage-commands.js";

export async function accountsUsage(
  ctx: { store: StoreHandle; config: Config },
  opts: UsageOptions & { account?: string },
): Promise<Printable> {
  const { granularity, start, end } = checkUsage(opts);
  const range = resolveBucketRange({ granularity, start, end }, new Date());
  if (opts.account) {
    const found = await ctx.store.db
      .selectFrom("accounts")
      .select("id")
      .where("id", "=", opts.account)
      .executeTakeFirst();
    if (!found) throw new ApiError("not_found", `Account ${opts.account} not found.`);
  }
  const report = await adminUsage(ctx.store.db, range, opts.account);
  const accounts = formatTable(
    ["ACCOUNT", "NAME", "CREATED", "SUCCEEDED", "FAILED", "CANCELED", "CHARGED", "REFUNDED", "GRANTED"],
    report.by_account.map((a) => [
      a.account_id,
      a.name ?? "",
      ...[
        a.tasks_created,
        a.tasks_succeeded,
        a.tasks_failed,
        a.tasks_canceled,
        a.credits_charged,
        a.credits_refunded,
        a.credits_granted,
      ].map(String),
    ]),
  );
  const providers = formatTable(
    ["PROVIDER", "CREATED", "SUCCEEDED", "FAILED", "CANCELED", "CHARGED", "REFUNDED"],
    report.by_provider.map((p) => [
      p.provider ?? "(none)",
      ...[
        p.tasks_created,
        p.tasks_succeeded,
        p.tasks_failed,
        p.tasks_canceled,
        p.credits_charged,
        p.credits_refunded,
      ].map(String),
    ]),
  );
  const refunds = formatTable(
    ["REFUND REASON", "COUNT", "CREDITS"],
    report.refunds.by_reason.map((r) => [r.reason ?? "", String(r.count), String(r.credits)]),
  );
  const text = [
    formatUsage(report),
    "",
    report.by_account.length ? accounts : "no account activity in the range",
    "",
    report.by_provider.length ? providers : "no tasks in the range",
    "",
    `refunds: ${report.refunds.count} (${report.refunds.credits} credits)`,
    ...(report.refunds.by_reason.length ? [refunds] : []),
  ].join("\n");
  return { json: report, text };
}
