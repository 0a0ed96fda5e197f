/**
 * Account quotas (issue #12): live webhook endpoints, and the bytes and number of live stored
 * files, each with a configured default and an admin override per account; refusals are 403
 * quota_exceeded with a message naming the limit, and change nothing. Concurrent creates end
 * exactly at the limit. Webhook changes and redeliveries spend the write rate limit, not the
 * read budget.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectApiError, expectNothingStored, storageState, uploadFile } from "./files-helpers.js";
import { fileSize, makeImage } from "./fixtures/media.js";
import { ManualClock, startTestServer, type TestServer } from "./harness.js";
import { WebhookReceiver } from "./webhook-receiver.js";

const DAY_MS = 24 * 3600 * 1000;
const NO_LIMITS = { RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_UPLOAD_PER_MIN: "0" };

describe("webhook endpoint quota (ACCOUNT_MAX_WEBHOOK_ENDPOINTS=3)", () => {
  let t: TestServer;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await startTestServer({
      ...NO_LIMITS,
      RATE_LIMIT_WRITE_PER_MIN: "0",
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      ACCOUNT_MAX_WEBHOOK_ENDPOINTS: "3",
    });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const create = (key: string, path = "/hook") =>
    t.request("/api/v1/webhooks", { key, json: { url: receiver.at(path) } });
  const liveCount = async (key: string) => (await t.request("/api/v1/webhooks?limit=100", { key })).body.data.length;

  it("the 4th endpoint is 403 quota_exceeded naming the limit; a deleted one frees its place", async () => {
    const { key } = await t.createAccount(0);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await create(key, `/ok-${i}`);
      expect(res.status, res.text).toBe(201);
      ids.push(res.body.id);
    }
    const refused = await create(key, "/one-too-many");
    expectApiError(refused, 403, "quota_exceeded", "4th endpoint");
    expect(refused.body.error.message).toBe(
      "This account has 3 webhook endpoints, the most it may have (limit 3); delete one or ask the operator to raise the limit.",
    );
    expect(await liveCount(key)).toBe(3);

    // A disabled endpoint still counts; a deleted one does not.
    const disabled = await t.request(`/api/v1/webhooks/${ids[0]}`, {
      key,
      method: "PATCH",
      json: { status: "disabled" },
    });
    expect(disabled.status).toBe(200);
    expectApiError(await create(key), 403, "quota_exceeded", "with one disabled");
    expect((await t.request(`/api/v1/webhooks/${ids[1]}`, { key, method: "DELETE" })).status).toBe(200);
    expect((await create(key, "/after-delete")).status).toBe(201);
    expectApiError(await create(key), 403, "quota_exceeded", "full again");

    // Another account has its own quota.
    const other = await t.createAccount(0);
    expect((await create(other.key)).status).toBe(201);
  });

  it("2×N concurrent creates around the limit end exactly at the limit", async () => {
    for (const already of [0, 2]) {
      const { key } = await t.createAccount(0);
      for (let i = 0; i < already; i++) expect((await create(key, `/pre-${i}`)).status).toBe(201);
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => create(key, `/race-${i}`)));
      const statuses = results.map((r) => r.status).sort();
      const free = 3 - already;
      expect(statuses, results.map((r) => r.text).join("\n")).toEqual([
        ...Array(free).fill(201),
        ...Array(6 - free).fill(403),
      ]);
      for (const r of results.filter((r) => r.status === 403)) expect(r.body.error.code).toBe("quota_exceeded");
      expect(await liveCount(key)).toBe(3);
    }
  });

  it("the admin override raises and lowers the quota; null goes back to the default", async () => {
    const { accountId, key } = await t.createAccount(0);
    const view = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(view.body).toMatchObject({ max_webhook_endpoints: null, effective_max_webhook_endpoints: 3 });

    const raised = await t.admin(`/admin/v1/accounts/${accountId}`, {
      method: "PATCH",
      json: { max_webhook_endpoints: 5 },
    });
    expect(raised.status, raised.text).toBe(200);
    expect(raised.body).toMatchObject({ max_webhook_endpoints: 5, effective_max_webhook_endpoints: 5 });
    // Other limits are left as they were.
    expect(raised.body).toMatchObject({ max_running_tasks: null, max_files: null, max_file_bytes: null });
    for (let i = 0; i < 5; i++) expect((await create(key, `/raised-${i}`)).status).toBe(201);
    const sixth = await create(key);
    expectApiError(sixth, 403, "quota_exceeded", "6th under 5");
    expect(sixth.body.error.message).toContain("limit 5");

    // Lowered below what exists: the endpoints stay, new ones are refused.
    const lowered = await t.admin(`/admin/v1/accounts/${accountId}`, {
      method: "PATCH",
      json: { max_webhook_endpoints: 1 },
    });
    expect(lowered.body).toMatchObject({ max_webhook_endpoints: 1, effective_max_webhook_endpoints: 1 });
    expect(await liveCount(key)).toBe(5);
    const refused = await create(key);
    expectApiError(refused, 403, "quota_exceeded", "over a lowered quota");
    expect(refused.body.error.message).toContain("has 5 webhook endpoints");

    const reset = await t.admin(`/admin/v1/accounts/${accountId}`, {
      method: "PATCH",
      json: { max_webhook_endpoints: null },
    });
    expect(reset.body).toMatchObject({ max_webhook_endpoints: null, effective_max_webhook_endpoints: 3 });
    const listed = await t.admin("/admin/v1/accounts");
    // biome-ignore lint/suspicious/noExplicitAny: admin JSON
    expect(listed.body.data.find((a: any) => a.id === accountId)).toMatchObject({
      max_webhook_endpoints: null,
      effective_max_webhook_endpoints: 3,
    });
  });
});

describe("stored file quotas (ACCOUNT_MAX_FILES=3)", () => {
  let t: TestServer;
  let dir: string;
  const clock = new ManualClock();
  const images: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-quotas-"));
    t = await startTestServer({ ...NO_LIMITS, ACCOUNT_MAX_FILES: "3", FILE_RETENTION_DAYS: "1" }, undefined, { clock });
    // Three sizes of file (solid colour compresses well: the sizes differ by the pixel count).
    for (const [width, height] of [
      [64, 48],
      [640, 480],
      [1600, 1200],
    ] as const) {
      images.push(await makeImage(dir, { format: "png", width, height }));
    }
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const upload = (key: string, path: string) => uploadFile(t, key, path, { kind: "image" });

  it("the 4th live file is 403 quota_exceeded and stores nothing; expired files no longer count", async () => {
    const { key } = await t.createAccount(0);
    for (let i = 0; i < 3; i++) {
      const res = await upload(key, images[0] as string);
      expect(res.status, res.text).toBe(201);
    }
    const before = await storageState(t);
    const refused = await upload(key, images[1] as string);
    expectApiError(refused, 403, "quota_exceeded", "4th file");
    expect(refused.body.error.message).toBe(
      "This account stores 3 files, the most it may have (limit 3); wait for older files to expire or ask the operator to raise the limit.",
    );
    await expectNothingStored(t, before, "over the file count");

    // Another account is not affected.
    const other = await t.createAccount(0);
    expect((await upload(other.key, images[0] as string)).status).toBe(201);

    // Past their retention the files are no longer live (before any clean-up ran).
    clock.advance(DAY_MS + 1000);
    expect((await upload(key, images[1] as string)).status).toBe(201);
  });

  it("2×N concurrent uploads around the count limit end exactly at the limit, storing only what was accepted", async () => {
    const { key } = await t.createAccount(0);
    const before = await storageState(t);
    const results = await Promise.all(Array.from({ length: 6 }, () => upload(key, images[0] as string)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses, results.map((r) => r.text).join("\n")).toEqual([201, 201, 201, 403, 403, 403]);
    for (const r of results.filter((r) => r.status === 403)) expect(r.body.error.code).toBe("quota_exceeded");
    const after = await storageState(t);
    expect(after.rows - before.rows).toBe(3);
    expect(after.stored.length - before.stored.length).toBe(3);
    expect(after.tmp).toEqual([]);
  });

  it("an upload that would pass the account's bytes is refused and stores nothing; a smaller one fits", async () => {
    const { accountId, key } = await t.createAccount(0);
    const [small, medium, large] = await Promise.all(images.map(fileSize));
    expect(small).toBeLessThan(medium as number);
    expect(medium).toBeLessThan(large as number);
    // Room for the small and the medium file, not for the small and the large one.
    const limit = (small as number) + (medium as number);
    const patched = await t.admin(`/admin/v1/accounts/${accountId}`, {
      method: "PATCH",
      json: { max_file_bytes: limit },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ max_file_bytes: limit, effective_max_file_bytes: limit });

    expect((await upload(key, images[0] as string)).status).toBe(201);
    const before = await storageState(t);
    const refused = await upload(key, images[2] as string);
    expectApiError(refused, 403, "quota_exceeded", "over the bytes");
    expect(refused.body.error.message).toMatch(
      new RegExp(
        `^Storing this file \\(${large} bytes\\) would take the account past its [\\d.]+ KiB \\(${limit} bytes\\) of stored files \\(${small} bytes stored now\\); wait for older files to expire or ask the operator to raise the limit\\.$`,
      ),
    );
    await expectNothingStored(t, before, "over the bytes");

    expect((await upload(key, images[1] as string)).status).toBe(201);
    // Exactly full: the next upload is refused before its body is read.
    const full = await upload(key, images[0] as string);
    expectApiError(full, 403, "quota_exceeded", "full");
    expect(full.body.error.message).toContain(`already take ${limit} bytes`);
  });

  it("the admin override raises and lowers the file count; null goes back to the default", async () => {
    const { accountId, key } = await t.createAccount(0);
    const view = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(view.body).toMatchObject({
      max_files: null,
      effective_max_files: 3,
      max_file_bytes: null,
      effective_max_file_bytes: 1024 * 1024 * 1024,
    });
    const raised = await t.admin(`/admin/v1/accounts/${accountId}`, { method: "PATCH", json: { max_files: 4 } });
    expect(raised.body).toMatchObject({ max_files: 4, effective_max_files: 4 });
    for (let i = 0; i < 4; i++) expect((await upload(key, images[0] as string)).status).toBe(201);
    expectApiError(await upload(key, images[0] as string), 403, "quota_exceeded", "5th under 4");

    const lowered = await t.admin(`/admin/v1/accounts/${accountId}`, { method: "PATCH", json: { max_files: 1 } });
    expect(lowered.body).toMatchObject({ max_files: 1, effective_max_files: 1 });
    expectApiError(await upload(key, images[0] as string), 403, "quota_exceeded", "under 1");

    const reset = await t.admin(`/admin/v1/accounts/${accountId}`, {
      method: "PATCH",
      json: { max_files: null, max_file_bytes: null },
    });
    expect(reset.body).toMatchObject({ max_files: null, effective_max_files: 3 });
  });
});

describe("admin overrides: validation", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  it("bad values are 400 validation_failed and change nothing", async () => {
    const { accountId } = await t.createAccount(0);
    const set = { max_webhook_endpoints: 7, max_file_bytes: 5000, max_files: 9 };
    expect((await t.admin(`/admin/v1/accounts/${accountId}`, { method: "PATCH", json: set })).status).toBe(200);
    const bad: unknown[] = [{}, { max_files: 3, name: "renamed" }];
    for (const field of ["max_webhook_endpoints", "max_file_bytes", "max_files"]) {
      for (const value of [0, -1, 1.5, "3", true, 2 ** 53]) bad.push({ [field]: value });
    }
    bad.push({ max_webhook_endpoints: 10_001 }, { max_files: 10_000_001 });
    for (const json of bad) {
      const res = await t.admin(`/admin/v1/accounts/${accountId}`, { method: "PATCH", json });
      expectApiError(res, 400, "validation_failed", JSON.stringify(json));
    }
    const view = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(view.body).toMatchObject({ ...set, effective_max_webhook_endpoints: 7, effective_max_files: 9 });
  });
});

describe("webhook writes spend the write rate limit (RATE_LIMIT_WRITE_PER_MIN=2)", () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true", RATE_LIMIT_WRITE_PER_MIN: "2" });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it("the third redeliver is 429 while GETs on the same key still work", async () => {
    const { accountId, key } = await t.createAccount(0);
    const created = await t.request("/api/v1/webhooks", { key, json: { url: receiver.at("/write") } });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get("ratelimit-policy")).toBe('"write";q=2;w=60');
    const test = await t.request(`/api/v1/webhooks/${created.body.id}/test`, { key, method: "POST" });
    expect(test.status, test.text).toBe(202);
    // The first key spent its two writes.
    expectApiError(
      await t.request(`/api/v1/webhooks/${created.body.id}`, { key, method: "PATCH", json: { name: "x" } }),
      429,
      "rate_limited",
      "third write",
    );

    // A second key of the account: its own budget of two.
    const second = await t.admin(`/admin/v1/accounts/${accountId}/keys`, { json: {} });
    const other = second.body.key as string;
    const redeliver = () =>
      t.request(`/api/v1/webhook-events/${test.body.id}/redeliver`, { key: other, method: "POST" });
    expect((await redeliver()).status).toBe(202);
    expect((await redeliver()).status).toBe(202);
    const third = await redeliver();
    expectApiError(third, 429, "rate_limited", "third redeliver");
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);

    for (const path of ["/api/v1/webhook-events", `/api/v1/webhooks/${created.body.id}`, "/api/v1/webhooks"]) {
      const read = await t.request(path, { key: other });
      expect(read.status, `${path}: ${read.text}`).toBe(200);
      expect(read.headers.get("ratelimit-policy")).toContain('"read"');
    }
  });
});
