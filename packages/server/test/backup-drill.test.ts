/**
 * The restore drill of issue #18: a server runs as a child process and keeps creating tasks and
 * uploading files; `framegate backup` runs in the middle of that; the server is SIGKILLed;
 * `framegate restore` puts the archive into a new directory and a server starts on it. Everything
 * committed before the backup started is there with its media, what came after the backup is not,
 * URLs signed before the backup still verify, and the ledger balances once every task has ended
 * (`framegate verify` passes).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { uploadFile } from "./files-helpers.js";
import { makeImage } from "./fixtures/media.js";
import { REPO_ROOT, TEST_ENV, waitForTask } from "./harness.js";
import {
  ChildServer,
  expectDownloadableMp4,
  expectLedgerInvariants,
  freePort,
  killAll,
  readDb,
  runProcess,
  sha256,
} from "./process-helpers.js";
import { TEST_STORE } from "./test-store.js";

/** `framegate <args>` as a child process, configured by `env` like every operator command. */
export function runCli(args: string[], env: Record<string, string>) {
  return runProcess(
    process.execPath,
    ["--conditions=source", "--import", "tsx", join(REPO_ROOT, "packages/cli/src/main.ts"), ...args],
    { cwd: REPO_ROOT, env: { ...process.env, ...TEST_ENV, ...env }, timeoutMs: 120_000 },
  );
}

describe("framegate restore on a bad archive", () => {
  it("exits 1 with archive_invalid and creates nothing", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "framegate-bad-archive-"));
    try {
      const archive = join(dir, "not-a-backup.tar");
      writeFileSync(archive, "this is not a tar archive at all\n".repeat(100));
      const target = join(dir, "data");
      const result = await runCli(["restore", archive], { DATA_DIR: target });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/archive_invalid/);
      expect(existsSync(target)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The archive holds a SQLite database; the PostgreSQL run has its own advice path (backup-archive.test.ts).
describe.skipIf(TEST_STORE === "postgres")("restore drill", () => {
  const children: ChildServer[] = [];
  const root = mkdtempSync(join(tmpdir(), "framegate-drill-"));
  afterAll(async () => {
    await killAll(children);
    rmSync(root, { recursive: true, force: true });
  });

  it("restores every task and file committed before the backup, with its media, signed URLs and a balanced ledger", {
    timeout: 180_000,
  }, async () => {
    const source = join(root, "source");
    const target = join(root, "target");
    const archive = join(root, "backups", "drill.tar");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = {
      PORT: String(port),
      LOG_LEVEL: "info",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
      RATE_LIMIT_UPLOAD_PER_MIN: "0",
      WORKER_CONCURRENCY: "2",
    };
    const first = new ChildServer(url, { ...env, DATA_DIR: source });
    children.push(first);
    await first.waitReady();
    const { key } = await first.createAccount(100_000);
    const image = await makeImage(root, { format: "png", width: 64, height: 64 });

    const create = async (prompt: string): Promise<string> => {
      const res = await first.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt } });
      if (res.status !== 201 && res.status !== 202) throw new Error(`create: ${res.status} ${res.text}`);
      return res.body.id;
    };
    const upload = async (): Promise<{ id: string; url: string }> => {
      const res = await uploadFile(first, key, image, { kind: "image" });
      if (res.status !== 201) throw new Error(`upload: ${res.status} ${res.text}`);
      return { id: res.body.id, url: res.body.url };
    };

    // Finished work before the backup: results and files whose URLs are signed now.
    const finished = [await create("plain lighthouse"), await create("[sim:fail] a failure")];
    const finishedTasks = await Promise.all(finished.map((id) => waitForTask(first, key, id)));
    expect(finishedTasks.map((t) => t.status)).toEqual(["succeeded", "failed"]);
    const signedResultUrl: string = finishedTasks[0].result.primary_url;
    const resultBytes = new Uint8Array(await (await fetch(signedResultUrl)).arrayBuffer());
    const earlyFile = await upload();

    // The server keeps working while the backup runs.
    const committed: string[] = [...finished];
    const committedFiles: string[] = [earlyFile.id];
    let backupStarted = false;
    let stop = false;
    const background = (async () => {
      for (let i = 0; !stop; i++) {
        const [task, file] = await Promise.all([create(`[sim:delay=1] busy ${i}`), upload()]);
        // Only what was acknowledged before the backup started must be in it.
        if (!backupStarted) {
          committed.push(task);
          committedFiles.push(file.id);
        }
      }
    })();
    while (committed.length < 6) await new Promise((r) => setTimeout(r, 20));

    backupStarted = true;
    const backup = await runCli(["backup", "--out", archive, "--json"], { DATA_DIR: source });
    expect(backup.code, backup.stderr).toBe(0);
    const summary = JSON.parse(backup.stdout);
    expect(summary.archive).toBe(archive);
    expect(summary.manifest.signing_secret).toBe("file");
    expect(summary.manifest.database.rows.tasks).toBeGreaterThanOrEqual(committed.length);
    stop = true;
    await background;
    // Created after the snapshot: must not come back.
    const later = await create("after the backup");
    await first.kill();

    const restore = await runCli(["restore", archive, "--json"], { DATA_DIR: target });
    expect(restore.code, restore.stderr).toBe(0);
    expect(JSON.parse(restore.stdout).files).toBe(summary.manifest.files.length);

    const second = new ChildServer(url, { ...env, DATA_DIR: target });
    children.push(second);
    await second.waitReady();
    const check = { request: second.request.bind(second) };

    // A URL signed before the backup verifies against the restored secret and serves the same bytes.
    const again = await fetch(signedResultUrl);
    expect(again.status).toBe(200);
    expect(sha256(new Uint8Array(await again.arrayBuffer()))).toBe(sha256(resultBytes));
    expect((await fetch(earlyFile.url)).status).toBe(200);

    for (const id of committedFiles) {
      const res = await second.request(`/api/v1/files/${id}`, { key });
      expect(res.status, id).toBe(200);
      expect((await fetch(res.body.url)).status, id).toBe(200);
    }
    expect((await second.request(`/api/v1/generations/${later}`, { key })).status).toBe(404);

    // Every committed task is there and ends; the succeeded ones with their media.
    for (const id of committed) {
      const task = await waitForTask(check, key, id, 60_000);
      if (task.status === "succeeded") expect(await expectDownloadableMp4(task), id).toEqual([]);
    }
    expect((await waitForTask(check, key, finished[0] as string)).result.media[0].sha256).toBe(
      finishedTasks[0].result.media[0].sha256,
    );

    second.proc.kill("SIGTERM");
    await second.waitExit(30_000);
    const db = await readDb(target, { integrityCheck: true });
    expect(db.integrity).toBe("ok");
    expect(expectLedgerInvariants(db)).toEqual([]);
    // The invariant checker agrees: balances, reservations and refunds, jobs, media, no orphans.
    const verify = await runCli(["verify", "--json"], { DATA_DIR: target });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    // The archive is private: it holds the signing secret.
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
  });
});
