/**
 * The account's API keys through the public API (issue #17): GET/POST /api/v1/keys and
 * DELETE /api/v1/keys/{id}, under the keys:manage scope. The secret is in the create answer only;
 * a key grants only scopes it holds and an expiry no later than its own; another account's key
 * is 404; a revoked key is refused on its next request.
 *
 * Runs on SQLite, and with FRAMEGATE_TEST_PG=1 on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, startTestServer, type TestResponse, type TestServer } from "./harness.js";

const KEY_PATTERN = /^rvya_sk_[0-9A-Za-z]{32,}$/;

function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.requestId).toMatch(/^req_/);
}

describe("API keys through the public API", () => {
  let t: TestServer;
  // Expiry is tested by moving this clock, not by waiting.
  const clock = new ManualClock();

  beforeAll(async () => {
    t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_WRITE_PER_MIN: "0" }, undefined, { clock });
  });
  afterAll(async () => {
    await t?.close();
  });

  const keyCount = async (key: string) => {
    const res = await t.request("/api/v1/keys?limit=100", { key });
    expect(res.status, res.text).toBe(200);
    return res.body.data.length as number;
  };

  it("an operator-made key holds keys:manage; it creates a key whose secret is shown once and works", async () => {
    const { key, keyId, accountId } = await t.createAccount(10);
    clock.advance(1000);
    const created = await t.request("/api/v1/keys", {
      key,
      json: { name: "ci", scopes: ["credits:read", "generations:read"] },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      object: "api_key",
      account_id: accountId,
      name: "ci",
      scopes: ["generations:read", "credits:read"],
      expires_at: null,
      revoked_at: null,
    });
    expect(created.body.key).toMatch(KEY_PATTERN);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);

    const credits = await t.request("/api/v1/credits", { key: created.body.key });
    expect(credits.status, credits.text).toBe(200);
    expect(credits.body.current_credits).toBe(10);
    // Only the scopes it was given.
    expectError(await t.request("/api/v1/files", { key: created.body.key }), 403, "api_scope_denied");

    const list = await t.request("/api/v1/keys", { key });
    expect(list.status).toBe(200);
    expect(list.body.object).toBe("list");
    expect(list.body.has_more).toBe(false);
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([created.body.id, keyId]);
    // Neither the secret nor its hash is ever listed.
    expect(list.text).not.toContain(created.body.key);
    expect(list.text).not.toContain(key);
    for (const k of list.body.data) {
      expect(Object.keys(k).sort()).toEqual(
        ["account_id", "created_at", "expires_at", "id", "name", "object", "prefix", "revoked_at", "scopes"].sort(),
      );
    }
  });

  it("a key left without scopes gets its creator's, without keys:manage", async () => {
    const { key } = await t.createAccount(0);
    const created = await t.request("/api/v1/keys", { key, json: {} });
    expect(created.status, created.text).toBe(201);
    expect(created.body.scopes).not.toContain("keys:manage");
    expect(created.body.scopes).toContain("generations:create");
    expectError(await t.request("/api/v1/keys", { key: created.body.key }), 403, "api_scope_denied");
  });

  it("pages newest first with limit and starting_after", async () => {
    const { key } = await t.createAccount(0);
    // Apart in time, so created_at alone orders them.
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      expect((await t.request("/api/v1/keys", { key, json: { name: `k${i}` } })).status).toBe(201);
    }
    const first = await t.request("/api/v1/keys?limit=2", { key });
    expect(first.body.data.map((k: { name: string }) => k.name)).toEqual(["k2", "k1"]);
    expect(first.body.has_more).toBe(true);
    const next = await t.request(`/api/v1/keys?limit=2&starting_after=${first.body.data[1].id}`, { key });
    expect(next.body.data.map((k: { name: string | null }) => k.name)).toEqual(["k0", null]);
    expect(next.body.has_more).toBe(false);
    expectError(await t.request("/api/v1/keys?limit=0", { key }), 400, "validation_failed");
    expectError(await t.request("/api/v1/keys?color=red", { key }), 400, "validation_failed");
  });

  it("a key can grant only scopes it holds (403) and nothing is created", async () => {
    const { key: root } = await t.createAccount(0);
    const narrow = await t.request("/api/v1/keys", { key: root, json: { scopes: ["keys:manage", "credits:read"] } });
    expect(narrow.status, narrow.text).toBe(201);
    const before = await keyCount(root);
    const denied = await t.request("/api/v1/keys", {
      key: narrow.body.key,
      json: { scopes: ["credits:read", "generations:create"] },
    });
    expectError(denied, 403, "api_scope_denied");
    expect(denied.body.error.message).toContain("generations:create");
    expect(await keyCount(root)).toBe(before);
    const allowed = await t.request("/api/v1/keys", { key: narrow.body.key, json: { scopes: ["credits:read"] } });
    expect(allowed.status, allowed.text).toBe(201);
  });

  it("a key without keys:manage gets 403 on every key route; no key gets 401", async () => {
    const { key } = await t.createAccount(0, { scopes: ["credits:read"] });
    expectError(await t.request("/api/v1/keys", { key }), 403, "api_scope_denied");
    expectError(await t.request("/api/v1/keys", { key, json: {} }), 403, "api_scope_denied");
    expectError(await t.request("/api/v1/keys/key_x", { key, method: "DELETE" }), 403, "api_scope_denied");
    expectError(await t.request("/api/v1/keys"), 401, "api_key_missing");
    expectError(await t.request("/api/v1/keys", { key, method: "PUT" }), 405, "method_not_allowed");
  });

  it("another account's key is 404 and stays working", async () => {
    const a = await t.createAccount(0);
    const b = await t.createAccount(5);
    expectError(await t.request(`/api/v1/keys/${b.keyId}`, { key: a.key, method: "DELETE" }), 404, "not_found");
    expectError(await t.request("/api/v1/keys/key_doesnotexist", { key: a.key, method: "DELETE" }), 404, "not_found");
    expect((await t.request("/api/v1/credits", { key: b.key })).status).toBe(200);
    // Nor can its id position a page.
    expectError(await t.request(`/api/v1/keys?starting_after=${b.keyId}`, { key: a.key }), 400, "validation_failed");
  });

  it("a revoked key is refused on its next request; revoking again answers the same", async () => {
    const { key } = await t.createAccount(0);
    const other = await t.request("/api/v1/keys", { key, json: { name: "doomed" } });
    expect((await t.request("/api/v1/credits", { key: other.body.key })).status).toBe(200);
    const revoked = await t.request(`/api/v1/keys/${other.body.id}`, { key, method: "DELETE" });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    expect(revoked.body.key).toBeUndefined();
    expectError(await t.request("/api/v1/credits", { key: other.body.key }), 401, "api_key_revoked");
    const again = await t.request(`/api/v1/keys/${other.body.id}`, { key, method: "DELETE" });
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
    const listed = await t.request("/api/v1/keys", { key });
    expect(listed.body.data.find((k: { id: string }) => k.id === other.body.id).revoked_at).toBe(
      revoked.body.revoked_at,
    );
  });

  it("a key may revoke itself: the answer is sent and its next request is 401", async () => {
    const { key, keyId } = await t.createAccount(0);
    const res = await t.request(`/api/v1/keys/${keyId}`, { key, method: "DELETE" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.id).toBe(keyId);
    expectError(await t.request("/api/v1/keys", { key }), 401, "api_key_revoked");
  });

  it("expiry: a future one is kept and honoured; a key cannot outlive its creator", async () => {
    const { key: root } = await t.createAccount(0);
    const soon = new Date(clock.now().getTime() + 3_600_000).toISOString();
    const expiring = await t.request("/api/v1/keys", {
      key: root,
      json: { expires_at: soon, scopes: ["keys:manage", "credits:read"] },
    });
    expect(expiring.status, expiring.text).toBe(201);
    expect(expiring.body.expires_at).toBe(soon);
    const limited = expiring.body.key;

    // Left out, the new key inherits the creator's expiry; later or never is refused.
    const inherited = await t.request("/api/v1/keys", { key: limited, json: { scopes: ["credits:read"] } });
    expect(inherited.status, inherited.text).toBe(201);
    expect(inherited.body.expires_at).toBe(soon);
    const later = new Date(clock.now().getTime() + 86_400_000).toISOString();
    expectError(
      await t.request("/api/v1/keys", { key: limited, json: { expires_at: later } }),
      400,
      "validation_failed",
    );
    expectError(
      await t.request("/api/v1/keys", { key: limited, json: { expires_at: null } }),
      400,
      "validation_failed",
    );

    // Honoured: once past, the key is refused.
    clock.advance(3_600_000);
    expectError(await t.request("/api/v1/credits", { key: limited }), 401, "api_key_expired");
    expectError(await t.request("/api/v1/credits", { key: inherited.body.key }), 401, "api_key_expired");
  });

  it("bad input is 400 validation_failed and creates nothing", async () => {
    const { key } = await t.createAccount(0);
    const before = await keyCount(key);
    const bad: [string, unknown][] = [
      ["unknown scope", { scopes: ["chat:create"] }],
      ["empty scopes", { scopes: [] }],
      ["past expiry", { expires_at: "2020-01-01T00:00:00Z" }],
      ["not a date", { expires_at: "tomorrow" }],
      ["unknown field", { name: "x", admin: true }],
      ["empty name", { name: "" }],
      ["not an object", ["credits:read"]],
    ];
    for (const [label, json] of bad) {
      const res = await t.request("/api/v1/keys", { key, json });
      expect(res.status, `${label}: ${res.text}`).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
    }
    const malformed = await t.request("/api/v1/keys", {
      key,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(malformed.status, malformed.text).toBe(400);
    expect(await keyCount(key)).toBe(before);
  });
});

/**
 * A revocation through the public API reaches every process sharing the store at once (NOTIFY on
 * PostgreSQL, SQLite's commit counter), as the operator's does: not only after the key cache's TTL.
 */
describe("revoking through one process, with the key cached by another", () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ API_KEY_CACHE_SECONDS: "60" });
    // B shares A's store, as a second API process would, and trusts cached keys for a minute.
    b = await startTestServer({ API_KEY_CACHE_SECONDS: "60" }, a.dataDir);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("the other process refuses the key well before its cache would expire", async () => {
    const { key: root } = await a.createAccount(3);
    const made = await a.request("/api/v1/keys", { key: root, json: { scopes: ["credits:read"] } });
    expect(made.status, made.text).toBe(201);
    expect((await b.request("/api/v1/credits", { key: made.body.key })).status).toBe(200);
    expect((await b.request("/api/v1/credits", { key: made.body.key })).status).toBe(200);
    expect((await a.request(`/api/v1/keys/${made.body.id}`, { key: root, method: "DELETE" })).status).toBe(200);
    // The notice travels asynchronously; the 60 s TTL is far beyond this wait.
    const started = Date.now();
    let res = await b.request("/api/v1/credits", { key: made.body.key });
    while (res.status === 200 && Date.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
      res = await b.request("/api/v1/credits", { key: made.body.key });
    }
    expectError(res, 401, "api_key_revoked");
  });
});
