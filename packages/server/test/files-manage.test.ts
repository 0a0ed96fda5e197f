/**
 * File management (issue #14): GET /api/v1/files lists the account's live files newest first,
 * paginated and filtered by kind; DELETE /api/v1/files/{id} removes a file at once for the API
 * (not listed, not usable by a new task, not counted by the quotas) and its bytes now, or, while
 * queued or processing tasks use it, when the last of them ends. A create racing a delete either
 * fails as for an unknown file or keeps the file for its task: never a task whose file is gone.
 *
 * Runs on SQLite with local storage, and with FRAMEGATE_TEST_PG=1 on PostgreSQL with S3.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileDeletionSchema, FileListSchema } from "@framegate/contract";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FileService } from "../src/files/service.js";
import { expectApiError, pollUntil, sleep, uploadFile } from "./files-helpers.js";
import { makeImage, makeVideo } from "./fixtures/media.js";
import { startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";
import { TEST_STORE } from "./test-store.js";

const KLING = "kling-2-6";

// biome-ignore lint/suspicious/noExplicitAny: file / task JSON
type Json = any;

interface Account {
  key: string;
  accountId: string;
}

/**
 * On PostgreSQL the create runs as one SQL function with graphile-worker (the default), or as
 * portable statements with the table queue: both check the files under the same lock.
 */
const VARIANTS: { label: string; env: Record<string, string> }[] =
  TEST_STORE === "postgres"
    ? [
        { label: "", env: {} },
        { label: " (table queue)", env: { QUEUE_DRIVER: "table" } },
      ]
    : [{ label: "", env: {} }];

for (const { label, env } of VARIANTS)
  describe(`file management${label}`, () => {
    let t: TestServer;
    let dir: string;
    let png: string;
    let mp4: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "framegate-files-manage-"));
      t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0", RATE_LIMIT_WRITE_PER_MIN: "0", ...env });
      png = await makeImage(dir, { format: "png", width: 400, height: 400, color: "#3070c0" });
      mp4 = await makeVideo(dir, { format: "mp4", width: 320, height: 240, seconds: 3 });
    });
    afterAll(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function upload(account: Account, path = png, kind = "image"): Promise<Json> {
      const res = await uploadFile(t, account.key, path, { kind, ...(kind === "image" ? { model: KLING } : {}) });
      expect(res.status, res.text).toBe(201);
      return res.body;
    }

    const list = (account: Account, query = "") => t.request(`/api/v1/files${query}`, { key: account.key });
    const remove = (account: Account, id: string) =>
      t.request(`/api/v1/files/${id}`, { key: account.key, method: "DELETE" });

    function generate(
      account: Account,
      fileUrl: string,
      prompt = "The reference comes to life",
    ): Promise<TestResponse> {
      return t.request("/api/v1/generations", {
        key: account.key,
        json: {
          model: KLING,
          prompt,
          params: {
            aspect_ratio: "16:9",
            referenceMediaItems: [{ url: fileUrl, kind: "image", mimeType: "image/png" }],
          },
        },
      });
    }

    const rowOf = (id: string) =>
      t.server.store.db.selectFrom("files").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const bytesExist = async (id: string) => (await t.server.storage.stat((await rowOf(id)).storage_key)) !== undefined;

    async function balance(account: Account): Promise<number> {
      const res = await t.request("/api/v1/credits", { key: account.key });
      expect(res.status, res.text).toBe(200);
      return res.body.current_credits;
    }

    it("lists the account's files newest first, page by page, filtered by kind", async () => {
      const a = await t.createAccount(0);
      const b = await t.createAccount(0);
      const images = [await upload(a), await upload(a), await upload(a)];
      const video = await upload(a, mp4, "video");
      const foreign = await upload(b);
      const newestFirst = [video, ...[...images].reverse()].map((f) => f.id);

      const first = await list(a, "?limit=3");
      expect(first.status, first.text).toBe(200);
      expect(FileListSchema.safeParse(first.body).error).toBeUndefined();
      expect(first.body.object).toBe("list");
      expect(first.body.has_more).toBe(true);
      expect(first.body.data.map((f: Json) => f.id)).toEqual(newestFirst.slice(0, 3));
      // Each item is the object GET /api/v1/files/{id} returns.
      const single = await t.request(`/api/v1/files/${video.id}`, { key: a.key });
      expect(first.body.data[0]).toEqual(single.body);

      const second = await list(a, `?limit=3&starting_after=${first.body.data[2].id}`);
      expect(second.status, second.text).toBe(200);
      expect(second.body.data.map((f: Json) => f.id)).toEqual(newestFirst.slice(3));
      expect(second.body.has_more).toBe(false);

      const videos = await list(a, "?kind=video");
      expect(videos.body.data.map((f: Json) => f.id)).toEqual([video.id]);
      const imagesOnly = await list(a, "?kind=image&limit=100");
      expect(imagesOnly.body.data.map((f: Json) => f.id)).toEqual(newestFirst.slice(1));
      expect((await list(a, "?kind=audio")).body).toEqual({ object: "list", data: [], has_more: false });

      // Isolation: B sees only its own file, and A's ids cannot position B's pages.
      expect((await list(b)).body.data.map((f: Json) => f.id)).toEqual([foreign.id]);
      expectApiError(await list(b, `?starting_after=${video.id}`), 400, "validation_failed", "foreign cursor");

      // Bad queries are 400s in the envelope.
      for (const query of [
        "?kind=document",
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?sort=asc",
        "?starting_after=a-b",
      ]) {
        expectApiError(await list(a, query), 400, "validation_failed", query);
      }
    });

    it("delete removes the bytes, frees the quota, and a second delete is 404", async () => {
      const a = await t.createAccount(0);
      const b = await t.createAccount(0);
      const limited = await t.admin(`/admin/v1/accounts/${a.accountId}`, { method: "PATCH", json: { max_files: 2 } });
      expect(limited.status, limited.text).toBe(200);
      const kept = await upload(a);
      const doomed = await upload(a);
      const full = await uploadFile(t, a.key, png, { kind: "image" });
      expectApiError(full, 403, "quota_exceeded", "third file");
      expect(await bytesExist(doomed.id)).toBe(true);

      // Another account's delete is a 404 and changes nothing.
      expectApiError(await remove(b, doomed.id), 404, "not_found", "foreign delete");
      expectApiError(await remove(a, "file_doesnotexist"), 404, "not_found", "unknown id");
      expect(await bytesExist(doomed.id)).toBe(true);

      const deleted = await remove(a, doomed.id);
      expect(deleted.status, deleted.text).toBe(200);
      expect(FileDeletionSchema.strict().safeParse(deleted.body).error).toBeUndefined();
      expect(deleted.body).toEqual({
        id: doomed.id,
        object: "file",
        deleted: true,
        storage: "removed",
        pending_tasks: [],
      });
      expect(await bytesExist(doomed.id)).toBe(false);
      expect((await rowOf(doomed.id)).purge_pending).toBe(0);
      expectApiError(await t.request(`/api/v1/files/${doomed.id}`, { key: a.key }), 404, "not_found", "get deleted");
      expect((await list(a)).body.data.map((f: Json) => f.id)).toEqual([kept.id]);
      // Its signed URL no longer serves anything.
      expect((await fetch(doomed.url)).status).toBe(404);
      // The freed slot takes a new upload.
      await upload(a);

      // Deleting again: 404, as for any file that does not exist (nothing is revealed either way).
      expectApiError(await remove(a, doomed.id), 404, "not_found", "second delete");
    });

    it("delete needs files:create; files:read only lists", async () => {
      const owner = await t.createAccount(0);
      const file = await upload(owner);
      const readKey = await t.admin(`/admin/v1/accounts/${owner.accountId}/keys`, { json: { scopes: ["files:read"] } });
      expect(readKey.status, readKey.text).toBe(201);
      const reader = { key: readKey.body.key as string, accountId: owner.accountId };
      expect((await list(reader)).status).toBe(200);
      expectApiError(await remove(reader, file.id), 403, "api_scope_denied", "read-only key");
      const writeKey = await t.admin(`/admin/v1/accounts/${owner.accountId}/keys`, {
        json: { scopes: ["files:create"] },
      });
      const writer = { key: writeKey.body.key as string, accountId: owner.accountId };
      expectApiError(await list(writer), 403, "api_scope_denied", "list without files:read");
      expect((await remove(writer, file.id)).status).toBe(200);
    });

    it("a file a running task uses is hidden at once and its bytes go when the task ends", async () => {
      const a = await t.createAccount(1000);
      const file = await upload(a);
      const created = await generate(a, file.url, "slow [sim:delay=3]");
      expect(created.status, created.text).toBe(202);

      const deleted = await remove(a, file.id);
      expect(deleted.status, deleted.text).toBe(202);
      expect(deleted.body).toEqual({
        id: file.id,
        object: "file",
        deleted: true,
        storage: "pending_removal",
        pending_tasks: [created.body.id],
      });
      // Gone for the API at once: not found, not listed, not usable by a new task (nothing charged).
      expectApiError(await t.request(`/api/v1/files/${file.id}`, { key: a.key }), 404, "not_found", "get");
      expect((await list(a)).body.data).toEqual([]);
      const credits = await balance(a);
      const refused = await generate(a, file.url);
      expectApiError(refused, 400, "validation_failed", "new task with the deleted file");
      expect(refused.body.error.details).toEqual([
        { path: "params.referenceMediaItems[0].url", issue: expect.stringMatching(/names no file of this account/) },
      ]);
      expect(await balance(a)).toBe(credits);
      expectApiError(await remove(a, file.id), 404, "not_found", "delete while pending");
      // Housekeeping leaves the bytes alone while the task runs.
      await t.server.runMaintenance();
      expect(await bytesExist(file.id)).toBe(true);

      const task = await waitForTask(t, a.key, created.body.id);
      expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
      // The task's end queued the purge: the bytes go without waiting for housekeeping.
      const purged = async () => !(await bytesExist(file.id)) && (await rowOf(file.id)).purge_pending === 0;
      expect(await pollUntil(purged, 10_000)).toBe(true);
    });

    it("cancelling the last task that uses a deleted file removes its bytes", async () => {
      const a = await t.createAccount(1000);
      const file = await upload(a);
      const created = await generate(a, file.url, "slow [sim:delay=30]");
      expect(created.status, created.text).toBe(202);
      const deleted = await remove(a, file.id);
      expect(deleted.status, deleted.text).toBe(202);
      const canceled = await t.request(`/api/v1/generations/${created.body.id}/cancel`, { key: a.key, method: "POST" });
      expect(canceled.status, canceled.text).toBe(200);
      const purged = async () => !(await bytesExist(file.id)) && (await rowOf(file.id)).purge_pending === 0;
      expect(await pollUntil(purged, 10_000)).toBe(true);
    });

    it("a storage failure during a delete leaves the bytes pending for housekeeping, not a 500", async () => {
      const a = await t.createAccount(0);
      const file = await upload(a);
      const failing = vi.spyOn(t.server.storage, "delete").mockRejectedValueOnce(new Error("storage is down"));
      let deleted: TestResponse;
      try {
        deleted = await remove(a, file.id);
      } finally {
        failing.mockRestore();
      }
      expect(deleted.status, deleted.text).toBe(202);
      expect(deleted.body).toMatchObject({ deleted: true, storage: "pending_removal", pending_tasks: [] });
      expectApiError(await t.request(`/api/v1/files/${file.id}`, { key: a.key }), 404, "not_found", "get");
      expect(await bytesExist(file.id)).toBe(true);
      await t.server.runMaintenance();
      expect(await bytesExist(file.id)).toBe(false);
      expect((await rowOf(file.id)).purge_pending).toBe(0);
    });

    it("housekeeping removes the bytes a purge left behind (a crash after the mark)", async () => {
      const a = await t.createAccount(0);
      const file = await upload(a);
      // What a process that died between marking the file and removing its bytes leaves.
      await t.server.store.db
        .updateTable("files")
        .set({ deleted_at: new Date().toISOString(), purge_pending: 1 })
        .where("id", "=", file.id)
        .execute();
      expect(await bytesExist(file.id)).toBe(true);
      const report = await t.server.runMaintenance();
      expect(report.filesPurged).toBeGreaterThanOrEqual(1);
      expect(await bytesExist(file.id)).toBe(false);
      expect((await rowOf(file.id)).purge_pending).toBe(0);
    });

    it("a delete that commits after a create resolved its references fails the create, charging nothing", async () => {
      const a = await t.createAccount(1000);
      const file = await upload(a);
      const credits = await balance(a);
      // Puts the delete exactly in the gap: after the create found the file, before its transaction.
      const findOwned = FileService.prototype.findOwned;
      let deleted: TestResponse | undefined;
      const spy = vi.spyOn(FileService.prototype, "findOwned").mockImplementation(async function (
        this: FileService,
        accountId: string,
        fileId: string,
      ) {
        const row = await findOwned.call(this, accountId, fileId);
        if (fileId === file.id && !deleted) deleted = await remove(a, file.id);
        return row;
      });
      let created: TestResponse;
      try {
        created = await generate(a, file.url);
      } finally {
        spy.mockRestore();
      }
      expect(deleted?.status, deleted?.text).toBe(200);
      expectApiError(created, 400, "validation_failed", "create after the delete");
      expect(created.body.error.details).toEqual([
        { path: "params.referenceMediaItems[0].url", issue: expect.stringMatching(/names no file of this account/) },
      ]);
      expect(await balance(a)).toBe(credits);
      expect((await t.request("/api/v1/generations", { key: a.key })).body.data).toEqual([]);
      expect(await bytesExist(file.id)).toBe(false);
    });

    it.runIf(TEST_STORE === "postgres")(
      "PostgreSQL: a create that waits on a delete's row lock sees the delete",
      async () => {
        const a = await t.createAccount(1000);
        const file = await upload(a);
        const credits = await balance(a);
        const { db } = t.server.store;
        const waitingCreates = async () => {
          const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
        where wait_event_type = 'Lock'
          and (query like '%framegate_create_generation%' or query like '%for share%')`.execute(db);
          return Number(rows[0]?.n ?? 0);
        };
        let created: Promise<TestResponse> | undefined;
        await db.transaction().execute(async (trx) => {
          // What a delete holds between its UPDATE and its COMMIT.
          await trx
            .updateTable("files")
            .set({ deleted_at: new Date().toISOString(), purge_pending: 1 })
            .where("id", "=", file.id)
            .execute();
          // The create still finds the file (the delete has not committed), then waits on its row.
          created = generate(a, file.url);
          expect(await pollUntil(async () => (await waitingCreates()) > 0, 10_000, 20)).toBe(true);
        });
        const res = await (created as Promise<TestResponse>);
        expectApiError(res, 400, "validation_failed", "create behind the delete");
        expect(res.body.error.details[0].path).toBe("params.referenceMediaItems[0].url");
        expect(await balance(a)).toBe(credits);
        expect((await t.request("/api/v1/generations", { key: a.key })).body.data).toEqual([]);
        // That "delete" never removed the bytes: housekeeping does.
        await t.server.runMaintenance();
        expect(await bytesExist(file.id)).toBe(false);
      },
    );

    it("a create racing a delete either fails as for an unknown file or keeps the file for its task", async () => {
      const a = await t.createAccount(100_000);
      const rounds = 16;
      const outcomes = { kept: 0, refused: 0 };
      const taskIds: string[] = [];
      const files: string[] = [];
      for (let round = 0; round < rounds; round++) {
        const file = await upload(a);
        files.push(file.id);
        // The delete leaves a little later each round (0 to 21 ms), so it lands before, inside
        // and after the create's work in turn.
        const [created, deleted] = await Promise.all([
          generate(a, file.url),
          sleep((round % 8) * 3).then(() => remove(a, file.id)),
        ]);
        if (created.status === 202) {
          outcomes.kept++;
          taskIds.push(created.body.id);
          // The delete committed after the create: it names the task and keeps the bytes for it,
          // unless the task had already finished by then.
          expect([200, 202], deleted.text).toContain(deleted.status);
          if (deleted.status === 202) expect(deleted.body.pending_tasks).toEqual([created.body.id]);
        } else {
          outcomes.refused++;
          expectApiError(created, 400, "validation_failed", `round ${round}`);
          expect(created.body.error.details[0].path).toBe("params.referenceMediaItems[0].url");
          expect(deleted.status, deleted.text).toBe(200);
        }
      }
      // Every task that was created ran with its file: the simulator reads the reference image.
      for (const id of taskIds) {
        const task = await waitForTask(t, a.key, id);
        expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
      }
      // And once they ended, no deleted file keeps its bytes.
      expect(
        await pollUntil(async () => {
          for (const id of files) if (await bytesExist(id)) return false;
          return true;
        }, 10_000),
      ).toBe(true);
      console.log(`create vs delete on ${TEST_STORE}: ${JSON.stringify(outcomes)} of ${rounds} rounds`);
      // Credits: every refused create was charged nothing (one reservation per created task).
      const ledger = await t.server.store.db
        .selectFrom("ledger_entries")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("account_id", "=", a.accountId)
        .where("type", "=", "reserve")
        .executeTakeFirstOrThrow();
      expect(Number(ledger.n)).toBe(taskIds.length);
    });
  });
