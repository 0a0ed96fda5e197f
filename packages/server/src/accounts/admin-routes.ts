/** Operator API under /admin/v1, authenticated with ADMIN_TOKEN (api-contract §9). */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { bearerToken, sameSecret } from "../http/bearer.js";
import { readJsonBody } from "../http/body.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import type { RateLimits } from "../http/rate-limit.js";
import { ALL_SCOPES } from "./keys.js";
import type { AccountService } from "./service.js";

const CreateAccountBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    credits: z.number().int().min(0).max(1_000_000_000).default(0),
  })
  .strict();

const CreateKeyBody = z
  .object({
    scopes: z
      .array(z.enum(ALL_SCOPES, { error: `must be one of ${ALL_SCOPES.join(", ")}` }))
      .min(1)
      .optional(),
    expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
    name: z.string().max(200).nullable().optional(),
  })
  .strict();

const GrantBody = z
  .object({
    amount: z
      .number()
      .int()
      .refine((n) => n !== 0, "must not be 0")
      .refine((n) => Math.abs(n) <= 1_000_000_000, "is too large"),
    reason: z.string().max(500).optional(),
  })
  .strict();

/** A positive whole number up to `max`, or null (back to the server default). */
const override = (max: number) => z.number().int().min(1).max(max).nullable().optional();

// Each field left out stays as it is; null puts the account back on the server default
// (ACCOUNT_MAX_RUNNING_TASKS, ACCOUNT_MAX_WEBHOOK_ENDPOINTS, ACCOUNT_MAX_FILE_BYTES, ACCOUNT_MAX_FILES).
const UpdateAccountBody = z
  .object({
    max_running_tasks: override(10_000),
    max_webhook_endpoints: override(10_000),
    max_file_bytes: override(2 ** 50),
    max_files: override(10_000_000),
  })
  .strict();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: i.path.join("."), issue: i.message }));
  const first = details[0];
  throw new ApiError("validation_failed", `Invalid request: ${first ? `${first.path} ${first.issue}` : "bad body"}.`, {
    details,
  });
}

/** True when an operator's console session cookie authenticates the request, false for no cookie. */
export type OperatorSessionCheck = (c: Context<AppEnv>) => Promise<boolean>;

/** How failed admin authentication is throttled: the public API's limits, per client address. */
export interface AdminThrottle {
  rateLimits: RateLimits;
  clientAddress: (c: Context<AppEnv>) => string;
}

/**
 * Checks the admin token. A missing or wrong token is charged to the caller's address (in the
 * read bucket, under a subject of its own so admin guesses and public traffic do not share a
 * budget); a correct one costs nothing. Once the budget is spent every request from that
 * address gets 429 until the window passes, the correct token included: were the right token
 * still let through, a brute-forcer could keep guessing past the limit and recognise the hit
 * by its 200.
 */
function requireAdmin(
  token: string | undefined,
  throttle: AdminThrottle,
  fromSession?: OperatorSessionCheck,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!token) throw new ApiError("not_found", "The admin API is disabled (ADMIN_TOKEN is not set).");
    const subject = `ip-admin:${throttle.clientAddress(c)}`;
    await throttle.rateLimits.assertAvailable("read", subject);
    const header = c.req.header("authorization");
    // Without an Authorization header, an operator's console session cookie stands for the token.
    if (!header && fromSession) {
      let signedIn: boolean;
      try {
        signedIn = await fromSession(c);
      } catch (error) {
        // A dead session is charged like a wrong token; a failed Origin check (403) is not.
        if (!(error instanceof ApiError) || error.status !== 401) throw error;
        const headers = await throttle.rateLimits.consume("read", subject);
        throw new ApiError(error.code, error.message, { headers });
      }
      if (signedIn) return next();
    }
    const presented = bearerToken(header);
    if (!presented || !sameSecret(presented, token)) {
      // The 401 carries the limit headers; the failure that spends the budget is answered 429.
      const headers = await throttle.rateLimits.consume("read", subject);
      throw presented
        ? new ApiError("api_key_invalid", "The admin token is not valid.", { headers })
        : new ApiError("api_key_missing", "The admin API needs Authorization: Bearer <ADMIN_TOKEN>.", { headers });
    }
    await next();
  };
}

export function mountAdminRoutes(
  app: Hono<AppEnv>,
  deps: {
    accounts: AccountService;
    adminToken: string | undefined;
    operatorSession?: OperatorSessionCheck;
  } & AdminThrottle,
) {
  const { accounts } = deps;
  app.use("/admin/v1/*", requireAdmin(deps.adminToken, deps, deps.operatorSession));

  app.post("/admin/v1/accounts", async (c) => {
    const body = parse(CreateAccountBody, await readJsonBody(c));
    const account = await accounts.createAccount({ name: body.name, credits: body.credits });
    return c.json(account, 201);
  });

  app.get("/admin/v1/accounts", async (c) => {
    const q = parseListQuery(c, {});
    const page = await accounts.listAccountsPage({
      limit: q.limit,
      ...(q.startingAfter ? { startingAfter: q.startingAfter } : {}),
    });
    return c.json({ object: "list", ...page });
  });

  app.get("/admin/v1/accounts/:id", async (c) => {
    const account = await accounts.getAccount(c.req.param("id"));
    if (!account) throw new ApiError("not_found", "Account not found.");
    return c.json(account);
  });

  app.patch("/admin/v1/accounts/:id", async (c) => {
    const body = parse(UpdateAccountBody, await readJsonBody(c));
    if (Object.keys(body).length === 0) {
      const fields = Object.keys(UpdateAccountBody.shape).join(", ");
      throw new ApiError("validation_failed", `Invalid request: set at least one of ${fields}.`, {
        details: [{ path: "", issue: `set at least one of ${fields}` }],
      });
    }
    const account = await accounts.updateLimits(c.req.param("id"), body);
    if (!account) throw new ApiError("not_found", "Account not found.");
    return c.json(account);
  });

  app.post("/admin/v1/accounts/:id/keys", async (c) => {
    const body = parse(CreateKeyBody, await readJsonBody(c));
    const key = await accounts.createKey(c.req.param("id"), {
      ...(body.scopes ? { scopes: body.scopes } : {}),
      expiresAt: body.expires_at ? new Date(body.expires_at).toISOString() : null,
      name: body.name ?? null,
    });
    return c.json(key, 201);
  });

  app.get("/admin/v1/accounts/:id/keys", async (c) => {
    const id = c.req.param("id");
    if (!(await accounts.getAccount(id))) throw new ApiError("not_found", "Account not found.");
    return c.json({ object: "list", data: await accounts.listKeys(id) });
  });

  app.delete("/admin/v1/keys/:keyId", async (c) => {
    const key = await accounts.revokeKey(c.req.param("keyId"));
    if (!key) throw new ApiError("not_found", "API key not found.");
    return c.json(key);
  });

  app.post("/admin/v1/accounts/:id/credits", async (c) => {
    const body = parse(GrantBody, await readJsonBody(c));
    const credits = await accounts.grant(c.req.param("id"), body.amount, body.reason ?? null);
    return c.json({ credits });
  });
}
