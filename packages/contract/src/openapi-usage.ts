/** The usage history routes of the OpenAPI document: the ledger, usage buckets, and the operators' report. */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { errorResponse, errors, LIST_QUERY_RULES, pageQuery } from "./openapi-common.js";
import { AdminUsageSchema, LEDGER_ENTRY_TYPES, LedgerEntryListSchema, UsageSchema } from "./usage-schemas.js";

const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

const instant = (description: string) =>
  z
    .string()
    .optional()
    .meta({
      description: `${description} An ISO 8601 date-time with Z or an offset, or a date (midnight UTC).`,
      example: "2026-12-01T00:00:00Z",
    });

const bucketQuery = {
  granularity: z.enum(["day", "hour"]).optional().meta({ description: "Bucket size (UTC).", default: "day" }),
  start: instant("Start of the range, moved back to its bucket's start. Default: 30 days (24 hours) before end."),
  end: instant(
    "End of the range (exclusive), moved forward to a bucket boundary. Default: the end of the current bucket, or 30 days (24 hours) after start. At most 31 day buckets or 168 hour buckets per request.",
  ),
};

const ledgerExample = {
  object: "list",
  data: [
    {
      id: "led_9fQ2wLk3ZsA8vB1nC4xD7e",
      object: "ledger_entry",
      type: "refund",
      amount: 25,
      balance_after: 1000,
      task_id: "task_3Hk9Lm2Qw8Er5Ty1Ui7Op4",
      reason: "generation failed: provider_error",
      created_at: "2026-12-06T14:05:40.918Z",
    },
    {
      id: "led_2Vb8kQz1LmN4pRs7TxY0aC",
      object: "ledger_entry",
      type: "reserve",
      amount: -25,
      balance_after: 975,
      task_id: "task_3Hk9Lm2Qw8Er5Ty1Ui7Op4",
      reason: null,
      created_at: "2026-12-06T14:03:11.204Z",
    },
  ],
  has_more: true,
};

const countsExample = {
  tasks_created: 12,
  tasks_succeeded: 10,
  tasks_failed: 1,
  tasks_canceled: 1,
  credits_charged: 300,
  credits_refunded: 50,
  credits_granted: 0,
};
const bucketExample = { start: "2026-12-06T00:00:00.000Z", ...countsExample };

export function registerUsagePaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  registry.registerPath({
    method: "get",
    path: "/api/v1/credits/ledger",
    operationId: "listLedgerEntries",
    tags: ["Credits"],
    summary: "List the account's ledger entries, newest first",
    description: `Every credit movement of the account, each with the balance right after it. The entries always sum to the balance of GET /api/v1/credits. ${LIST_QUERY_RULES} Scope credits:read.`,
    security,
    request: {
      query: z.object({
        ...pageQuery,
        type: z
          .string()
          .optional()
          .meta({
            description: `One or more of ${LEDGER_ENTRY_TYPES.join(", ")}: comma-separated (type=reserve,refund) or repeated.`,
          }),
        created_after: instant("Only entries created at or after this instant."),
        created_before: instant("Only entries created before this instant."),
      }),
    },
    responses: {
      200: {
        description: "A page of ledger entries",
        content: { "application/json": { schema: LedgerEntryListSchema, example: ledgerExample } },
      },
      ...errors("BadRequest"),
    },
  });

  registry.registerPath({
    method: "get",
    path: "/api/v1/usage",
    operationId: "getUsage",
    tags: ["Credits"],
    summary: "Usage per day or per hour",
    description:
      "Buckets over a time range (UTC), every bucket present, empty ones as zeros. Task counts are by the bucket the task was created in; credits are the ledger entries written in the bucket, so they add up to GET /api/v1/credits/ledger over the same range. An unknown query parameter, a malformed time or too long a range is 400 validation_failed. Scope credits:read.",
    security,
    request: { query: z.object(bucketQuery) },
    responses: {
      200: {
        description: "Usage buckets and their totals",
        content: {
          "application/json": {
            schema: UsageSchema,
            example: {
              object: "usage",
              granularity: "day",
              start: "2026-12-06T00:00:00.000Z",
              end: "2026-12-07T00:00:00.000Z",
              data: [bucketExample],
              totals: countsExample,
            },
          },
        },
      },
      ...errors("BadRequest"),
    },
  });

  const admin = registry.registerComponent("securitySchemes", "adminToken", {
    type: "http",
    scheme: "bearer",
    description: "The operator API's token: `Authorization: Bearer <ADMIN_TOKEN>`.",
  });
  registry.registerPath({
    method: "get",
    path: "/admin/v1/usage",
    operationId: "getAdminUsage",
    tags: ["Operator"],
    summary: "Usage across accounts (operator API)",
    description:
      "The buckets of GET /api/v1/usage over every account (or one, with account_id), plus totals over the range per account and per provider, and refunds by reason, for reconciliation. Served by the operator API (on ADMIN_PORT when set), not with an API key.",
    security: [{ [admin.name]: [] }],
    request: {
      query: z.object({
        ...bucketQuery,
        account_id: z.string().optional().meta({ description: "Only this account (404 when there is none)." }),
      }),
    },
    responses: {
      200: { description: "Usage across accounts", content: json(AdminUsageSchema) },
      ...errors("BadRequest", "NotFound"),
      429: errorResponse(
        "rate_limited: too many failed token attempts from this address; every request from it waits (Retry-After)",
        ["Retry-After"],
      ),
    },
  });
}
