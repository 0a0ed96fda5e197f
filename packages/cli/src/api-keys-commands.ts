/**
 * `framegate api-keys list|create|revoke`: the signed-in account's API keys through the public
 * API (scope keys:manage). Named apart from the operator's `framegate keys`, which opens the
 * store directly and works on any account.
 */
import { API_KEY_SCOPES as CONTRACT_SCOPES } from "@framegate/contract";
import type { ApiKey, ApiKeyScope } from "@framegate/sdk";
import type { ApiContext } from "./api.js";
import { usageError } from "./output.js";
import { collect, formatTable, MAX_PAGE_SIZE, parseLimit } from "./pages.js";

/** The scopes a key can hold: the contract's list, which the server checks against too. */
export const API_KEY_SCOPES: readonly ApiKeyScope[] = CONTRACT_SCOPES;

export interface ApiKeysCreateOptions {
  name?: string;
  scopes?: string;
  expiresAt?: string;
}

/** Local checks of `api-keys create`: known scopes and an ISO 8601 expiry (the server checks the rest). */
export function checkApiKeysCreate(opts: ApiKeysCreateOptions): {
  name?: string;
  scopes?: ApiKeyScope[];
  expires_at?: string;
} {
  const scopes = opts.scopes?.split(",").map((s) => s.trim());
  const unknown = scopes?.filter((s) => !(API_KEY_SCOPES as readonly string[]).includes(s)) ?? [];
  if (unknown.length > 0 || scopes?.length === 0) {
    throw usageError(`--scopes takes a comma-separated list of ${API_KEY_SCOPES.join(", ")} (got "${opts.scopes}")`);
  }
  if (opts.expiresAt !== undefined && Number.isNaN(Date.parse(opts.expiresAt))) {
    throw usageError(`--expires-at must be an ISO 8601 date-time, e.g. 2027-01-01T00:00:00Z (got "${opts.expiresAt}")`);
  }
  return {
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    ...(scopes ? { scopes: scopes as ApiKeyScope[] } : {}),
    ...(opts.expiresAt !== undefined ? { expires_at: opts.expiresAt } : {}),
  };
}

function state(key: ApiKey, now: string): string {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && key.expires_at <= now) return "expired";
  return "active";
}

export async function apiKeysList(ctx: ApiContext, opts: { limit?: string }): Promise<void> {
  const limit = parseLimit(opts.limit);
  const list = await collect(
    ctx.client.keys.list({ limit: Math.min(limit, MAX_PAGE_SIZE) }, { signal: ctx.signal }),
    limit,
  );
  if (list.data.length === 0) {
    ctx.out.result(list, "no API keys");
    return;
  }
  const now = new Date().toISOString();
  const rows = list.data.map((k) => [
    k.id,
    `${k.prefix}…`,
    k.name ?? "-",
    state(k, now),
    k.expires_at ?? "never",
    k.scopes.join(",") || "none",
  ]);
  const more = list.has_more ? `\n… more than ${limit}: raise --limit` : "";
  ctx.out.result(list, `${formatTable(["ID", "PREFIX", "NAME", "STATE", "EXPIRES", "SCOPES"], rows)}${more}`);
}

export async function apiKeysCreate(ctx: ApiContext, opts: ApiKeysCreateOptions): Promise<void> {
  const key = await ctx.client.keys.create(checkApiKeysCreate(opts), { signal: ctx.signal });
  ctx.out.result(
    key,
    [
      `created ${key.id}${key.name ? ` (${key.name})` : ""}: ${key.scopes.join(", ")}; expires ${key.expires_at ?? "never"}`,
      "",
      `  ${key.key}`,
      "",
      "This is the only time the key is shown; store it now.",
    ].join("\n"),
  );
}

export async function apiKeysRevoke(ctx: ApiContext, id: string): Promise<void> {
  const key = await ctx.client.keys.revoke(id, { signal: ctx.signal });
  ctx.out.result(key, `revoked ${key.id} at ${key.revoked_at}`);
}
