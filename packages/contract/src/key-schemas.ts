/**
 * Wire objects of the account's API keys (GET/POST /api/v1/keys, DELETE /api/v1/keys/{id}) and the
 * scope catalog itself: the server's key checks, the OpenAPI document, the SDK and the CLI all read
 * it from here.
 */
import { z } from "zod";

/** Every scope a key can hold (api-contract §3; `chat:*` waits for a chat API). */
export const API_KEY_SCOPES = [
  "models:read",
  "generations:create",
  "generations:read",
  "files:create",
  "files:read",
  "credits:read",
  "webhooks:manage",
  "keys:manage",
] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

const timestamp = z.iso.datetime({ offset: true });

export const ApiKeySchema = z
  .object({
    object: z.literal("api_key"),
    id: z.string().meta({ example: "key_7Hq2Lw9vR4mT7bN1cZpX3a" }),
    account_id: z.string(),
    name: z.string().nullable(),
    prefix: z.string().meta({
      description: "The first 12 characters of the key, to recognise it; the rest is never shown again.",
      example: "rvya_sk_Ab3d",
    }),
    scopes: z.array(z.string()).meta({ description: `Scopes this server knows: ${API_KEY_SCOPES.join(", ")}.` }),
    expires_at: timestamp.nullable().meta({ description: "When the key stops working; null: never." }),
    revoked_at: timestamp.nullable().meta({ description: "When the key was revoked; null: it was not." }),
    created_at: timestamp,
  })
  .meta({ id: "ApiKey" });

export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().meta({
    description: "The secret, shown in this answer only: store it now (the server keeps only its hash).",
    example: "rvya_sk_Ab3d…",
  }),
}).meta({ id: "CreatedApiKey" });

export const ApiKeyListSchema = z
  .object({ object: z.literal("list"), data: z.array(ApiKeySchema), has_more: z.boolean() })
  .meta({ id: "ApiKeyList" });

export const CreateApiKeySchema = z
  .object({
    name: z.string().min(1).max(200).nullable().optional(),
    scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).optional().meta({
      description:
        "Each must be one the calling key holds (else 403 api_scope_denied). Default: the caller's scopes without keys:manage.",
    }),
    expires_at: timestamp.nullable().optional().meta({
      description:
        "In the future, and no later than the calling key's own expiry when it has one (else 400). Default: the caller's expiry (none if it has none).",
    }),
  })
  .strict()
  .meta({ id: "CreateApiKey" });

export type ApiKey = z.infer<typeof ApiKeySchema>;
export type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
export type ApiKeyList = z.infer<typeof ApiKeyListSchema>;
export type CreateApiKey = z.infer<typeof CreateApiKeySchema>;
