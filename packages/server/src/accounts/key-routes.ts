/**
 * The account's own API keys through the public API (issue #17): list, create (the secret is in
 * the create answer only) and revoke, all under the `keys:manage` scope.
 *
 * A key can only hand out what it holds: a new key's scopes must be a subset of the caller's
 * (else 403 api_scope_denied), and when the caller expires, the new key must expire no later
 * (else 400; left out, it inherits the caller's expiry). Without that, `keys:manage` would let
 * a narrow or short-lived key mint a broad or everlasting one.
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { authOf, requireScope } from "../http/auth.js";
import { readJsonBody } from "../http/body.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import type { Clock } from "../util/clock.js";
import { ALL_SCOPES, type Scope } from "./keys.js";
import type { AccountService, ApiKeyInfo } from "./service.js";

export const KEY_PATHS: [string, string[]][] = [
  ["/api/v1/keys", ["GET", "POST"]],
  ["/api/v1/keys/:id", ["DELETE"]],
];

const CreateKeyBody = z
  .object({
    name: z.string().trim().min(1).max(200).nullable().optional(),
    scopes: z
      .array(z.enum(ALL_SCOPES, { error: `must be one of ${ALL_SCOPES.join(", ")}` }))
      .min(1)
      .optional(),
    expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
  })
  .strict();

function invalid(path: string, issue: string): ApiError {
  return new ApiError("validation_failed", `Invalid request: ${path} ${issue}.`, { details: [{ path, issue }] });
}

function parseCreateBody(body: unknown): z.infer<typeof CreateKeyBody> {
  const result = CreateKeyBody.safeParse(body);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: i.path.join("."), issue: i.message }));
  const first = details[0];
  throw new ApiError("validation_failed", `Invalid request: ${first ? `${first.path} ${first.issue}` : "bad body"}.`, {
    details,
  });
}

/** The public shape of a key: never its secret or hash. */
function serialize(key: ApiKeyInfo) {
  return { object: "api_key" as const, ...key };
}

/**
 * The new key's scopes: those asked for, which the caller must all hold; by default the caller's
 * own minus `keys:manage` (a key made for a script should not mint keys unless asked to).
 */
function grantedScopes(asked: Scope[] | undefined, held: ReadonlySet<Scope>): Scope[] {
  if (asked === undefined) {
    const inherited = ALL_SCOPES.filter((s) => held.has(s) && s !== "keys:manage");
    // A key holding only keys:manage has nothing else to pass on.
    return inherited.length > 0 ? inherited : ["keys:manage"];
  }
  const missing = [...new Set(asked)].filter((s) => !held.has(s));
  if (missing.length > 0) {
    throw new ApiError(
      "api_scope_denied",
      `A key can only grant scopes it holds itself; this one lacks ${missing.join(", ")}.`,
    );
  }
  return ALL_SCOPES.filter((s) => asked.includes(s));
}

/** The new key's expiry: in the future, and no later than the caller's own when it has one. */
function grantedExpiry(asked: string | null | undefined, callerExpiry: string | null, clock: Clock): string | null {
  const expiresAt = asked ? new Date(asked).toISOString() : null;
  if (expiresAt !== null && expiresAt <= clock.now().toISOString())
    throw invalid("expires_at", "must be in the future");
  if (callerExpiry === null) return expiresAt;
  if (asked === undefined) return callerExpiry;
  if (expiresAt === null || expiresAt > callerExpiry) {
    throw invalid("expires_at", `must be no later than this key's own expiry (${callerExpiry})`);
  }
  return expiresAt;
}

export function mountKeyRoutes(app: Hono<AppEnv>, deps: { accounts: AccountService; clock: Clock }) {
  const { accounts, clock } = deps;
  const scope = requireScope("keys:manage");

  /** The calling key as stored (its expiry is not part of the authentication result). */
  const callerOf = async (c: Context<AppEnv>) => {
    const { accountId, keyId } = authOf(c);
    const caller = await accounts.getKey(accountId, keyId);
    if (!caller) throw new ApiError("api_key_invalid", "The API key could not be verified.");
    return caller;
  };

  app.get("/api/v1/keys", scope, async (c) => {
    const q = parseListQuery(c, {});
    const page = await accounts.listKeysPage(authOf(c).accountId, {
      limit: q.limit,
      ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}),
    });
    return c.json({ object: "list", data: page.data.map(serialize), has_more: page.has_more });
  });

  app.post("/api/v1/keys", scope, async (c) => {
    const body = parseCreateBody(await readJsonBody(c));
    const auth = authOf(c);
    const caller = await callerOf(c);
    const scopes = grantedScopes(body.scopes, auth.scopes);
    const expiresAt = grantedExpiry(body.expires_at, caller.expires_at, clock);
    const created = await accounts.createKey(auth.accountId, { scopes, expiresAt, name: body.name ?? null });
    return c.json(serialize(created), 201);
  });

  // Revoking is idempotent (a revoked key answers with its first revocation time) and may name
  // the calling key itself: the answer is sent, and the key's next request is refused.
  app.delete("/api/v1/keys/:id", scope, async (c) => {
    const key = await accounts.revokeKey(c.req.param("id"), authOf(c).accountId);
    if (!key) throw new ApiError("not_found", "API key not found.");
    return c.json(serialize(key));
  });
}
