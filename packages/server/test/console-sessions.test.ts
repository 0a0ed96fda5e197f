/**
 * The web console's sessions (console/sessions.ts, console/session-routes.ts): sign-in with an
 * API key or the admin token sets an HttpOnly, SameSite=Strict cookie that then stands for that
 * key on /api/v1 and for the token on /admin/v1; revoking the key, expiry and sign-out end it;
 * failed sign-ins are throttled; state-changing cookie requests must come from the server's origin.
 */
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, ManualClock, request, startTestServer, type TestResponse, type TestServer } from "./harness.js";

const COOKIE = "framegate_session";
const TWELVE_HOURS_S = 12 * 3600;

/** The session token from a sign-in's Set-Cookie, and that header's attributes. */
function sessionCookie(res: TestResponse): { token: string; attributes: string[] } {
  const header = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`));
  if (!header) throw new Error(`no ${COOKIE} cookie in ${res.status} ${res.text}`);
  const [pair, ...attributes] = header.split(/;\s*/);
  return { token: (pair as string).slice(COOKIE.length + 1), attributes: attributes.sort() };
}

describe("console sessions", () => {
  let t: TestServer;
  const clock = new ManualClock();

  /** A request with the session cookie (and, for writes, this server's Origin unless told). */
  const withSession = (
    token: string,
    path: string,
    init: RequestInit & { json?: unknown; origin?: string | null } = {},
  ) => {
    const { origin, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set("cookie", `${COOKIE}=${token}`);
    const sent = origin === undefined ? t.url : origin;
    if (sent !== null) headers.set("origin", sent);
    return request(t.url, path, { ...rest, headers });
  };
  const signIn = (json: unknown, headers: Record<string, string> = {}) =>
    request(t.url, "/console/api/session", { json, headers });

  beforeAll(async () => {
    t = await startTestServer({}, undefined, { clock });
  });
  afterAll(() => t?.close());

  it("a customer signs in with a key: exact cookie, the session's JSON, the API as that key", async () => {
    const { key, keyId, accountId } = await t.createAccount(50, { scopes: ["credits:read", "generations:read"] });
    const res = await signIn({ api_key: key });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      kind: "customer",
      account_id: accountId,
      key_id: keyId,
      scopes: ["credits:read", "generations:read"],
      expires_at: expect.any(String),
    });
    expect(Date.parse(res.body.expires_at) - clock.now().getTime()).toBeGreaterThan((TWELVE_HOURS_S - 60) * 1000);
    const { token, attributes } = sessionCookie(res);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(attributes).toEqual(["HttpOnly", `Max-Age=${TWELVE_HOURS_S}`, "Path=/", "SameSite=Strict"]);

    const session = await withSession(token, "/console/api/session");
    expect(session.status).toBe(200);
    expect(session.body).toEqual(res.body);
    const credits = await withSession(token, "/api/v1/credits");
    expect(credits.status).toBe(200);
    expect(credits.body).toEqual({ current_credits: 50 });

    // Not the operator: the admin API refuses a customer's session.
    const admin = await withSession(token, "/admin/v1/accounts");
    expect(admin.status).toBe(401);
    expect(admin.body.error.code).toBe("api_key_invalid");
    // The key's scopes hold: this key cannot create.
    const create = await withSession(token, "/api/v1/generations", { json: { model: "kling-2-6", prompt: "a fox" } });
    expect(create.status).toBe(403);
    expect(create.body.error.code).toBe("api_scope_denied");
  });

  it("the operator signs in with the admin token: /admin/v1 yes, /api/v1 no", async () => {
    const res = await signIn({ admin_token: ADMIN_TOKEN });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      kind: "operator",
      account_id: null,
      key_id: null,
      scopes: [],
      expires_at: expect.any(String),
    });
    const { token } = sessionCookie(res);
    const accounts = await withSession(token, "/admin/v1/accounts");
    expect(accounts.status).toBe(200);
    expect(accounts.body.object).toBe("list");
    const credits = await withSession(token, "/api/v1/credits");
    expect(credits.status).toBe(401);
    expect(credits.body.error.code).toBe("api_key_invalid");
  });

  it("a session cannot read another account's task", async () => {
    const mine = await t.createAccount(100);
    const theirs = await t.createAccount(100);
    const task = await t.request("/api/v1/generations", {
      key: theirs.key,
      json: { model: "kling-2-6", prompt: "a quiet harbour" },
    });
    expect(task.status).toBeLessThan(300);
    const { token } = sessionCookie(await signIn({ api_key: mine.key }));
    const res = await withSession(token, `/api/v1/generations/${task.body.id}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });

  it("revoking the key ends its sessions at once", async () => {
    const { key, keyId } = await t.createAccount(10);
    const { token } = sessionCookie(await signIn({ api_key: key }));
    expect((await withSession(token, "/api/v1/credits")).status).toBe(200);
    expect((await t.admin(`/admin/v1/keys/${keyId}`, { method: "DELETE" })).status).toBe(200);
    const credits = await withSession(token, "/api/v1/credits");
    expect(credits.status).toBe(401);
    // The console's "who is signed in?" reads no session, and drops the dead cookie.
    const session = await withSession(token, "/console/api/session");
    expect(session.status).toBe(200);
    expect(session.body).toBeNull();
    expect(sessionCookie(session).attributes).toContain("Max-Age=0");
  });

  it("a session expires after CONSOLE_SESSION_TTL_HOURS", async () => {
    const { key } = await t.createAccount(10);
    const { token } = sessionCookie(await signIn({ api_key: key }));
    clock.advance((TWELVE_HOURS_S - 60) * 1000);
    expect((await withSession(token, "/api/v1/credits")).status).toBe(200);
    clock.advance(120_000);
    const res = await withSession(token, "/api/v1/credits");
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("api_key_invalid");
    expect(res.body.error.message).toMatch(/expired/);
  });

  it("sign-out revokes the session and clears the cookie; it needs this server's Origin", async () => {
    const { key } = await t.createAccount(10);
    const { token } = sessionCookie(await signIn({ api_key: key }));
    const foreign = await withSession(token, "/console/api/session", {
      method: "DELETE",
      origin: "https://evil.example",
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe("forbidden");
    expect((await withSession(token, "/console/api/session")).status).toBe(200);

    const out = await withSession(token, "/console/api/session", { method: "DELETE" });
    expect(out.status).toBe(204);
    const cleared = sessionCookie(out);
    expect(cleared.token).toBe("");
    expect(cleared.attributes).toContain("Max-Age=0");
    expect((await withSession(token, "/console/api/session")).body).toBeNull();
    expect((await withSession(token, "/api/v1/credits")).status).toBe(401);
  });

  it("GET with no cookie or an unknown one is 200 null (no error to log), the same answer for both", async () => {
    const none = await request(t.url, "/console/api/session");
    expect(none.status).toBe(200);
    expect(none.text).toBe("null");
    expect(none.headers.getSetCookie()).toEqual([]);
    const unknown = await withSession("x".repeat(43), "/console/api/session");
    expect(unknown.status).toBe(200);
    expect(unknown.text).toBe("null");
    expect(sessionCookie(unknown).token).toBe("");
    // Signing out without a session is still an error: there is nothing to end.
    const out = await request(t.url, "/console/api/session", { method: "DELETE", headers: { origin: t.url } });
    expect(out.status).toBe(401);
    expect(out.body.error.code).toBe("api_key_missing");
  });

  it("a bad sign-in body is 400; a wrong key or token 401; neither sets a cookie", async () => {
    for (const body of [{}, { api_key: "k", admin_token: "t" }, { api_key: 5 }, { apikey: "x" }]) {
      const res = await signIn(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    const wrongKey = await signIn({ api_key: `rvya_sk_${"A".repeat(43)}` });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.body.error.code).toBe("api_key_invalid");
    expect(wrongKey.headers.getSetCookie()).toEqual([]);
    const wrongToken = await signIn({ admin_token: "not-the-token" });
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.body.error.code).toBe("api_key_invalid");
    // A sign-in from a foreign page is refused outright.
    const { key } = await t.createAccount(1);
    const foreign = await signIn({ api_key: key }, { origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe("forbidden");
    expect(foreign.headers.getSetCookie()).toEqual([]);
  });

  describe("the Origin check on cookie-authenticated writes", () => {
    it("/api/v1: without Origin or with a foreign one 403 and nothing changes; with this origin it works", async () => {
      const { key } = await t.createAccount(100);
      const { token } = sessionCookie(await signIn({ api_key: key }));
      const body = { json: { model: "kling-2-6", prompt: "a red kite" } };
      for (const origin of [null, "https://evil.example", "null", t.url.replace("127.0.0.1", "localhost")]) {
        const res = await withSession(token, "/api/v1/generations", { ...body, origin });
        expect(res.status, String(origin)).toBe(403);
        expect(res.body.error.code).toBe("forbidden");
        expect(res.body.error.message).toMatch(/Origin check failed/);
      }
      const list = await withSession(token, "/api/v1/generations");
      expect(list.body.data).toEqual([]);
      expect((await withSession(token, "/api/v1/credits")).body.current_credits).toBe(100);

      const created = await withSession(token, "/api/v1/generations", body);
      expect(created.status).toBeLessThan(300);
      expect((await withSession(token, "/api/v1/generations")).body.data).toHaveLength(1);
    });

    it("/admin/v1: an operator session's write needs this origin too", async () => {
      const { accountId } = await t.createAccount(5);
      const { token } = sessionCookie(await signIn({ admin_token: ADMIN_TOKEN }));
      const grant = { json: { amount: 7, reason: "console" } };
      const refused = await withSession(token, `/admin/v1/accounts/${accountId}/credits`, { ...grant, origin: null });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("forbidden");
      expect((await t.admin(`/admin/v1/accounts/${accountId}`)).body.credits).toBe(5);
      const ok = await withSession(token, `/admin/v1/accounts/${accountId}/credits`, grant);
      expect(ok.status).toBeLessThan(300);
      expect((await t.admin(`/admin/v1/accounts/${accountId}`)).body.credits).toBe(12);
    });

    it("bearer requests are never Origin-checked, and the header wins over a cookie", async () => {
      const one = await t.createAccount(100);
      const other = await t.createAccount(100);
      const { token } = sessionCookie(await signIn({ api_key: one.key }));
      const res = await request(t.url, "/api/v1/generations", {
        key: other.key,
        json: { model: "kling-2-6", prompt: "a green hill" },
        headers: { origin: "https://evil.example", cookie: `${COOKIE}=${token}` },
      });
      expect(res.status).toBeLessThan(300);
      const credits = await request(t.url, "/api/v1/credits", {
        key: other.key,
        headers: { cookie: `${COOKIE}=${token}` },
      });
      expect(credits.body.current_credits).toBeLessThan(100);
      expect((await withSession(token, "/api/v1/credits")).body.current_credits).toBe(100);
    });
  });
});

describe("console sessions: throttling, https and ADMIN_TOKEN changes", () => {
  it("repeated failed sign-ins are throttled (429 with Retry-After), the right key included", async () => {
    const t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "3" });
    try {
      const { key } = await t.createAccount(1);
      const statuses: number[] = [];
      let last: TestResponse | undefined;
      for (let i = 0; i < 4; i++) {
        last = await request(t.url, "/console/api/session", { json: { api_key: `rvya_sk_${"B".repeat(43)}` } });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(last?.headers.get("retry-after")).toMatch(/^\d+$/);
      const right = await request(t.url, "/console/api/session", { json: { api_key: key } });
      expect(right.status).toBe(429);
      expect(right.headers.getSetCookie()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it("guessing session cookies on GET is throttled like failed sign-ins; no cookie is never charged", async () => {
    const t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "3" });
    try {
      const { key } = await t.createAccount(1);
      const { token } = sessionCookie(await request(t.url, "/console/api/session", { json: { api_key: key } }));
      const withCookie = (value: string) =>
        request(t.url, "/console/api/session", { headers: { cookie: `${COOKIE}=${value}` } });
      // Asking without a cookie costs nothing, however often.
      for (let i = 0; i < 5; i++) expect((await request(t.url, "/console/api/session")).status).toBe(200);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await withCookie(`${"G".repeat(42)}${i}`)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      // Once spent, the live cookie is refused too: a right guess looks like a wrong one.
      const live = await withCookie(token);
      expect(live.status).toBe(429);
      expect(live.headers.get("retry-after")).toMatch(/^\d+$/);
    } finally {
      await t.close();
    }
  });

  it("behind an https PUBLIC_BASE_URL the cookie is Secure and that origin is the one accepted", async () => {
    const t = await startTestServer({ PUBLIC_BASE_URL: "https://console.example.test" });
    try {
      // t.url is the public address now: talk to the listener itself.
      const local = `http://127.0.0.1:${(t.server.httpServer?.address() as AddressInfo | undefined)?.port}`;
      const res = await request(local, "/console/api/session", { json: { admin_token: ADMIN_TOKEN } });
      expect(res.status).toBe(201);
      const { token, attributes } = sessionCookie(res);
      expect(attributes).toEqual(["HttpOnly", `Max-Age=${TWELVE_HOURS_S}`, "Path=/", "SameSite=Strict", "Secure"]);
      const headers = (origin: string) => ({ cookie: `${COOKIE}=${token}`, origin });
      const own = await request(local, "/console/api/session", { method: "DELETE", headers: headers(local) });
      expect(own.status).toBe(403);
      const pub = await request(local, "/console/api/session", {
        method: "DELETE",
        headers: headers("https://console.example.test"),
      });
      expect(pub.status).toBe(204);
    } finally {
      await t.close();
    }
  });

  it("a new ADMIN_TOKEN ends the operator sessions made with the old one", async () => {
    const t = await startTestServer();
    // A second server on the same store with another token (a restart after rotating it).
    const rotated = await startTestServer({ ADMIN_TOKEN: "another-admin-token-0123456789abcdef012345" }, t.dataDir);
    try {
      const { token } = sessionCookie(
        await request(t.url, "/console/api/session", { json: { admin_token: ADMIN_TOKEN } }),
      );
      const cookie = { cookie: `${COOKIE}=${token}` };
      expect((await request(t.url, "/admin/v1/accounts", { headers: cookie })).status).toBe(200);
      const res = await request(rotated.url, "/admin/v1/accounts", { headers: cookie });
      expect(res.status).toBe(401);
      expect(res.body.error.message).toMatch(/admin token has changed/);
    } finally {
      await rotated.close();
      await t.close();
    }
  });
});
