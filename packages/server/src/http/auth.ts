import type { Context, MiddlewareHandler, Next } from "hono";
import type { Scope } from "../accounts/keys.js";
import type { AccountService, AuthenticatedKey } from "../accounts/service.js";
import { ApiError } from "../errors.js";
import { bearerToken } from "./bearer.js";
import type { AppEnv } from "./context.js";

/**
 * Resolves the Bearer key into c.var.auth; every /api/v1 route except models and openapi uses it.
 * A failed attempt first goes through `onFailure` (rate limiting by client address), so guessing
 * keys is throttled like any other traffic and the 401 carries the limit headers.
 */
export function authenticate(
  accounts: AccountService,
  onFailure: (c: Context<AppEnv>) => Promise<Record<string, string>>,
  /**
   * The web console's session cookie (console/session-routes.ts), asked only when there is no
   * Authorization header: the key the session acts as, or undefined for no cookie.
   */
  fromSession?: (c: Context<AppEnv>) => Promise<AuthenticatedKey | undefined>,
): MiddlewareHandler<AppEnv> {
  const slowPath = async (c: Context<AppEnv>, next: Next, header: string | undefined) => {
    let auth: AuthenticatedKey;
    try {
      const viaSession = !header && fromSession ? await fromSession(c) : undefined;
      if (viaSession) auth = viaSession;
      else if (!header) throw new ApiError("api_key_missing", "A valid Bearer API key is required.");
      else auth = await bearerKey(accounts, header);
    } catch (error) {
      // Only failed authentication (401) is charged; a failed Origin check (403) is not a guess.
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      const limitHeaders = await onFailure(c);
      throw new ApiError(error.code, error.message, { headers: { ...error.headers, ...limitHeaders } });
    }
    c.set("auth", auth);
    await next();
  };
  // Not async: a key this process has cached passes on next()'s promise without a frame of its own.
  return (c, next) => {
    const header = c.req.header("authorization");
    const token = header && bearerToken(header);
    const cached = token ? accounts.cachedKey(token) : undefined;
    if (!cached) return slowPath(c, next, header);
    c.set("auth", cached);
    return next();
  };
}

function bearerKey(accounts: AccountService, header: string): Promise<AuthenticatedKey> {
  const token = bearerToken(header);
  if (!token) {
    throw new ApiError("api_key_missing", "A valid Bearer API key is required (Authorization: Bearer rvya_sk_…).");
  }
  return accounts.authenticate(token);
}

export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  // Not async: a check that passes hands on next()'s promise instead of awaiting it in a frame
  // of its own (every keyed request goes through here).
  return (c, next) => {
    const auth = c.get("auth");
    if (!auth) throw new ApiError("api_key_missing", "A valid Bearer API key is required.");
    if (!auth.scopes.has(scope)) {
      throw new ApiError("api_scope_denied", `This API key lacks the ${scope} scope.`);
    }
    return next();
  };
}

export function authOf(c: { get(key: "auth"): AppEnv["Variables"]["auth"] }) {
  const auth = c.get("auth");
  if (!auth) throw new ApiError("api_key_missing", "A valid Bearer API key is required.");
  return auth;
}
