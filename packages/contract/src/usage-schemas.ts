/**
 * Wire objects of the usage history: ledger entries (GET /api/v1/credits/ledger), usage buckets
 * (GET /api/v1/usage) and the operators' report (GET /admin/v1/usage).
 */
import { z } from "zod";

export const LEDGER_ENTRY_TYPES = ["grant", "reserve", "release", "refund"] as const;
export type LedgerEntryType = (typeof LEDGER_ENTRY_TYPES)[number];

export const LedgerEntrySchema = z
  .object({
    id: z.string().meta({ example: "led_2Vb8kQz1LmN4pRs7TxY0aC" }),
    object: z.literal("ledger_entry"),
    type: z.enum(LEDGER_ENTRY_TYPES).meta({
      description:
        "grant: an operator grant (positive) or debit (negative), the account's initial credits included. " +
        "reserve: a task's price taken when it was created (negative). " +
        "release: the unused part of a reservation given back when the task succeeded for less (positive). " +
        "refund: a failed or canceled task's reservation given back (positive).",
    }),
    amount: z.number().int().meta({ description: "Signed, in credits.", example: -25 }),
    balance_after: z.number().int().meta({
      description:
        "The balance right after this entry: the sum of every entry up to it, in the order (created_at, id).",
      example: 975,
    }),
    task_id: z.string().nullable().meta({ description: "The task it belongs to (null for grants)." }),
    reason: z.string().nullable().meta({ example: "generation failed: provider_error" }),
    created_at: z.string().meta({ example: "2026-12-06T14:03:11.204Z" }),
  })
  .meta({ id: "LedgerEntry" });

export const LedgerEntryListSchema = z
  .object({ object: z.literal("list"), data: z.array(LedgerEntrySchema), has_more: z.boolean() })
  .meta({ id: "LedgerEntryList" });

const taskCounts = {
  tasks_created: z.number().int().meta({
    description:
      "Tasks created in the bucket. The next three count what became of them (by the bucket they were created in); the rest are still queued or processing.",
  }),
  tasks_succeeded: z.number().int(),
  tasks_failed: z.number().int().meta({ description: "Failed, canceled ones excluded." }),
  tasks_canceled: z.number().int().meta({ description: 'Failed with error.reason "canceled".' }),
};

const credits = {
  credits_charged: z.number().int().meta({
    description:
      "Credits taken in the bucket (ledger entries written in it): reservations, less the unused part released when a task succeeded for less.",
  }),
  credits_refunded: z.number().int().meta({ description: "Credits given back for failed and canceled tasks." }),
};

const creditsGranted = {
  credits_granted: z.number().int().meta({ description: "Operator grants less operator debits." }),
};

export const UsageCountsSchema = z.object({ ...taskCounts, ...credits, ...creditsGranted }).meta({ id: "UsageCounts" });

export const UsageBucketSchema = z
  .object({
    start: z.string().meta({ description: "The bucket's start (UTC); it lasts one day or one hour." }),
    ...taskCounts,
    ...credits,
    ...creditsGranted,
  })
  .meta({ id: "UsageBucket" });

const usageFields = {
  object: z.literal("usage"),
  granularity: z.enum(["day", "hour"]),
  start: z
    .string()
    .meta({ description: "Start of the first bucket (inclusive).", example: "2026-11-07T00:00:00.000Z" }),
  end: z.string().meta({ description: "End of the last bucket (exclusive).", example: "2026-12-07T00:00:00.000Z" }),
  data: z
    .array(UsageBucketSchema)
    .meta({ description: "Every bucket of the range, oldest first, empty ones as zeros." }),
  totals: UsageCountsSchema,
};

export const UsageSchema = z.object(usageFields).meta({ id: "Usage" });

export const AdminUsageSchema = z
  .object({
    ...usageFields,
    account_id: z.string().nullable().meta({ description: "The account_id filter, or null for every account." }),
    by_account: z.array(
      z.object({ account_id: z.string(), name: z.string().nullable(), ...taskCounts, ...credits, ...creditsGranted }),
    ),
    by_provider: z.array(
      z.object({
        provider: z.string().nullable().meta({ description: "null: tasks that never reached a provider." }),
        ...taskCounts,
        ...credits,
      }),
    ),
    refunds: z.object({
      count: z.number().int(),
      credits: z.number().int(),
      by_reason: z.array(
        z.object({ reason: z.string().nullable(), count: z.number().int(), credits: z.number().int() }),
      ),
    }),
  })
  .meta({ id: "AdminUsage" });

export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;
export type LedgerEntryList = z.infer<typeof LedgerEntryListSchema>;
export type UsageCounts = z.infer<typeof UsageCountsSchema>;
export type UsageBucket = z.infer<typeof UsageBucketSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type AdminUsage = z.infer<typeof AdminUsageSchema>;
