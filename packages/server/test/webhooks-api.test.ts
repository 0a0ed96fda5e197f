/**
 * Webhook endpoints API (api-contract §7): the endpoint object and its secret handling, body and
 * query validation, the webhooks:manage scope, tenant isolation of endpoints, events and
 * deliveries, pagination, the test event; and the URL guard in STRICT mode (no
 * WEBHOOK_ALLOW_INSECURE_URLS), including DNS rebinding between creation and delivery.
 *
 * Receivers are local servers on 127.0.0.1; made-up host names go through an injected lookup,
 * which never falls back to real DNS. No traffic leaves the machine.
 */
import { isIPv6 } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LookupFn } from "../src/net/url-guard.js";
import { startTestServer, type TestResponse, type TestServer } from "./harness.js";
import { pollUntil, WebhookReceiver } from "./webhook-receiver.js";

const ENDPOINT_FIELDS = [
  "created_at",
  "disabled_at",
  "event_types",
  "failure_count",
  "id",
  "last_failure_at",
  "last_success_at",
  "name",
  "object",
  "revoked_at",
  "secret_preview",
  "status",
  "updated_at",
  "url",
].sort();
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const PREVIEW = /^whsec_[A-Za-z0-9+/]{2}\.\.\.[A-Za-z0-9+/=]{6}$/;

function expectError(res: TestResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body?.error?.code, res.text).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
}

function previewOf(secret: string): string {
  const body = secret.slice("whsec_".length);
  return `whsec_${body.slice(0, 2)}...${body.slice(-6)}`;
}

describe("webhooks API (WEBHOOK_ALLOW_INSECURE_URLS for local receivers)", () => {
  let t: TestServer;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await startTestServer({
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      WEBHOOK_RETRY_SCHEDULE_MS: "50,50",
      RATE_LIMIT_READ_PER_MIN: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const createEndpoint = async (key: string, json: Record<string, unknown>) => {
    const res = await t.request("/api/v1/webhooks", { key, json });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  it("create returns the endpoint with its signing secret once; GET, list and PATCH show only the preview", async () => {
    const { key } = await t.createAccount(0);
    const url = receiver.at("/primary?x=1");
    const created = await t.request("/api/v1/webhooks", {
      key,
      json: { name: "primary", url, event_types: ["generation.succeeded"] },
    });
    expect(created.status, created.text).toBe(201);
    const ep = created.body;
    expect(Object.keys(ep).sort()).toEqual([...ENDPOINT_FIELDS, "signing_secret"].sort());
    expect(ep).toMatchObject({
      object: "webhook_endpoint",
      name: "primary",
      url,
      event_types: ["generation.succeeded"],
      status: "active",
      last_success_at: null,
      last_failure_at: null,
      failure_count: 0,
      disabled_at: null,
      revoked_at: null,
    });
    expect(ep.id).toMatch(/^whend_[A-Za-z0-9]+$/);
    expect(ep.created_at).toMatch(ISO_MS);
    expect(ep.updated_at).toBe(ep.created_at);
    // whsec_ + base64 of 32 random bytes.
    expect(ep.signing_secret).toMatch(SECRET);
    expect(Buffer.from(ep.signing_secret.slice(6), "base64")).toHaveLength(32);
    expect(ep.secret_preview).toMatch(PREVIEW);
    expect(ep.secret_preview).toBe(previewOf(ep.signing_secret));
    const secretBody = ep.signing_secret.slice(6);
    const { signing_secret: _secret, ...publicView } = ep;

    const got = await t.request(`/api/v1/webhooks/${ep.id}`, { key });
    expect(got.status, got.text).toBe(200);
    expect(got.body).toEqual(publicView);
    expect(got.text).not.toContain(secretBody);

    const list = await t.request("/api/v1/webhooks", { key });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ object: "list", data: [publicView], has_more: false });
    expect(list.text).not.toContain(secretBody);

    const patched = await t.request(`/api/v1/webhooks/${ep.id}`, {
      key,
      method: "PATCH",
      json: { name: "renamed", event_types: ["generation.failed", "generation.succeeded", "generation.failed"] },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(Object.keys(patched.body).sort()).toEqual(ENDPOINT_FIELDS);
    expect(patched.body).toMatchObject({
      id: ep.id,
      name: "renamed",
      url,
      event_types: ["generation.failed", "generation.succeeded"],
      secret_preview: ep.secret_preview,
      status: "active",
    });
    expect(patched.text).not.toContain(secretBody);
    expect(patched.body.updated_at >= ep.updated_at).toBe(true);
    expect((await t.request(`/api/v1/webhooks/${ep.id}`, { key })).body).toEqual(patched.body);

    // name can be cleared; status can be toggled by hand.
    const cleared = await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "PATCH", json: { name: null } });
    expect(cleared.body.name).toBeNull();
    const disabled = await t.request(`/api/v1/webhooks/${ep.id}`, {
      key,
      method: "PATCH",
      json: { status: "disabled" },
    });
    expect(disabled.body).toMatchObject({ status: "disabled", disabled_at: expect.stringMatching(ISO_MS) });
    const enabled = await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "PATCH", json: { status: "active" } });
    expect(enabled.body).toMatchObject({ status: "active", disabled_at: null });

    // Rotation returns the new secret once; the old one is not shown again.
    const rotated = await t.request(`/api/v1/webhooks/${ep.id}/rotate-secret`, { key, method: "POST" });
    expect(rotated.status, rotated.text).toBe(200);
    expect(Object.keys(rotated.body).sort()).toEqual([...ENDPOINT_FIELDS, "signing_secret"].sort());
    expect(rotated.body.signing_secret).toMatch(SECRET);
    expect(rotated.body.signing_secret).not.toBe(ep.signing_secret);
    expect(rotated.body.secret_preview).toBe(previewOf(rotated.body.signing_secret));
    expect(rotated.text).not.toContain(secretBody);
    const afterRotate = await t.request(`/api/v1/webhooks/${ep.id}`, { key });
    expect(afterRotate.body.secret_preview).toBe(rotated.body.secret_preview);
    expect(afterRotate.body).not.toHaveProperty("signing_secret");
    expect(afterRotate.text).not.toContain(rotated.body.signing_secret.slice(6));
  });

  it("defaults event_types to both generation events and removes duplicates", async () => {
    const { key } = await t.createAccount(0);
    const a = await createEndpoint(key, { url: receiver.at("/defaults") });
    expect(a.event_types).toEqual(["generation.succeeded", "generation.failed"]);
    expect(a.name).toBeNull();
    const b = await createEndpoint(key, {
      url: receiver.at("/dupes"),
      event_types: ["generation.failed", "generation.failed"],
    });
    expect(b.event_types).toEqual(["generation.failed"]);
    // Every endpoint gets its own secret.
    expect(a.signing_secret).not.toBe(b.signing_secret);
  });

  it("rejects invalid bodies with validation_failed and bad URLs with webhook_url_rejected", async () => {
    const { key } = await t.createAccount(0);
    const url = receiver.at("/v");
    const bad: unknown[] = [
      {},
      { url: 5 },
      { url: null },
      { url, extra: true },
      { url, event_types: [] },
      { url, event_types: ["webhook.test"] },
      { url, event_types: ["generation.started"] },
      { url, event_types: "generation.succeeded" },
      { url, name: "x".repeat(201) },
      { url, name: 7 },
      { url: `https://example.com/${"a".repeat(2100)}` },
      [],
      "https://example.com/",
    ];
    for (const json of bad) {
      const res = await t.request("/api/v1/webhooks", { key, json });
      expectError(res, 400, "validation_failed");
    }
    const notJson = await t.request("/api/v1/webhooks", {
      key,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expectError(notJson, 400, "validation_failed");
    const noBody = await t.request("/api/v1/webhooks", { key, method: "POST" });
    expectError(noBody, 400, "validation_failed");

    // URLs that parse as strings but break the URL rules (even in insecure mode).
    for (const u of [
      "",
      "not a url",
      "/relative/path",
      "ftp://example.com/hook",
      "file:///etc/passwd",
      "javascript:alert(1)",
      `http://user:s3cr3tpw@127.0.0.1:${receiver.port}/hook`,
      `http://127.0.0.1:${receiver.port}/hook#frag`,
      `http://127.0.0.1:${receiver.port}/ hook`,
    ]) {
      const res = await t.request("/api/v1/webhooks", { key, json: { url: u } });
      expectError(res, 400, "webhook_url_rejected");
      if (u.includes("s3cr3tpw")) expect(res.text).not.toContain("s3cr3tpw");
      // The setting is on already: suggesting it would send the developer in a circle.
      expect(res.body.error.message).not.toContain("WEBHOOK_ALLOW_INSECURE_URLS");
    }
    // Nothing was created by any of the refused requests.
    expect((await t.request("/api/v1/webhooks", { key })).body.data).toEqual([]);

    // PATCH validates the same way and leaves the endpoint unchanged.
    const ep = await createEndpoint(key, { url, name: "keep" });
    const { signing_secret: _s, ...before } = ep;
    for (const json of [
      { status: "revoked" },
      { unknown: 1 },
      { event_types: [] },
      { name: "y".repeat(201) },
      { url: 1 },
    ]) {
      const res = await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "PATCH", json });
      expectError(res, 400, "validation_failed");
    }
    const badUrl = await t.request(`/api/v1/webhooks/${ep.id}`, {
      key,
      method: "PATCH",
      json: { url: "ftp://example.com/", name: "changed" },
    });
    expectError(badUrl, 400, "webhook_url_rejected");
    expect((await t.request(`/api/v1/webhooks/${ep.id}`, { key })).body).toEqual(before);

    // Query validation on the list routes.
    expectError(await t.request("/api/v1/webhooks?limit=0", { key }), 400, "validation_failed");
    expectError(await t.request("/api/v1/webhooks?limit=101", { key }), 400, "validation_failed");
    expectError(await t.request("/api/v1/webhooks?foo=1", { key }), 400, "validation_failed");
    expectError(
      await t.request(`/api/v1/webhooks/${ep.id}/deliveries?status=bogus`, { key }),
      400,
      "validation_failed",
    );
    expectError(await t.request("/api/v1/webhook-events?type=generation.started", { key }), 400, "validation_failed");
    expectError(await t.request("/api/v1/webhook-events?starting_after=a-b", { key }), 400, "validation_failed");
  });

  it("every route needs the webhooks:manage scope (403 api_scope_denied), and a key (401)", async () => {
    const owner = await t.createAccount(0);
    const ep = await createEndpoint(owner.key, { url: receiver.at("/scope") });
    const before = receiver.requests.length;
    const limited = await t.createAccount(0, {
      scopes: ["generations:create", "generations:read", "credits:read", "files:read", "models:read"],
    });
    const alsoOwnAccount = await t.request("/api/v1/webhooks", { key: owner.key });
    expect(alsoOwnAccount.status).toBe(200);
    const routes: [string, string, unknown?][] = [
      ["POST", "/api/v1/webhooks", { url: receiver.at("/scope2") }],
      ["GET", "/api/v1/webhooks"],
      ["GET", `/api/v1/webhooks/${ep.id}`],
      ["PATCH", `/api/v1/webhooks/${ep.id}`, { name: "x" }],
      ["DELETE", `/api/v1/webhooks/${ep.id}`],
      ["POST", `/api/v1/webhooks/${ep.id}/rotate-secret`],
      ["POST", `/api/v1/webhooks/${ep.id}/test`],
      ["GET", `/api/v1/webhooks/${ep.id}/deliveries`],
      ["GET", "/api/v1/webhooks/whend_doesnotexist/deliveries?status=failed"],
      ["GET", "/api/v1/webhook-events"],
      ["GET", "/api/v1/webhook-events?type=generation.succeeded"],
      ["POST", "/api/v1/webhook-events/evt_doesnotexist/redeliver"],
    ];
    for (const [method, path, json] of routes) {
      const denied = await t.request(path, { key: limited.key, method, ...(json ? { json } : {}) });
      expectError(denied, 403, "api_scope_denied");
      const anonymous = await t.request(path, { method, ...(json ? { json } : {}) });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
    }
    // None of the refused calls changed anything.
    const still = await t.request(`/api/v1/webhooks/${ep.id}`, { key: owner.key });
    expect(still.status).toBe(200);
    expect(still.body).toMatchObject({ name: null, revoked_at: null, secret_preview: ep.secret_preview });
    expect((await t.request("/api/v1/webhooks", { key: owner.key })).body.data).toHaveLength(1);
    expect(receiver.requests.length).toBe(before);
  });

  it("is tenant-scoped: another account's endpoint, event and deliveries are not_found", async () => {
    const a = await t.createAccount(0);
    const b = await t.createAccount(0);
    const ep = await createEndpoint(a.key, { name: "a-endpoint", url: receiver.at("/tenant-a") });
    const test = await t.request(`/api/v1/webhooks/${ep.id}/test`, { key: a.key, method: "POST" });
    expect(test.status, test.text).toBe(202);
    const eventId: string = test.body.id;
    await receiver.waitUntil((r) => r.requests.some((q) => q.headers["webhook-id"] === eventId));
    await pollUntil(async () => {
      const d = await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key: a.key });
      return d.body.data.length === 1 ? d : undefined;
    });
    const receivedBefore = receiver.requests.length;
    const bOwn = await createEndpoint(b.key, { name: "b-endpoint", url: receiver.at("/tenant-b") });

    const probes: [string, string, unknown?][] = [
      ["GET", `/api/v1/webhooks/${ep.id}`],
      ["PATCH", `/api/v1/webhooks/${ep.id}`, { name: "stolen" }],
      ["PATCH", `/api/v1/webhooks/${ep.id}`, { status: "disabled" }],
      ["POST", `/api/v1/webhooks/${ep.id}/rotate-secret`],
      ["POST", `/api/v1/webhooks/${ep.id}/test`],
      ["GET", `/api/v1/webhooks/${ep.id}/deliveries`],
      ["GET", `/api/v1/webhooks/${ep.id}/deliveries?status=failed`],
      ["POST", `/api/v1/webhook-events/${eventId}/redeliver`],
      ["DELETE", `/api/v1/webhooks/${ep.id}`],
      ["GET", "/api/v1/webhooks/whend_unknown000000000000000"],
      ["POST", "/api/v1/webhook-events/evt_unknown00000000000000000/redeliver"],
    ];
    for (const [method, path, json] of probes) {
      const res = await t.request(path, { key: b.key, method, ...(json ? { json } : {}) });
      expectError(res, 404, "not_found");
      expect(res.text).not.toContain("a-endpoint");
    }
    // B's lists show only B's objects; A's ids are no valid cursors for B.
    const bList = await t.request("/api/v1/webhooks", { key: b.key });
    expect(bList.body.data.map((e: { id: string }) => e.id)).toEqual([bOwn.id]);
    const bEvents = await t.request("/api/v1/webhook-events", { key: b.key });
    expect(bEvents.body).toEqual({ object: "list", data: [], has_more: false });
    expectError(await t.request(`/api/v1/webhooks?starting_after=${ep.id}`, { key: b.key }), 400, "validation_failed");
    expectError(
      await t.request(`/api/v1/webhook-events?starting_after=${eventId}`, { key: b.key }),
      400,
      "validation_failed",
    );
    const delivery = (await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key: a.key })).body.data[0];
    expectError(
      await t.request(`/api/v1/webhooks/${bOwn.id}/deliveries?starting_after=${delivery.id}`, { key: b.key }),
      400,
      "validation_failed",
    );

    // A's endpoint is untouched and nothing more was delivered for it.
    const mine = await t.request(`/api/v1/webhooks/${ep.id}`, { key: a.key });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({
      name: "a-endpoint",
      status: "active",
      revoked_at: null,
      secret_preview: ep.secret_preview,
    });
    const aEvents = await t.request("/api/v1/webhook-events", { key: a.key });
    expect(aEvents.body.data.map((e: { id: string }) => e.id)).toEqual([eventId]);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests.length).toBe(receivedBefore);
    expect((await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key: a.key })).body.data).toHaveLength(1);
  });

  it("DELETE revokes the endpoint: it disappears from GET and list, and every route then answers not_found", async () => {
    const { key } = await t.createAccount(0);
    const ep = await createEndpoint(key, { url: receiver.at("/delete-me") });
    const keep = await createEndpoint(key, { url: receiver.at("/keep-me") });
    const del = await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "DELETE" });
    expect(del.status, del.text).toBe(200);
    expect(Object.keys(del.body).sort()).toEqual(ENDPOINT_FIELDS);
    expect(del.body).toMatchObject({
      id: ep.id,
      object: "webhook_endpoint",
      status: "disabled",
      revoked_at: expect.stringMatching(ISO_MS),
      disabled_at: expect.stringMatching(ISO_MS),
    });
    expectError(await t.request(`/api/v1/webhooks/${ep.id}`, { key }), 404, "not_found");
    expectError(await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "DELETE" }), 404, "not_found");
    expectError(
      await t.request(`/api/v1/webhooks/${ep.id}`, { key, method: "PATCH", json: { status: "active" } }),
      404,
      "not_found",
    );
    expectError(await t.request(`/api/v1/webhooks/${ep.id}/test`, { key, method: "POST" }), 404, "not_found");
    expectError(await t.request(`/api/v1/webhooks/${ep.id}/rotate-secret`, { key, method: "POST" }), 404, "not_found");
    expectError(await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key }), 404, "not_found");
    const list = await t.request("/api/v1/webhooks", { key });
    expect(list.body.data.map((e: { id: string }) => e.id)).toEqual([keep.id]);
  });

  it("lists endpoints newest first with cursor pagination", async () => {
    const { key } = await t.createAccount(0);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createEndpoint(key, { url: receiver.at(`/page-${i}`) })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const res = await t.request(`/api/v1/webhooks?limit=2${cursor ? `&starting_after=${cursor}` : ""}`, { key });
      expect(res.status, res.text).toBe(200);
      expect(res.body.object).toBe("list");
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      for (const e of res.body.data) expect(e).not.toHaveProperty("signing_secret");
      seen.push(...res.body.data.map((e: { id: string }) => e.id));
      pages++;
      if (!res.body.has_more) break;
      cursor = res.body.data.at(-1).id;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  it("POST /test sends a signed webhook.test event to that endpoint; events list with pagination and ?type=", async () => {
    const { key } = await t.createAccount(0);
    const path = `/test-${Date.now()}`;
    const ep = await createEndpoint(key, { url: receiver.at(path), event_types: ["generation.failed"] });
    const other = await createEndpoint(key, { url: receiver.at(`${path}-other`) });
    const envelopes: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.request(`/api/v1/webhooks/${ep.id}/test`, { key, method: "POST" });
      expect(res.status, res.text).toBe(202);
      expect(Object.keys(res.body).sort()).toEqual(["api_version", "created_at", "data", "id", "object", "type"]);
      expect(res.body).toMatchObject({
        id: expect.stringMatching(/^evt_[A-Za-z0-9]+$/),
        object: "event",
        type: "webhook.test",
        api_version: "2026-05-11",
        created_at: expect.stringMatching(ISO_MS),
        data: expect.objectContaining({ endpoint_id: ep.id }),
      });
      envelopes.push(res.body);
    }
    await receiver.waitUntil((r) => r.requests.filter((q) => q.path === path).length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    const got = receiver.requests.filter((q) => q.path === path);
    expect(got).toHaveLength(3);
    // Only the endpoint the test was sent to received it.
    expect(receiver.requests.filter((q) => q.path === `${path}-other`)).toHaveLength(0);
    const wh = new Webhook(ep.signing_secret);
    for (const q of got) {
      expect(q.method).toBe("POST");
      expect(q.headers["content-type"]).toMatch(/^application\/json/);
      const envelope = envelopes.find((e) => e.id === q.headers["webhook-id"]);
      expect(envelope, q.headers["webhook-id"]).toBeDefined();
      expect(JSON.parse(q.body)).toEqual(envelope);
      expect(wh.verify(q.body, q.headers)).toEqual(envelope);
      expect(() => new Webhook(other.signing_secret).verify(q.body, q.headers)).toThrow();
    }

    // Events: newest first, paginated, filterable by type.
    const ids = envelopes.map((e) => e.id as string).reverse();
    const page1 = await t.request("/api/v1/webhook-events?limit=2", { key });
    expect(page1.status, page1.text).toBe(200);
    expect(page1.body.object).toBe("list");
    expect(page1.body.has_more).toBe(true);
    const page2 = await t.request(`/api/v1/webhook-events?limit=2&starting_after=${page1.body.data[1].id}`, { key });
    expect(page2.body.has_more).toBe(false);
    const all = [...page1.body.data, ...page2.body.data];
    expect(all.map((e: { id: string }) => e.id)).toEqual(ids);
    for (const e of all) expect(e).toEqual(envelopes.find((x) => x.id === e.id));
    const tests = await t.request("/api/v1/webhook-events?type=webhook.test", { key });
    expect(tests.body.data.map((e: { id: string }) => e.id)).toEqual(ids);
    for (const type of ["generation.succeeded", "generation.failed"]) {
      const none = await t.request(`/api/v1/webhook-events?type=${type}`, { key });
      expect(none.body).toEqual({ object: "list", data: [], has_more: false });
    }

    // The delivery log of the endpoint: three successful first attempts.
    const deliveries = await pollUntil(async () => {
      const d = await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key });
      return d.body.data.length === 3 ? d.body.data : undefined;
    });
    for (const d of deliveries) {
      expect(d).toMatchObject({
        object: "webhook_delivery",
        id: expect.stringMatching(/^whdel_/),
        endpoint_id: ep.id,
        event_type: "webhook.test",
        attempt: 1,
        status: "succeeded",
        response_status: 200,
        error: null,
        response_body: "ok",
        next_attempt_at: null,
      });
    }
    expect(deliveries.map((d: { event_id: string }) => d.event_id).sort()).toEqual([...ids].sort());
    const failedOnly = await t.request(`/api/v1/webhooks/${ep.id}/deliveries?status=failed`, { key });
    expect(failedOnly.body.data).toEqual([]);
    const endpoint = await t.request(`/api/v1/webhooks/${ep.id}`, { key });
    expect(endpoint.body).toMatchObject({ last_success_at: expect.stringMatching(ISO_MS), failure_count: 0 });
  });
});

// -------------------------------------------------------------------------------------------------

/**
 * A fake DNS: made-up names only, never the real resolver. `public.test` answers a public address
 * only while `allowPublic` is set (around its creation request), so no delivery could ever go there.
 * `rebinding.test` answers a public address while `rebindPhase` is "public", then 127.0.0.1.
 */
function fakeDns() {
  const state = { allowPublic: false, rebindPhase: "public" as "public" | "private", calls: [] as string[] };
  const table: Record<string, string[]> = {
    "rebind.test": ["127.0.0.1"],
    "private10.test": ["10.1.2.3"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "192.168.0.10"],
    "ula6.test": ["fd00::1"],
    "loop6.test": ["::1"],
    "mapped6.test": ["::ffff:127.0.0.1"],
  };
  const lookup: LookupFn = (hostname, _options, callback) => {
    state.calls.push(hostname);
    let addresses: string[] | undefined = table[hostname];
    if (hostname === "public.test" && state.allowPublic) addresses = ["93.184.216.34"];
    if (hostname === "rebinding.test") addresses = state.rebindPhase === "public" ? ["93.184.216.34"] : ["127.0.0.1"];
    setImmediate(() => {
      if (!addresses) {
        const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        err.code = "ENOTFOUND";
        callback(err, []);
        return;
      }
      callback(
        null,
        addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 })),
      );
    });
  };
  return { state, lookup };
}

describe("webhook URL guard in STRICT mode (no WEBHOOK_ALLOW_INSECURE_URLS)", () => {
  let t: TestServer;
  let key: string;
  const dns = fakeDns();

  beforeAll(async () => {
    t = await startTestServer(
      { WEBHOOK_RETRY_SCHEDULE_MS: "50", WEBHOOK_TIMEOUT_MS: "1000", RATE_LIMIT_READ_PER_MIN: "0" },
      undefined,
      { lookup: dns.lookup },
    );
    ({ key } = await t.createAccount(0));
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ["http scheme", "http://example.com/hook"],
    ["loopback literal", "https://127.0.0.1/hook"],
    ["loopback literal with port", "https://127.0.0.1:8443/hook"],
    ["IPv6 loopback", "https://[::1]/hook"],
    ["private 10/8", "https://10.0.0.1/hook"],
    ["private 192.168/16", "https://192.168.1.1/hook"],
    ["private 172.16/12", "https://172.16.0.1/hook"],
    ["link-local metadata", "https://169.254.169.254/latest/meta-data"],
    ["CGNAT", "https://100.64.0.1/hook"],
    ["unspecified", "https://0.0.0.0/hook"],
    ["multicast", "https://224.0.0.1/hook"],
    ["broadcast", "https://255.255.255.255/hook"],
    ["IPv4-mapped IPv6 loopback", "https://[::ffff:127.0.0.1]/hook"],
    ["IPv6 unique local", "https://[fd00::1]/hook"],
    ["IPv6 link-local", "https://[fe80::1]/hook"],
    ["decimal IPv4", "https://2130706433/"],
    ["octal IPv4", "https://0177.0.0.1/"],
    ["hex IPv4", "https://0x7f.0.0.1/"],
    ["short IPv4", "https://127.1/"],
    ["userinfo", "https://user:pass@example.com"],
    ["userinfo with a secret-looking password", "https://user:s3cr3tpw@example.com/"],
    ["empty userinfo", "https://@example.com/"],
    ["fragment", "https://example.com/#frag"],
    ["localhost", "https://localhost/"],
    ["localhost, upper case with trailing dot", "https://LOCALHOST./hook"],
    ["subdomain of localhost", "https://api.localhost/hook"],
    ["name resolving to loopback", "https://rebind.test/hook"],
    ["name resolving to 10/8", "https://private10.test/hook"],
    ["name resolving to the metadata address", "https://metadata.test/hook"],
    ["name with one private address among public ones", "https://mixed.test/hook"],
    ["name resolving to IPv6 ULA", "https://ula6.test/hook"],
    ["name resolving to ::1", "https://loop6.test/hook"],
    ["name resolving to mapped loopback", "https://mapped6.test/hook"],
    ["name that does not resolve", "https://nxdomain.test/hook"],
  ])("rejects %s: %s", async (_label, url) => {
    const res = await t.request("/api/v1/webhooks", { key, json: { url, event_types: ["generation.failed"] } });
    expectError(res, 400, "webhook_url_rejected");
    // The reason never echoes the URL (it may carry credentials) nor resolved addresses.
    expect(res.body.error.message).not.toContain("s3cr3tpw");
    expect(res.body.error.message).not.toContain("user:pass@");
    expect(res.body.error.message).not.toContain("127.0.0.1");
    expect(res.body.error.message).not.toMatch(/\.test/);
  });

  // A local receiver is what a developer tries first; the refusal names the setting for it, and
  // only when that setting would let the URL through.
  const HINT = "For local development, setting WEBHOOK_ALLOW_INSECURE_URLS=true on the server allows";
  it.each([
    ["http scheme", "http://example.com/hook"],
    ["localhost over http", "http://localhost:3000/hook"],
    ["loopback literal", "https://127.0.0.1:8443/hook"],
    ["private literal", "https://192.168.1.1/hook"],
    ["name resolving to loopback", "https://rebind.test/hook"],
  ])("the refusal of %s (%s) tells how to allow it for local development", async (_label, url) => {
    const res = await t.request("/api/v1/webhooks", { key, json: { url } });
    expectError(res, 400, "webhook_url_rejected");
    expect(res.body.error.message).toContain(HINT);
  });

  it.each([
    ["credentials", "http://user:pass@localhost/hook"],
    ["a fragment", "https://127.0.0.1/hook#frag"],
    ["a name that does not resolve", "https://nxdomain.test/hook"],
    ["not a URL", "localhost:3000"],
  ])("the refusal of a URL with %s does not suggest the setting (it would not help)", async (_label, url) => {
    const res = await t.request("/api/v1/webhooks", { key, json: { url } });
    expectError(res, 400, "webhook_url_rejected");
    expect(res.body.error.message).not.toContain("WEBHOOK_ALLOW_INSECURE_URLS");
  });

  it("refused URLs created nothing, and PATCH applies the same rules", async () => {
    expect((await t.request("/api/v1/webhooks", { key })).body.data).toEqual([]);
    // Accepted: a name the (fake) DNS maps to a public address. Subscribed to generation.failed
    // only (this server never runs a task), deleted right away, and public.test stops resolving
    // as soon as the create call returns: nothing is ever sent to that address.
    dns.state.allowPublic = true;
    let created: TestResponse;
    try {
      created = await t.request("/api/v1/webhooks", {
        key,
        json: { url: "https://public.test/hook", event_types: ["generation.failed"] },
      });
    } finally {
      dns.state.allowPublic = false;
    }
    expect(created.status, created.text).toBe(201);
    expect(created.body.url).toBe("https://public.test/hook");
    const id = created.body.id;
    for (const url of ["http://public.test/hook", "https://10.0.0.1/", "https://rebind.test/", "https://localhost/"]) {
      const res = await t.request(`/api/v1/webhooks/${id}`, { key, method: "PATCH", json: { url } });
      expectError(res, 400, "webhook_url_rejected");
    }
    expect((await t.request(`/api/v1/webhooks/${id}`, { key })).body.url).toBe("https://public.test/hook");
    const del = await t.request(`/api/v1/webhooks/${id}`, { key, method: "DELETE" });
    expect(del.status).toBe(200);
  });

  it("DNS rebinding: a name public at creation but loopback at delivery is refused at connect time", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const { key: k } = await t.createAccount(0);
      dns.state.rebindPhase = "public";
      let created: TestResponse;
      try {
        created = await t.request("/api/v1/webhooks", {
          key: k,
          json: { url: `https://rebinding.test:${receiver.port}/hook`, event_types: ["generation.failed"] },
        });
      } finally {
        // From now on the name points at the local receiver.
        dns.state.rebindPhase = "private";
      }
      expect(created.status, created.text).toBe(201);
      const ep = created.body;
      const lookupsBefore = dns.state.calls.filter((h) => h === "rebinding.test").length;

      const test = await t.request(`/api/v1/webhooks/${ep.id}/test`, { key: k, method: "POST" });
      expect(test.status, test.text).toBe(202);
      // Schedule "50": two attempts, both refused.
      const deliveries = await pollUntil(async () => {
        const d = await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key: k });
        return d.body.data.length >= 2 ? d.body.data : undefined;
      });
      await new Promise((r) => setTimeout(r, 300));
      const final = (await t.request(`/api/v1/webhooks/${ep.id}/deliveries`, { key: k })).body.data;
      expect(final).toHaveLength(2);
      for (const d of deliveries) {
        expect(d).toMatchObject({
          event_id: test.body.id,
          status: "failed",
          response_status: null,
          response_body: null,
          error: expect.stringMatching(/^blocked: /),
        });
        expect(d.error).not.toContain("127.0.0.1");
      }
      const failed = await t.request(`/api/v1/webhooks/${ep.id}/deliveries?status=failed`, { key: k });
      expect(failed.body.data).toHaveLength(2);
      // The name was resolved again at delivery time, and nothing reached the receiver, not even a connection.
      expect(dns.state.calls.filter((h) => h === "rebinding.test").length).toBeGreaterThan(lookupsBefore);
      expect(receiver.connections).toBe(0);
      expect(receiver.requests).toHaveLength(0);
      const endpoint = await t.request(`/api/v1/webhooks/${ep.id}`, { key: k });
      expect(endpoint.body).toMatchObject({
        failure_count: 2,
        last_failure_at: expect.stringMatching(ISO_MS),
        last_success_at: null,
      });
    } finally {
      await receiver.close();
    }
  });
});
