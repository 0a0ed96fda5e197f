/**
 * The console's session API (POST/GET/DELETE /console/api/session) and the two hooks through which
 * a session cookie authenticates requests that carry no Authorization header: as the API key it
 * was made from on /api/v1 (http/auth.ts), as the admin token on /admin/v1
 * (accounts/admin-routes.ts). These routes are the console's, not part of the public API: they
 * stay out of the OpenAPI document.
 *
 * CSRF: the cookie is SameSite=Strict, and on top of that every state-changing request that the
 * cookie authenticates must carry an Origin equal to the server's own (assertSameOrigin). Bearer
 * requests are never checked: a browser cannot attach someone's Authorization header for them.
 */
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import type { AuthenticatedKey } from "../accounts/service.js";
import { ApiError } from "../errors.js";
import { readJsonBody } from "../http/body.js";
import type { AppEnv } from "../http/context.js";
import type { RateLimits } from "../http/rate-limit.js";
import type { ConsoleSessions, SignInCredentials } from "./sessions.js";

export const SESSION_COOKIE = "framegate_session";
export const SESSION_PATH = "/console/api/session";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const SignInBody = z.union([
  z.object({ api_key: z.string().min(1).max(256) }).strict(),
  z.object({ admin_token: z.string().min(1).max(1024) }).strict(),
]);

export interface ConsoleSessionConfig {
  sessions: ConsoleSessions;
  /** PUBLIC_BASE_URL when set: its origin is the only one accepted, and https makes the cookie Secure. */
  publicBaseUrl: string | undefined;
}

/** The origin state-changing cookie requests must come from: PUBLIC_BASE_URL's, else the request's own. */
function expectedOrigin(c: Context<AppEnv>, publicBaseUrl: string | undefined): string {
  return new URL(publicBaseUrl ?? c.req.url).origin;
}

/**
 * Refuses a state-changing request whose Origin is missing or foreign (403 forbidden). With
 * `onlyWhenSent`, a request without Origin passes (sign-in: no session exists yet to abuse).
 */
export function assertSameOrigin(c: Context<AppEnv>, publicBaseUrl: string | undefined, onlyWhenSent = false): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const origin = c.req.header("origin");
  if (origin === undefined && onlyWhenSent) return;
  const expected = expectedOrigin(c, publicBaseUrl);
  if (origin !== expected) {
    throw new ApiError(
      "forbidden",
      `The Origin check failed: a request authenticated by the console's session cookie must come from ${expected} (Origin: ${origin === undefined ? "missing" : origin.slice(0, 200)}).`,
    );
  }
}

/**
 * /api/v1: the key a customer session acts as, or undefined when there is no session cookie (then
 * the caller answers api_key_missing as before). Throws 401 for a dead session or an operator's
 * one, 403 when the Origin check fails.
 */
export function customerSessionAuth(config: ConsoleSessionConfig) {
  return async (c: Context<AppEnv>): Promise<AuthenticatedKey | undefined> => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) return undefined;
    assertSameOrigin(c, config.publicBaseUrl);
    const session = await config.sessions.resolve(token);
    if (session.kind !== "customer") {
      throw new ApiError("api_key_invalid", "An operator's console session cannot call the public API.");
    }
    return session.key;
  };
}

/**
 * /admin/v1: true when an operator session cookie authenticates the request, false when there is
 * no cookie. Throws 401 for a dead session or a customer's one, 403 when the Origin check fails.
 */
export function operatorSessionAuth(config: ConsoleSessionConfig) {
  return async (c: Context<AppEnv>): Promise<boolean> => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) return false;
    assertSameOrigin(c, config.publicBaseUrl);
    const session = await config.sessions.resolve(token);
    if (session.kind !== "operator") {
      throw new ApiError("api_key_invalid", "A customer's console session cannot call the admin API.");
    }
    return true;
  };
}

export function mountConsoleSessionRoutes(
  app: Hono<AppEnv>,
  deps: ConsoleSessionConfig & { rateLimits: RateLimits; clientAddress: (c: Context<AppEnv>) => string },
): void {
  const { sessions, publicBaseUrl } = deps;
  const secure = publicBaseUrl?.startsWith("https:") === true;
  const clearSessionCookie = (c: Context<AppEnv>) =>
    deleteCookie(c, SESSION_COOKIE, {
      path: "/",
      httpOnly: true,
      sameSite: "Strict",
      ...(secure ? { secure: true } : {}),
    });

  app.post(SESSION_PATH, async (c) => {
    assertSameOrigin(c, publicBaseUrl, true);
    const parsed = SignInBody.safeParse(await readJsonBody(c));
    if (!parsed.success) {
      throw new ApiError("validation_failed", 'The body must be {"api_key": "rvya_sk_…"} or {"admin_token": "…"}.', {
        details: [{ path: "", issue: "expected exactly one of api_key, admin_token" }],
      });
    }
    const credentials: SignInCredentials =
      "api_key" in parsed.data ? { apiKey: parsed.data.api_key } : { adminToken: parsed.data.admin_token };
    // Failed sign-ins are throttled per client address like failed API and admin auth, under
    // the subjects those use, so the console is no way around either budget. Once spent, even
    // the right secret gets 429 (as on the admin API): a hit must not show as a 201.
    const subject = `${"apiKey" in credentials ? "ip" : "ip-admin"}:${deps.clientAddress(c)}`;
    await deps.rateLimits.assertAvailable("read", subject);
    let result: Awaited<ReturnType<ConsoleSessions["signIn"]>>;
    try {
      result = await sessions.signIn(credentials);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      const headers = await deps.rateLimits.consume("read", subject);
      throw new ApiError(error.code, error.message, { headers: { ...error.headers, ...headers } });
    }
    setCookie(c, SESSION_COOKIE, result.token, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      maxAge: sessions.ttlSeconds,
      ...(secure ? { secure: true } : {}),
    });
    return c.json(result.view, 201);
  });

  /**
   * "Who is signed in?", asked by every console page load. No session is an ordinary answer here
   * (200 and JSON null), not a 401 that every browser logs as an error: the console is expected
   * to be opened signed out. Absent, unknown, expired and ended cookies all read the same null,
   * so the answer tells a caller nothing about a token beyond "not a live session". A cookie
   * that is no live session is cleared and counts as a failed guess against the caller's address
   * (the `ip:` budget, like a wrong API key); once that budget is spent any cookie gets 429
   * before it is looked up, so a right guess cannot show as a 200 either. No cookie charges
   * nothing: there is nothing to guess.
   */
  app.get(SESSION_PATH, async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) return c.json(null);
    const subject = `ip:${deps.clientAddress(c)}`;
    await deps.rateLimits.assertAvailable("read", subject);
    try {
      return c.json((await sessions.resolve(token)).view);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      const headers = await deps.rateLimits.consume("read", subject);
      clearSessionCookie(c);
      return c.json(null, 200, headers);
    }
  });

  app.delete(SESSION_PATH, async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) throw new ApiError("api_key_missing", "No console session: sign in first.");
    assertSameOrigin(c, publicBaseUrl);
    await sessions.revoke(token);
    clearSessionCookie(c);
    return c.body(null, 204);
  });

  app.all(SESSION_PATH, (c) => {
    throw new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}.`, {
      headers: { Allow: "GET, POST, DELETE" },
    });
  });
}
