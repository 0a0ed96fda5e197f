/**
 * The operator API under /admin/v1 (api-contract §9): token auth, accounts, keys, credit grants
 * and debits, validation and not-found handling, over real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, startTestServer, type TestResponse, type TestServer } from "./harness.js";

const ALL_SCOPES = [
  "models:read",
  "generations:create",
  "generations:read",
  "files:create",
  "files:read",
  "credits:read",
  "webhooks:manage",
  "keys:manage",
];
const KEY_PATTERN = /^rvya_sk_[0-9A-Za-z]{32,}$/;

function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
  expect(res.body.error.requestId).toMatch(/^req_/);
  expect(typeof res.body.error.message).toBe("string");
}

/** Every admin route, with a body that would be valid. */
const ROUTES: [string, string, unknown?][] = [
  ["POST", "/admin/v1/accounts", { name: "x", credits: 1 }],
  ["GET", "/admin/v1/accounts"],
  ["GET", "/admin/v1/accounts/acct_x"],
  ["POST", "/admin/v1/accounts/acct_x/keys", {}],
  ["GET", "/admin/v1/accounts/acct_x/keys"],
  ["DELETE", "/admin/v1/keys/key_x"],
  ["POST", "/admin/v1/accounts/acct_x/credits", { amount: 5 }],
];

describe("admin API", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      WORKER_CONCURRENCY: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
  });
  afterAll(() => t.close());

  const createAccount = async (json: unknown) => {
    const res = await t.admin("/admin/v1/accounts", { json });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  describe("authentication", () => {
    it.each(ROUTES)("%s %s without a token → 401", async (method, path, json) => {
      const res = await t.request(path, { method, ...(json !== undefined ? { json } : {}) });
      expectError(res, 401, "api_key_missing");
    });

    it.each(ROUTES)("%s %s with a wrong token → 401", async (method, path, json) => {
      const res = await t.request(path, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}x` },
        ...(json !== undefined ? { json } : {}),
      });
      expectError(res, 401, "api_key_invalid");
    });

    it("rejects a customer API key, a token prefix, and a non-Bearer scheme", async () => {
      const { key } = await t.createAccount(1);
      expectError(await t.request("/admin/v1/accounts", { key }), 401, "api_key_invalid");
      expectError(
        await t.request("/admin/v1/accounts", { headers: { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` } }),
        401,
        "api_key_invalid",
      );
      const basic = Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64");
      const res = await t.request("/admin/v1/accounts", { headers: { authorization: `Basic ${basic}` } });
      expect(res.status).toBe(401);
    });

    it("a rejected admin request changes nothing", async () => {
      const before = await t.admin("/admin/v1/accounts");
      await t.request("/admin/v1/accounts", { json: { name: "sneaky", credits: 1_000_000 } });
      await t.request("/admin/v1/accounts", {
        json: { name: "sneaky", credits: 1_000_000 },
        headers: { authorization: "Bearer not-the-token-at-all" },
      });
      const after = await t.admin("/admin/v1/accounts");
      expect(after.body.data).toEqual(before.body.data);
    });
  });

  describe("accounts", () => {
    it("creates an account: 201 {id, name, credits}", async () => {
      const res = await t.admin("/admin/v1/accounts", { json: { name: "Acme", credits: 250 } });
      expect(res.status, res.text).toBe(201);
      expect(res.body).toMatchObject({ name: "Acme", credits: 250 });
      expect(res.body.id).toMatch(/^acct_[0-9A-Za-z]+$/);
      expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    });

    it("credits default to 0", async () => {
      const account = await createAccount({ name: "Empty" });
      expect(account.credits).toBe(0);
      const got = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(got.body.credits).toBe(0);
      expect(got.body.ledger.balance).toBe(0);
      expect(got.body.ledger.ledger_sum).toBe(0);
    });

    it("lists accounts with their balances", async () => {
      const a = await createAccount({ name: "List A", credits: 10 });
      const b = await createAccount({ name: "List B", credits: 20 });
      const res = await t.admin("/admin/v1/accounts");
      expect(res.status).toBe(200);
      expect(res.body.object).toBe("list");
      const byId = new Map(res.body.data.map((x: { id: string }) => [x.id, x]));
      expect(byId.get(a.id)).toMatchObject({ id: a.id, name: "List A", credits: 10 });
      expect(byId.get(b.id)).toMatchObject({ id: b.id, name: "List B", credits: 20 });
    });

    it("pages accounts newest first with limit and starting_after, as the public lists", async () => {
      const made = [];
      for (const name of ["Page 1", "Page 2", "Page 3"]) made.push(await createAccount({ name, credits: 1 }));
      const first = await t.admin("/admin/v1/accounts?limit=2");
      expect(first.status).toBe(200);
      expect(first.body.data.map((a: { id: string }) => a.id)).toEqual([made[2]?.id, made[1]?.id]);
      expect(first.body.has_more).toBe(true);
      const next = await t.admin(`/admin/v1/accounts?limit=2&starting_after=${made[1]?.id}`);
      expect(next.body.data[0].id).toBe(made[0]?.id);
      // Walking every page visits each account once.
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await t.admin(`/admin/v1/accounts?limit=3${cursor ? `&starting_after=${cursor}` : ""}`);
        seen.push(...page.body.data.map((a: { id: string }) => a.id));
        if (!page.body.has_more) break;
        cursor = seen.at(-1);
      }
      expect(new Set(seen).size).toBe(seen.length);
      for (const a of made) expect(seen).toContain(a.id);
      expectError(await t.admin("/admin/v1/accounts?limit=0"), 400, "validation_failed");
      expectError(await t.admin("/admin/v1/accounts?limit=101"), 400, "validation_failed");
      expectError(await t.admin("/admin/v1/accounts?starting_after=acct_nope"), 400, "validation_failed");
      expectError(await t.admin("/admin/v1/accounts?name=x"), 400, "validation_failed");
    });

    it("gets one account with a ledger summary whose sum equals the balance", async () => {
      const account = await createAccount({ name: "Ledger", credits: 300 });
      const res = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: account.id, name: "Ledger", credits: 300 });
      expect(res.body.ledger).toMatchObject({ balance: 300, ledger_sum: 300, granted: 300 });
    });

    it("the ledger summary follows grants, debits and a generation's reservation", async () => {
      const account = await createAccount({ name: "Busy", credits: 100 });
      const keyRes = await t.admin(`/admin/v1/accounts/${account.id}/keys`, { json: {} });
      expect((await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: 40 } })).status).toBe(200);
      expect((await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -15 } })).status).toBe(200);
      const task = await t.request("/api/v1/generations", {
        key: keyRes.body.key,
        json: { model: "kling-2-6", prompt: "ledger check" },
      });
      expect(task.status, task.text).toBe(202);

      const res = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(res.body.credits).toBe(100 + 40 - 15 - 55);
      expect(res.body.ledger.balance).toBe(res.body.credits);
      expect(res.body.ledger.ledger_sum).toBe(res.body.credits);
      expect(res.body.ledger.reserved).toBe(55);
      expect(res.body.ledger.entries).toBe(4);
      const credits = await t.request("/api/v1/credits", { key: keyRes.body.key });
      expect(credits.body).toEqual({ current_credits: 70 });
    });
  });

  describe("keys", () => {
    let accountId: string;
    beforeAll(async () => {
      accountId = (await createAccount({ name: "Keys", credits: 100 })).id;
    });

    it("creates a key: {id, key, prefix, scopes, expires_at}, all scopes by default, and it works", async () => {
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
      expect(res.status, res.text).toBe(201);
      expect(res.body.id).toMatch(/^key_[0-9A-Za-z]+$/);
      expect(res.body.key).toMatch(KEY_PATTERN);
      // At least 32 random bytes, base62: 43 characters or more.
      expect(res.body.key.length - "rvya_sk_".length).toBeGreaterThanOrEqual(43);
      expect(res.body.prefix).toBe(res.body.key.slice(0, 12));
      expect([...res.body.scopes].sort()).toEqual([...ALL_SCOPES].sort());
      expect(res.body.expires_at).toBeNull();
      const credits = await t.request("/api/v1/credits", { key: res.body.key });
      expect(credits.body).toEqual({ current_credits: 100 });
    });

    it("every key is different", async () => {
      const keys = new Set<string>();
      for (let i = 0; i < 5; i++) {
        keys.add((await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} })).body.key);
      }
      expect(keys.size).toBe(5);
    });

    it("creates a key with narrowed scopes, a name and an expiry (normalized to UTC)", async () => {
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`, {
        json: { scopes: ["generations:read", "credits:read"], expires_at: "2999-01-02T05:04:05+02:00", name: "ci" },
      });
      expect(res.status, res.text).toBe(201);
      expect([...res.body.scopes].sort()).toEqual(["credits:read", "generations:read"]);
      expect(res.body.expires_at).toBe("2999-01-02T03:04:05.000Z");
      expect(res.body.name).toBe("ci");
      expect((await t.request("/api/v1/credits", { key: res.body.key })).status).toBe(200);
    });

    it("lists keys without the secret", async () => {
      const created = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: { name: "listed" } });
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`);
      expect(res.status).toBe(200);
      expect(res.body.object).toBe("list");
      const listed = res.body.data.find((k: { id: string }) => k.id === created.body.id);
      expect(listed).toMatchObject({
        id: created.body.id,
        prefix: created.body.prefix,
        name: "listed",
        expires_at: null,
        revoked_at: null,
      });
      for (const key of res.body.data) {
        expect(key).not.toHaveProperty("key");
        expect(key).not.toHaveProperty("key_hash");
        expect(key.prefix).toMatch(/^rvya_sk_[0-9A-Za-z]{4}$/);
      }
      expect(res.text).not.toContain(created.body.key);
      expect(res.text).not.toContain(created.body.key.slice(12));
    });

    it("another account's keys are not listed", async () => {
      const other = await createAccount({ name: "Other", credits: 0 });
      const created = await t.admin(`/admin/v1/accounts/${other.id}/keys`, { json: {} });
      const mine = await t.admin(`/admin/v1/accounts/${accountId}/keys`);
      expect(mine.body.data.map((k: { id: string }) => k.id)).not.toContain(created.body.id);
      const theirs = await t.admin(`/admin/v1/accounts/${other.id}/keys`);
      expect(theirs.body.data.map((k: { id: string }) => k.id)).toEqual([created.body.id]);
    });

    it("revokes a key: it stops working, shows revoked_at, and a second revoke keeps the first time", async () => {
      const created = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
      expect((await t.request("/api/v1/credits", { key: created.body.key })).status).toBe(200);
      const revoked = await t.admin(`/admin/v1/keys/${created.body.id}`, { method: "DELETE" });
      expect(revoked.status, revoked.text).toBe(200);
      expect(revoked.body.id).toBe(created.body.id);
      expect(revoked.body.revoked_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(revoked.body).not.toHaveProperty("key");
      const res = await t.request("/api/v1/credits", { key: created.body.key });
      expectError(res, 401, "api_key_revoked");

      await new Promise((r) => setTimeout(r, 5));
      const again = await t.admin(`/admin/v1/keys/${created.body.id}`, { method: "DELETE" });
      expect(again.status).toBe(200);
      expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
      const listed = await t.admin(`/admin/v1/accounts/${accountId}/keys`);
      const row = listed.body.data.find((k: { id: string }) => k.id === created.body.id);
      expect(row.revoked_at).toBe(revoked.body.revoked_at);
    });

    it("a chat scope (no chat API exists) → 400 validation_failed naming the scopes there are", async () => {
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: { scopes: ["chat:create"] } });
      expectError(res, 400, "validation_failed");
      expect(res.body.error.message).toContain("scopes.0");
      expect(res.body.error.message).toContain("models:read, generations:create");
      expect(res.body.error.message).not.toContain("chat:read");
    });

    it("a key stored with chat scopes (made before they were dropped) keeps working; they are not listed", async () => {
      const created = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: { name: "old" } });
      // What a key made by an earlier version holds: every scope of that time, chat:* included.
      await t.server.store.db
        .updateTable("api_keys")
        .set({ scopes: JSON.stringify([...ALL_SCOPES, "chat:create", "chat:read"]) })
        .where("id", "=", created.body.id)
        .execute();
      expect((await t.request("/api/v1/credits", { key: created.body.key })).status).toBe(200);
      expect((await t.request("/api/v1/generations", { key: created.body.key })).status).toBe(200);
      const listed = await t.admin(`/admin/v1/accounts/${accountId}/keys`);
      const row = listed.body.data.find((k: { id: string }) => k.id === created.body.id);
      expect([...row.scopes].sort()).toEqual([...ALL_SCOPES].sort());
    });

    it("revoking an unknown key → 404 not_found", async () => {
      expectError(await t.admin("/admin/v1/keys/key_doesnotexist", { method: "DELETE" }), 404, "not_found");
    });
  });

  describe("credits", () => {
    it("grants positive and negative amounts; the ledger sum stays equal to the balance", async () => {
      const account = await createAccount({ name: "Grants", credits: 100 });
      const grant = await t.admin(`/admin/v1/accounts/${account.id}/credits`, {
        json: { amount: 50, reason: "promo" },
      });
      expect(grant.status, grant.text).toBe(200);
      expect(grant.body).toEqual({ credits: 150 });
      const debit = await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -30 } });
      expect(debit.status, debit.text).toBe(200);
      expect(debit.body).toEqual({ credits: 120 });
      const got = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(got.body.credits).toBe(120);
      expect(got.body.ledger.ledger_sum).toBe(120);
      expect(got.body.ledger.entries).toBe(3);
    });

    it("a debit below 0 is refused and changes nothing; a debit to exactly 0 is allowed", async () => {
      const account = await createAccount({ name: "Debits", credits: 100 });
      const res = await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -101 } });
      expectError(res, 402, "insufficient_credits");
      const got = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(got.body.credits).toBe(100);
      expect(got.body.ledger).toMatchObject({ balance: 100, ledger_sum: 100, entries: 1 });

      const toZero = await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -100 } });
      expect(toZero.status, toZero.text).toBe(200);
      expect(toZero.body).toEqual({ credits: 0 });
      expectError(
        await t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -1 } }),
        402,
        "insufficient_credits",
      );
      const after = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(after.body.ledger).toMatchObject({ balance: 0, ledger_sum: 0, entries: 2 });
    });

    it("concurrent debits never take the balance below 0", async () => {
      const account = await createAccount({ name: "Race", credits: 100 });
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.admin(`/admin/v1/accounts/${account.id}/credits`, { json: { amount: -30 } }),
        ),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(3);
      expect(results.filter((r) => r.status === 402)).toHaveLength(7);
      const got = await t.admin(`/admin/v1/accounts/${account.id}`);
      expect(got.body.credits).toBe(10);
      expect(got.body.ledger.ledger_sum).toBe(10);
    });
  });

  describe("validation", () => {
    let accountId: string;
    beforeAll(async () => {
      accountId = (await createAccount({ name: "Validation", credits: 100 })).id;
    });

    const accountCases: [string, unknown][] = [
      ["name missing", { credits: 1 }],
      ["name empty", { name: "", credits: 1 }],
      ["name blank", { name: "   ", credits: 1 }],
      ["name not a string", { name: 5, credits: 1 }],
      ["name too long", { name: "n".repeat(201), credits: 1 }],
      ["negative credits", { name: "x", credits: -1 }],
      ["fractional credits", { name: "x", credits: 1.5 }],
      ["credits as a string", { name: "x", credits: "10" }],
      ["unknown field", { name: "x", credits: 1, plan: "pro" }],
      ["an array body", [{ name: "x" }]],
      ["a null body", null],
    ];
    it.each(accountCases)("create account: %s → 400 validation_failed", async (_name, json) => {
      // Newest first: an account this created would head the list.
      const newest = async () => (await t.admin("/admin/v1/accounts?limit=1")).body.data[0]?.id;
      const before = await newest();
      expectError(await t.admin("/admin/v1/accounts", { json }), 400, "validation_failed");
      expect(await newest()).toBe(before);
    });

    it("create account: malformed JSON and an empty body → 400 validation_failed", async () => {
      for (const body of ["{", undefined]) {
        const res = await t.admin("/admin/v1/accounts", {
          method: "POST",
          ...(body !== undefined ? { body } : {}),
          headers: { "content-type": "application/json" },
        });
        expectError(res, 400, "validation_failed");
      }
    });

    const keyCases: [string, unknown][] = [
      ["unknown scope", { scopes: ["generations:delete"] }],
      ["empty scopes", { scopes: [] }],
      ["scopes not an array", { scopes: "generations:read" }],
      ["expires_at not a date", { expires_at: "tomorrow" }],
      ["expires_at a number", { expires_at: 1_900_000_000 }],
      ["unknown field", { key: "rvya_sk_chosenbyme" }],
    ];
    it.each(keyCases)("create key: %s → 400 validation_failed, no key created", async (_name, json) => {
      const before = (await t.admin(`/admin/v1/accounts/${accountId}/keys`)).body.data.length;
      const res = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json });
      expectError(res, 400, "validation_failed");
      expect(res.body.error.details.length).toBeGreaterThan(0);
      expect((await t.admin(`/admin/v1/accounts/${accountId}/keys`)).body.data.length).toBe(before);
    });

    const grantCases: [string, unknown][] = [
      ["amount missing", {}],
      ["amount 0", { amount: 0 }],
      ["fractional amount", { amount: 1.5 }],
      ["amount as a string", { amount: "10" }],
      ["amount null", { amount: null }],
      ["huge amount", { amount: 1e15 }],
      ["reason not a string", { amount: 1, reason: 5 }],
      ["unknown field", { amount: 1, note: "x" }],
    ];
    it.each(grantCases)("grant: %s → 400 validation_failed, balance unchanged", async (_name, json) => {
      const res = await t.admin(`/admin/v1/accounts/${accountId}/credits`, { json });
      expectError(res, 400, "validation_failed");
      const got = await t.admin(`/admin/v1/accounts/${accountId}`);
      expect(got.body.credits).toBe(100);
      expect(got.body.ledger.ledger_sum).toBe(100);
    });
  });

  describe("unknown resources and methods", () => {
    it("unknown account → 404 not_found on every account route", async () => {
      const id = "acct_doesnotexist";
      expectError(await t.admin(`/admin/v1/accounts/${id}`), 404, "not_found");
      expectError(await t.admin(`/admin/v1/accounts/${id}/keys`), 404, "not_found");
      expectError(await t.admin(`/admin/v1/accounts/${id}/keys`, { json: {} }), 404, "not_found");
      expectError(await t.admin(`/admin/v1/accounts/${id}/credits`, { json: { amount: 5 } }), 404, "not_found");
      expectError(await t.admin(`/admin/v1/accounts/${id}/credits`, { json: { amount: -5 } }), 404, "not_found");
    });

    it("wrong method → 405 method_not_allowed with Allow", async () => {
      const res = await t.admin("/admin/v1/accounts", { method: "DELETE" });
      expectError(res, 405, "method_not_allowed");
      expect(res.headers.get("allow")).toBe("GET, POST");
      const grant = await t.admin("/admin/v1/accounts/acct_x/credits");
      expectError(grant, 405, "method_not_allowed");
      expect(grant.headers.get("allow")).toBe("POST");
    });
  });
});

describe("admin API without ADMIN_TOKEN", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ADMIN_TOKEN: "", WORKER_CONCURRENCY: "0" });
  });
  afterAll(() => t.close());

  it.each(ROUTES)("%s %s → 404 not_found, with or without a token", async (method, path, json) => {
    const body = json !== undefined ? { json } : {};
    expectError(await t.request(path, { method, ...body }), 404, "not_found");
    expectError(await t.admin(path, { method, ...body }), 404, "not_found");
    expectError(await t.request(path, { method, headers: { authorization: "Bearer " }, ...body }), 404, "not_found");
  });

  it("the public API still works", async () => {
    expect((await t.request("/api/v1/models")).status).toBe(200);
    expect((await t.request("/healthz")).status).toBe(200);
  });
});
