/**
 * Idempotency-Key semantics for POST /api/v1/generations (api-contract §5): scope, canonical
 * fingerprint, byte-for-byte replays, conflicts, what is (and is not) stored, expiry, and
 * recovery of claims left behind by a crashed process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprintBody, IDEMPOTENCY_TTL_MS } from "../src/http/idempotency.js";
import { ManualClock, startTestServer, type TestServer } from "./harness.js";

const PATH = "/api/v1/generations";
const PRICE = 55;

function post(t: TestServer, key: string, idemKey: string | undefined, raw: string) {
  return t.request(PATH, {
    key,
    method: "POST",
    body: raw,
    headers: { "content-type": "application/json", ...(idemKey !== undefined ? { "Idempotency-Key": idemKey } : {}) },
  });
}

async function balance(t: TestServer, key: string): Promise<number> {
  const res = await t.request("/api/v1/credits", { key });
  expect(res.status).toBe(200);
  return res.body.current_credits;
}

async function taskCount(t: TestServer, key: string): Promise<number> {
  const res = await t.request(`${PATH}?limit=100`, { key });
  expect(res.status).toBe(200);
  return res.body.data.length;
}

async function storedRows(t: TestServer, accountId: string) {
  return t.server.store.db.selectFrom("idempotency_keys").selectAll().where("account_id", "=", accountId).execute();
}

describe("Idempotency-Key", () => {
  let t: TestServer;
  const clock = new ManualClock();
  beforeAll(async () => {
    // No worker: the clock moves a day forward below, and nothing needs to render.
    t = await startTestServer({ WORKER_CONCURRENCY: "0", RATE_LIMIT_CREATE_PER_MIN: "0" }, undefined, { clock });
  });
  afterAll(() => t?.close());

  it("replays the stored status and body byte for byte with Idempotent-Replayed: true", async () => {
    const { key } = await t.createAccount(200);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "a replayed cat", client_request_id: "c-1" });
    const first = await post(t, key, "replay-1", raw);
    expect(first.status).toBe(202);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const location = first.headers.get("location");
    expect(location).toBe(`${PATH}/${first.body.id}`);

    for (let i = 0; i < 3; i++) {
      const again = await post(t, key, "replay-1", raw);
      expect(again.status).toBe(202);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.text).toBe(first.text);
      expect(again.headers.get("location")).toBe(location);
      expect(again.headers.get("content-type")).toMatch(/^application\/json/);
      // A replay is still a new HTTP exchange with its own request id.
      expect(again.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
    }
    expect(await balance(t, key)).toBe(200 - PRICE);
    expect(await taskCount(t, key)).toBe(1);
  });

  it("the same key with a different body is a 409 idempotency_conflict and changes nothing", async () => {
    const { key } = await t.createAccount(200);
    const first = await post(t, key, "conflict-1", JSON.stringify({ model: "kling-2-6", prompt: "first" }));
    expect(first.status).toBe(202);
    for (const other of [
      { model: "kling-2-6", prompt: "second" },
      { model: "kling-2-6", prompt: "first", params: { duration: "10" } },
      { model: "kling-2-6", prompt: "first", client_request_id: "x" },
    ]) {
      const res = await post(t, key, "conflict-1", JSON.stringify(other));
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("idempotency_conflict");
      expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
      expect(res.headers.get("idempotent-replayed")).toBeNull();
    }
    expect(await balance(t, key)).toBe(200 - PRICE);
    expect(await taskCount(t, key)).toBe(1);
    // The original is still replayable after the conflicts.
    const again = await post(t, key, "conflict-1", JSON.stringify({ model: "kling-2-6", prompt: "first" }));
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
  });

  it("fingerprints canonical JSON: key order and whitespace do not matter", async () => {
    const { key } = await t.createAccount(200);
    const a = `{"model":"kling-2-6","prompt":"order","params":{"duration":"10","sound":"true","aspect_ratio":"16:9"}}`;
    const b = `{ "params": { "sound": "true", "aspect_ratio": "16:9", "duration": "10" },\n  "prompt": "order", "model": "kling-2-6" }`;
    expect(fingerprintBody(JSON.parse(a))).toBe(fingerprintBody(JSON.parse(b)));
    const first = await post(t, key, "canon-1", a);
    expect(first.status).toBe(202);
    const second = await post(t, key, "canon-1", b);
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.text).toBe(first.text);
    // Values still matter: the same keys with a changed value is a different request.
    const changed = a.replace('"sound":"true"', '"sound":"false"');
    expect((await post(t, key, "canon-1", changed)).status).toBe(409);
    expect(await balance(t, key)).toBe(200 - PRICE);
  });

  it("keys are scoped per account: two accounts use the same key independently", async () => {
    const one = await t.createAccount(200);
    const two = await t.createAccount(200);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "shared key" });
    const a = await post(t, one.key, "shared-key", raw);
    const b = await post(t, two.key, "shared-key", raw);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(b.body.id).not.toBe(a.body.id);
    // A different body on the second account is not a conflict with the first account's use.
    const c = await post(t, two.key, "other-shared", raw);
    const d = await post(t, one.key, "other-shared", JSON.stringify({ model: "kling-2-6", prompt: "other" }));
    expect(c.status).toBe(202);
    expect(d.status).toBe(202);
    expect(await balance(t, one.key)).toBe(200 - 2 * PRICE);
    expect(await balance(t, two.key)).toBe(200 - 2 * PRICE);
    // Each account's own replay returns its own task.
    expect((await post(t, one.key, "shared-key", raw)).body.id).toBe(a.body.id);
    expect((await post(t, two.key, "shared-key", raw)).body.id).toBe(b.body.id);
  });

  it("a request that fails validation stores nothing; the key then works with a corrected body", async () => {
    const { accountId, key } = await t.createAccount(100);
    const bad = await post(
      t,
      key,
      "fix-me",
      JSON.stringify({ model: "kling-2-6", prompt: "x", params: { duration: "7" } }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    const malformed = await post(t, key, "fix-me", "{not json");
    expect(malformed.status).toBe(400);
    const unknownField = await post(t, key, "fix-me", JSON.stringify({ model: "kling-2-6", prompt: "x", files: [] }));
    expect(unknownField.status).toBe(400);
    expect(await storedRows(t, accountId)).toHaveLength(0);

    const good = await post(
      t,
      key,
      "fix-me",
      JSON.stringify({ model: "kling-2-6", prompt: "x", params: { duration: "10" } }),
    );
    expect(good.status).toBe(202);
    expect(good.headers.get("idempotent-replayed")).toBeNull();
    expect(good.body.params.duration).toBe("10");
    expect(await balance(t, key)).toBe(100 - PRICE);
  });

  it("auth and scope failures store nothing either", async () => {
    const { accountId, key } = await t.createAccount(100, { scopes: ["generations:read", "credits:read"] });
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "no scope" });
    const denied = await post(t, key, "scope-key", raw);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("api_scope_denied");
    const noKey = await t.request(PATH, {
      method: "POST",
      body: raw,
      headers: { "content-type": "application/json", "Idempotency-Key": "scope-key" },
    });
    expect(noKey.status).toBe(401);
    expect(await storedRows(t, accountId)).toHaveLength(0);
  });

  it("accepts up to 255 printable ASCII characters and rejects anything else with validation_failed", async () => {
    const { accountId, key } = await t.createAccount(300);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "keys" });
    const tooLong = await post(t, key, "k".repeat(256), raw);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.code).toBe("validation_failed");
    expect(await storedRows(t, accountId)).toHaveLength(0);
    const longest = await post(t, key, "k".repeat(255), raw);
    expect(longest.status).toBe(202);
    const printable = await post(t, key, "a!~#$%&'*+-.^_`|0", raw);
    expect(printable.status).toBe(202);
    // The space is printable ASCII too (0x20..0x7e), so "order 42" is a valid key.
    const withSpace = await post(t, key, "order 42", raw);
    expect(withSpace.status).toBe(202);
    expect((await post(t, key, "order 42", raw)).text).toBe(withSpace.text);
    // A tab (control character) and a Latin-1 byte are not printable ASCII.
    for (const bad of ["tab\there", "caf\u00e9"]) {
      const res = await post(t, key, bad, raw);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
    }
    expect(await storedRows(t, accountId)).toHaveLength(3);
    expect(await balance(t, key)).toBe(300 - 3 * PRICE);
  });

  it("stores and replays a 402 insufficient_credits result (a business outcome, not a validation error)", async () => {
    // Documented choice (GenerationService.create): a 402 commits the key like a 202 does, so a
    // retry with the same key replays the 402 even after the balance was topped up. Clients use
    // a new key for a new attempt, exactly as after a success.
    const { accountId, key } = await t.createAccount(PRICE - 5);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "too expensive" });
    const first = await post(t, key, "poor-1", raw);
    expect(first.status).toBe(402);
    expect(first.body.error.code).toBe("insufficient_credits");
    expect(first.headers.get("location")).toBeNull();
    const rows = await storedRows(t, accountId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: "completed", response_status: 402, response_body: first.text });

    const grant = await t.admin(`/admin/v1/accounts/${accountId}/credits`, { json: { amount: 100 } });
    expect(grant.status).toBe(200);

    const replay = await post(t, key, "poor-1", raw);
    expect(replay.status).toBe(402);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(first.text);
    expect(await taskCount(t, key)).toBe(0);
    expect(await balance(t, key)).toBe(PRICE - 5 + 100);

    const fresh = await post(t, key, "poor-2", raw);
    expect(fresh.status).toBe(202);
    expect(await balance(t, key)).toBe(PRICE - 5 + 100 - PRICE);
  });

  it("takes over an in-flight claim abandoned by a crashed process, but not a live one", async () => {
    const { accountId, key } = await t.createAccount(200);
    const body = { model: "kling-2-6", prompt: "crashed mid-request" };
    const raw = JSON.stringify(body);
    const now = clock.now();
    const claim = (idemKey: string, lockedUntil: Date, fingerprint = fingerprintBody(body)) =>
      t.server.store.db
        .insertInto("idempotency_keys")
        .values({
          account_id: accountId,
          method: "POST",
          path: PATH,
          idem_key: idemKey,
          fingerprint,
          state: "in_flight",
          response_status: null,
          response_body: null,
          locked_until: lockedUntil.toISOString(),
          created_at: new Date(now.getTime() - 120_000).toISOString(),
          expires_at: new Date(now.getTime() + IDEMPOTENCY_TTL_MS).toISOString(),
        })
        .execute();

    // A live claim (its owner may still commit): 409 with a hint to retry, nothing created.
    await claim("live", new Date(now.getTime() + 30_000));
    const busy = await post(t, key, "live", raw);
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe("idempotency_conflict");
    expect(busy.headers.get("retry-after")).toBeTruthy();
    expect(await taskCount(t, key)).toBe(0);
    expect(await balance(t, key)).toBe(200);

    // An abandoned claim (lease in the past): the retry runs and stores its own response.
    await claim("abandoned", new Date(now.getTime() - 1000));
    const taken = await post(t, key, "abandoned", raw);
    expect(taken.status).toBe(202);
    expect(taken.headers.get("idempotent-replayed")).toBeNull();
    const replay = await post(t, key, "abandoned", raw);
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(taken.text);

    // An abandoned claim for a different body is not a conflict any more: the new request wins.
    await claim(
      "abandoned-other",
      new Date(now.getTime() - 1000),
      fingerprintBody({ model: "kling-2-6", prompt: "?" }),
    );
    const other = await post(t, key, "abandoned-other", raw);
    expect(other.status).toBe(202);

    expect(await taskCount(t, key)).toBe(2);
    expect(await balance(t, key)).toBe(200 - 2 * PRICE);
    const rows = await storedRows(t, accountId);
    expect(rows.find((r) => r.idem_key === "abandoned")?.state).toBe("completed");
    expect(rows.find((r) => r.idem_key === "live")?.state).toBe("in_flight");

    // Once the live claim's lease runs out (the clock moves past it), it is taken over too.
    clock.advance(31_000);
    const later = await post(t, key, "live", raw);
    expect(later.status).toBe(202);
    expect(later.headers.get("idempotent-replayed")).toBeNull();
    expect(await taskCount(t, key)).toBe(3);
  });

  it("a stored key expires after 24 h: the same key then creates a new task", async () => {
    const { key } = await t.createAccount(300);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "expiring key" });
    const first = await post(t, key, "expiring", raw);
    expect(first.status).toBe(202);

    clock.advance(IDEMPOTENCY_TTL_MS - 60_000);
    const stillStored = await post(t, key, "expiring", raw);
    expect(stillStored.headers.get("idempotent-replayed")).toBe("true");
    expect(stillStored.text).toBe(first.text);
    // Still stored means a different body is still a conflict.
    expect((await post(t, key, "expiring", JSON.stringify({ model: "kling-2-6", prompt: "new" }))).status).toBe(409);

    clock.advance(60_000 + 1000);
    const renewed = await post(t, key, "expiring", raw);
    expect(renewed.status).toBe(202);
    expect(renewed.headers.get("idempotent-replayed")).toBeNull();
    expect(renewed.body.id).not.toBe(first.body.id);
    expect(await taskCount(t, key)).toBe(2);
    expect(await balance(t, key)).toBe(300 - 2 * PRICE);

    // The new response is stored in turn and replayed.
    const replay = await post(t, key, "expiring", raw);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(renewed.text);
  });

  it("requests without a key are never deduplicated", async () => {
    const { key } = await t.createAccount(200);
    const raw = JSON.stringify({ model: "kling-2-6", prompt: "no key" });
    const a = await post(t, key, undefined, raw);
    const b = await post(t, key, undefined, raw);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(await balance(t, key)).toBe(200 - 2 * PRICE);
  });
});
