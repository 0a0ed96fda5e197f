/**
 * Account lifecycle (issue 18): GET /admin/v1/accounts/{id}/export holds the account's data and
 * no secret; DELETE /admin/v1/accounts/{id} revokes its keys at once, cancels and refunds its
 * running tasks, removes its files' and results' bytes, keeps its ledger balanced, and leaves
 * every other account as it was. A create racing the delete never leaves a charge without its
 * refund. Runs on SQLite, and on PostgreSQL with FRAMEGATE_TEST_PG=1.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { offlineLifecycle } from "../src/accounts/lifecycle-offline.js";
import { createLogger } from "../src/logger.js";
import { formatVerifyReport, verifyStore } from "../src/ops/verify.js";
import { openStore } from "../src/server.js";
import { systemClock } from "../src/util/clock.js";
import { expectApiError, readStored } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { ADMIN_TOKEN, startTestServer, type TestServer } from "./harness.js";
import {
  createGeneration,
  E2E_ENV,
  expectLedgerBalanced,
  fetchBytes,
  PRICE,
  until,
  uploadReference,
} from "./provider-e2e-helpers.js";

const CREDITS = 1000;

// biome-ignore lint/suspicious/noExplicitAny: task / export JSON
type Json = any;

interface Account {
  accountId: string;
  key: string;
  keyId: string;
}

describe("account lifecycle: export and delete", () => {
  let t: TestServer;
  let dir: string;
  let png: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-lifecycle-"));
    t = await startTestServer({
      ...E2E_ENV,
      WEBHOOK_ALLOW_INSECURE_URLS: "true",
      RATE_LIMIT_WRITE_PER_MIN: "0",
      REFERENCE_URL_FETCH: "true",
      REFERENCE_URL_ALLOW_INSECURE: "true",
    });
    png = await makeImage(dir, { format: "png", width: 400, height: 400, color: "#c03070" });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const task = async (id: string): Promise<Json> => (await t.admin(`/admin/v1/tasks/${id}`)).body.task;

  /** An account with a file, a webhook endpoint, a finished task with a result, and `running` long tasks. */
  async function populated(running: number) {
    const account: Account = await t.createAccount(CREDITS);
    const file = await uploadReference(t, account.key, png);
    const endpoint = await t.request("/api/v1/webhooks", {
      key: account.key,
      json: { url: "http://127.0.0.1:9/hooks/private-customer-path" },
    });
    expect(endpoint.status, endpoint.text).toBe(201);
    const done = await createGeneration(t, account.key, "a quiet harbour at dawn");
    await until(async () => (await task(done)).status === "succeeded", "the quick task succeeded", 30_000);
    const long: string[] = [];
    for (let i = 0; i < running; i++) long.push(await createGeneration(t, account.key, `[sim:delay=60] long ${i}`));
    const result = await task(done);
    return { account, file, endpoint: endpoint.body, done, long, result };
  }

  const storedKeys = async (accountId: string) => {
    const db = t.server.store.db;
    const files = await db.selectFrom("files").select("storage_key").where("account_id", "=", accountId).execute();
    const tasks = await db.selectFrom("tasks").select("result").where("account_id", "=", accountId).execute();
    const media = tasks.flatMap((r) => (r.result ? (JSON.parse(r.result).media as { key: string }[]) : []));
    return [...files.map((f) => f.storage_key), ...media.map((m) => m.key)];
  };

  const exists = async (key: string) =>
    readStored(t, key).then(
      (bytes) => bytes.length > 0,
      () => false,
    );

  it("export holds the account, keys (no secret or hash), endpoints (no secret), files, tasks and ledger", async () => {
    const { account, file, endpoint, done, long } = await populated(1);
    const res = await fetch(`${t.server.adminUrl}/admin/v1/accounts/${account.accountId}/export`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("content-disposition")).toContain(`${account.accountId}-export.json`);
    const text = await res.text();
    const doc = JSON.parse(text) as Json;

    expect(doc).toMatchObject({ object: "account_export", schema_version: 1, account: { id: account.accountId } });
    expect(Date.parse(doc.generated_at)).not.toBeNaN();
    expect(doc.account.credits).toBe(CREDITS - 2 * PRICE);
    expect(doc.api_keys.map((k: Json) => k.id)).toEqual([account.keyId]);
    expect(doc.api_keys[0].prefix).toEqual(expect.any(String));
    expect(doc.webhook_endpoints.map((e: Json) => e.id)).toEqual([endpoint.id]);
    expect(doc.webhook_endpoints[0].url).toBe("http://127.0.0.1:9/hooks/private-customer-path");
    expect(doc.files.map((f: Json) => f.id)).toEqual([file.id]);
    expect(doc.files[0]).toMatchObject({ sha256: file.sha256, size_bytes: file.size_bytes });
    expect(doc.tasks.map((x: Json) => x.task.id).sort()).toEqual([done, ...long].sort());
    const finished = doc.tasks.find((x: Json) => x.task.id === done);
    expect(finished.task.status).toBe("succeeded");
    expect(finished.provider).toBe("simulated");
    expect(doc.ledger.map((e: Json) => e.type).sort()).toEqual(["grant", "reserve", "reserve"]);
    expect(doc.ledger.reduce((sum: number, e: Json) => sum + e.amount, 0)).toBe(doc.account.credits);

    // No secret anywhere: the key, its stored hash, the endpoint's signing secret, storage keys.
    const keyRow = await t.server.store.db
      .selectFrom("api_keys")
      .select("key_hash")
      .where("id", "=", account.keyId)
      .executeTakeFirstOrThrow();
    const endpointRow = await t.server.store.db
      .selectFrom("webhook_endpoints")
      .select("secret_encrypted")
      .where("id", "=", endpoint.id)
      .executeTakeFirstOrThrow();
    expect(text).not.toContain(account.key);
    expect(text).not.toContain(keyRow.key_hash);
    expect(text).not.toContain(endpoint.signing_secret);
    expect(text).not.toContain(endpoint.signing_secret.slice(6));
    expect(text).not.toContain(endpointRow.secret_encrypted);
    expect(text).not.toContain("key_hash");

    expectApiError(await t.admin("/admin/v1/accounts/acct_nope/export"), 404, "not_found", "unknown account");
    expectApiError(
      await t.request(`/admin/v1/accounts/${account.accountId}/export`, { key: account.key }),
      401,
      "api_key_invalid",
      "a customer key",
    );
  }, 90_000);

  it("export pages through lists longer than one batch, ties on created_at included, each row once", async () => {
    const { accountId } = await t.createAccount(0);
    // 450 entries (batches of 200), half of them sharing one created_at: the cursor's id decides.
    const rows = Array.from({ length: 450 }, (_, i) => ({
      id: `led_bulk_${String(i).padStart(4, "0")}`,
      account_id: accountId,
      amount: 1,
      type: "grant" as const,
      task_id: null,
      reason: null,
      created_at: i < 225 ? "2026-01-01T00:00:00.000Z" : new Date(Date.UTC(2026, 0, 2, 0, 0, i)).toISOString(),
    }));
    await t.server.store.db.insertInto("ledger_entries").values(rows).execute();
    await t.server.store.db.updateTable("accounts").set({ balance: 450 }).where("id", "=", accountId).execute();
    const doc = (await t.admin(`/admin/v1/accounts/${accountId}/export`)).body;
    expect(doc.ledger.map((e: Json) => e.id)).toEqual(rows.map((r) => r.id));
    expect(doc.account.credits).toBe(450);
  });

  it("delete: key refused at once, tasks cancelled and refunded, bytes gone, ledger kept; others untouched", async () => {
    const victim = await populated(2);
    const other = await populated(1);
    const victimKeys = await storedKeys(victim.account.accountId);
    const otherKeys = await storedKeys(other.account.accountId);
    expect(victimKeys.length).toBeGreaterThanOrEqual(2);
    for (const key of [...victimKeys, ...otherKeys]) expect(await exists(key), key).toBe(true);
    const otherBefore = (await t.admin(`/admin/v1/accounts/${other.account.accountId}`)).body;
    // The key works (and is cached) right before the delete.
    expect((await t.request("/api/v1/credits", { key: victim.account.key })).status).toBe(200);

    const res = await t.admin(`/admin/v1/accounts/${victim.account.accountId}`, { method: "DELETE" });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      id: victim.account.accountId,
      deleted: true,
      keys_revoked: 1,
      webhook_endpoints_revoked: 1,
      tasks_canceled: 2,
      pending_tasks: [],
      files_pending: 0,
      files_removed: 1,
      results_removed: 1,
      credits: CREDITS - PRICE,
    });

    // The key is refused at once, by this process's cache too.
    expectApiError(await t.request("/api/v1/credits", { key: victim.account.key }), 401, "api_key_revoked", "key");
    for (const id of victim.long) {
      expect(await task(id)).toMatchObject({ status: "failed", error: { reason: "canceled" } });
    }
    const refunds = await t.server.store.db
      .selectFrom("ledger_entries")
      .select("task_id")
      .where("account_id", "=", victim.account.accountId)
      .where("type", "=", "refund")
      .execute();
    expect(refunds.map((r) => r.task_id).sort()).toEqual([...victim.long].sort());
    expect(await expectLedgerBalanced(t, victim.account.accountId)).toBe(CREDITS - PRICE);
    for (const key of victimKeys) expect(await exists(key), `victim's ${key}`).toBe(false);
    // The finished task keeps its record (credits, status), not its prompt.
    const finished = await t.server.store.db
      .selectFrom("tasks")
      .select(["prompt", "status", "final_credits", "result_purged_at"])
      .where("id", "=", victim.done)
      .executeTakeFirstOrThrow();
    expect(finished).toMatchObject({ prompt: "", status: "succeeded", final_credits: PRICE });
    expect(finished.result_purged_at).not.toBeNull();
    const endpoint = await t.server.store.db
      .selectFrom("webhook_endpoints")
      .select(["status", "revoked_at"])
      .where("id", "=", victim.endpoint.id)
      .executeTakeFirstOrThrow();
    expect(endpoint.status).toBe("disabled");
    expect(endpoint.revoked_at).not.toBeNull();

    // Listed as deleted; no new key or credits; the database refuses any debit.
    const listed = (await t.admin("/admin/v1/accounts?limit=100")).body.data.find(
      (a: Json) => a.id === victim.account.accountId,
    );
    expect(listed.deleted_at).toBe(res.body.deleted_at);
    const newKey = await t.admin(`/admin/v1/accounts/${victim.account.accountId}/keys`, { json: {} });
    expectApiError(newKey, 404, "not_found", "new key");
    expect(newKey.body.error.message).toMatch(/was deleted/);
    expectApiError(
      await t.admin(`/admin/v1/accounts/${victim.account.accountId}/credits`, { json: { amount: 5 } }),
      404,
      "not_found",
      "grant",
    );
    const debit = await t.server.store.db
      .updateTable("accounts")
      .set({ balance: sql<number>`balance - 1` })
      .where("id", "=", victim.account.accountId)
      .executeTakeFirst();
    expect(Number(debit.numUpdatedRows)).toBe(0);
    expect(await expectLedgerBalanced(t, victim.account.accountId)).toBe(CREDITS - PRICE);

    // Deleting again finishes nothing new and says so.
    const again = await t.admin(`/admin/v1/accounts/${victim.account.accountId}`, { method: "DELETE" });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({ deleted_at: res.body.deleted_at, keys_revoked: 0, tasks_canceled: 0 });
    expectApiError(await t.admin("/admin/v1/accounts/acct_nope", { method: "DELETE" }), 404, "not_found", "unknown");

    // The other account: same balance, tasks, key, bytes; its result still downloads.
    const otherAfter = (await t.admin(`/admin/v1/accounts/${other.account.accountId}`)).body;
    expect(otherAfter).toEqual(otherBefore);
    expect(otherAfter.deleted_at).toBeNull();
    expect((await t.request("/api/v1/credits", { key: other.account.key })).status).toBe(200);
    for (const key of otherKeys) expect(await exists(key), `other's ${key}`).toBe(true);
    const otherTask = await t.request(`/api/v1/generations/${other.done}`, { key: other.account.key });
    expect((await fetchBytes(otherTask.body.result.media[0].url)).status).toBe(200);
    expect((await t.request(`/api/v1/files/${other.file.id}`, { key: other.account.key })).status).toBe(200);
    expect((await task(other.long[0] as string)).status).toMatch(/queued|processing/);

    // framegate verify's invariants hold after a delete (ledger, task credits, media, files).
    const report = await verifyStore({
      db: t.server.store.db,
      dialect: t.server.store.dialect,
      storage: t.server.storage,
      clock: systemClock,
    });
    expect(
      report.checks.filter((c) => c.violations > 0),
      formatVerifyReport(report),
    ).toEqual([]);
  }, 120_000);

  it("a delete from another process (the CLI): the server refuses the key at once and its housekeeping finishes", async () => {
    const { account, long, done } = await populated(1);
    const keys = await storedKeys(account.accountId);
    // Cached by the server now.
    expect((await t.request("/api/v1/credits", { key: account.key })).status).toBe(200);
    const store = await openStore(t.server.config);
    try {
      const lifecycle = await offlineLifecycle(t.server.config, store, createLogger("silent"));
      const closed = await lifecycle.close(account.accountId);
      expect(closed.keyIds).toEqual([account.keyId]);
    } finally {
      await store.close();
    }
    // SQLite: the server sees another connection's commit within 20 ms; PostgreSQL: its NOTIFY.
    await until(
      async () => (await t.request("/api/v1/credits", { key: account.key })).status === 401,
      "the key is refused",
      5_000,
    );
    expect((await task(long[0] as string)).status).toMatch(/queued|processing/);
    await t.server.runMaintenance();
    expect(await task(long[0] as string)).toMatchObject({ status: "failed", error: { reason: "canceled" } });
    for (const key of keys) expect(await exists(key), key).toBe(false);
    const finished = await t.server.store.db
      .selectFrom("tasks")
      .select(["prompt", "result_purged_at"])
      .where("id", "=", done)
      .executeTakeFirstOrThrow();
    expect(finished.prompt).toBe("");
    expect(await expectLedgerBalanced(t, account.accountId)).toBe(CREDITS - PRICE);
  }, 120_000);

  it("creates that authenticated before the delete and commit after it: refused, nothing charged", async () => {
    // Each create authenticates, then fetches its reference from this origin, which holds every
    // answer until the delete has committed: the create's transaction comes after the close.
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let hits = 0;
    const origin = http.createServer(async (_req, res) => {
      hits++;
      await held;
      const body = await readFile(png);
      res.writeHead(200, { "content-type": "image/png", "content-length": body.length }).end(body);
    });
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    try {
      const account: Account = await t.createAccount(CREDITS);
      const before = await t.server.store.db
        .selectFrom("tasks")
        .select("id")
        .where("account_id", "=", account.accountId)
        .execute();
      expect(before).toEqual([]);
      const creates = [0, 1, 2].map((i) =>
        t.request("/api/v1/generations", {
          key: account.key,
          json: {
            model: "kling-2-6",
            prompt: `[sim:delay=60] race ${i}`,
            params: { referenceMediaItems: [{ url: `${base}/ref.png?i=${i}`, kind: "image", mimeType: "image/png" }] },
          },
        }),
      );
      await until(() => hits === 3, "every create is fetching its reference", 20_000);
      const deletion = await t.admin(`/admin/v1/accounts/${account.accountId}`, { method: "DELETE" });
      expect(deletion.status, deletion.text).toBe(200);
      release();
      for (const res of await Promise.all(creates)) {
        // The database refused the debit of the closed account: answered as a short balance.
        expectApiError(res, 402, "insufficient_credits", "a create after the close");
      }
      const tasks = await t.server.store.db
        .selectFrom("tasks")
        .select("id")
        .where("account_id", "=", account.accountId)
        .execute();
      expect(tasks).toEqual([]);
      expect(await expectLedgerBalanced(t, account.accountId)).toBe(CREDITS);
      // The fetched files landed after the close: housekeeping removes them like the rest.
      await t.server.runMaintenance();
      const live = await t.server.store.db
        .selectFrom("files")
        .select(["id", "purge_pending"])
        .where("account_id", "=", account.accountId)
        .where("deleted_at", "is", null)
        .execute();
      expect(live).toEqual([]);
    } finally {
      release();
      origin.closeAllConnections();
      await new Promise<void>((resolve) => origin.close(() => resolve()));
    }
  }, 120_000);

  it("creates racing a delete: every task charged to the deleted account is refunded", async () => {
    const account: Account = await t.createAccount(CREDITS);
    const creates: Promise<Json>[] = [];
    for (let i = 0; i < 12; i++) {
      creates.push(
        t.request("/api/v1/generations", {
          key: account.key,
          json: { model: "kling-2-6", prompt: `[sim:delay=60] race ${i}` },
        }),
      );
      if (i === 5) creates.push(t.admin(`/admin/v1/accounts/${account.accountId}`, { method: "DELETE" }));
    }
    // A create answered after the delete was refused (its key revoked); one that committed
    // before was seen and cancelled by the delete. None waits for a second delete or housekeeping.
    const answers = await Promise.all(creates);
    for (const a of answers) expect(a.status, a.text).toBeLessThan(500);
    expect(answers[6]?.status, answers[6]?.text).toBe(200);
    const tasks = await t.server.store.db
      .selectFrom("tasks")
      .select(["id", "status", "error_reason"])
      .where("account_id", "=", account.accountId)
      .execute();
    const ledger = await t.server.store.db
      .selectFrom("ledger_entries")
      .select(["task_id", "type"])
      .where("account_id", "=", account.accountId)
      .execute();
    for (const row of tasks) {
      expect(row, row.id).toMatchObject({ status: "failed", error_reason: "canceled" });
      expect(
        ledger
          .filter((e) => e.task_id === row.id)
          .map((e) => e.type)
          .sort(),
        row.id,
      ).toEqual(["refund", "reserve"]);
    }
    expect(await expectLedgerBalanced(t, account.accountId)).toBe(CREDITS);
  }, 120_000);
});
