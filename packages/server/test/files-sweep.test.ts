/**
 * Temporary upload files a killed process leaves behind (issue #12): a received upload waits in
 * the staging tmp/ directory (DATA_DIR/storage/tmp, or the local spool when media live in S3)
 * while it is inspected. A process that dies meanwhile leaves `tmp/file_….upload` (or a
 * `.part` of one); start-up and housekeeping remove those older than an hour and nothing fresher,
 * since another process sharing the directory may be inspecting it right now.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listFiles } from "./files-helpers.js";
import { startTestServer, type TestServer } from "./harness.js";
import { dropTestDatabase, TEST_STORAGE } from "./test-store.js";

const TWO_HOURS_MS = 2 * 3600_000;

/** Where a server on `dataDir` stages uploads: its storage's tmp/, or the spool when media live in S3. */
function stagingDir(dataDir: string): string {
  return TEST_STORAGE === "s3" ? join(tmpdir(), "framegate-uploads", "tmp") : join(dataDir, "storage", "tmp");
}

/** Places a staged file named like the server's own, last written `ageMs` ago; returns its name. */
function leaveStagedFile(dir: string, suffix: ".upload" | ".upload.a1b2c3d4.part", ageMs: number): string {
  mkdirSync(dir, { recursive: true });
  const name = `file_sweeptest${randomBytes(6).toString("hex")}${suffix}`;
  const path = join(dir, name);
  writeFileSync(path, randomBytes(1024));
  const when = new Date(Date.now() - ageMs);
  utimesSync(path, when, when);
  return name;
}

describe("stale temporary uploads", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "framegate-sweep-"));
  let t: TestServer | undefined;

  afterAll(async () => {
    await t?.close();
    rmSync(dataDir, { recursive: true, force: true });
    await dropTestDatabase(dataDir);
  });

  it("housekeeping removes uploads left for hours and keeps fresh ones", async () => {
    t = await startTestServer({}, dataDir);
    expect(t.server.config.storage.driver).toBe(TEST_STORAGE);
    const dir = stagingDir(dataDir);
    const staleUpload = leaveStagedFile(dir, ".upload", TWO_HOURS_MS);
    const stalePart = leaveStagedFile(dir, ".upload.a1b2c3d4.part", TWO_HOURS_MS);
    const fresh = leaveStagedFile(dir, ".upload", 60_000);

    await t.server.runMaintenance();

    const left = await listFiles(dir);
    expect(left).not.toContain(staleUpload);
    expect(left).not.toContain(stalePart);
    expect(left).toContain(fresh);
    rmSync(join(dir, fresh), { force: true });
  });

  it("start-up removes what a killed process left, before any housekeeping runs", async () => {
    await t?.close();
    t = undefined;
    // Left by the process that just "died"; the spool outlives it, the data directory too.
    const dir = stagingDir(dataDir);
    const stale = leaveStagedFile(dir, ".upload", TWO_HOURS_MS);
    const fresh = leaveStagedFile(dir, ".upload", 60_000);

    t = await startTestServer({}, dataDir);

    const left = await listFiles(dir);
    expect(left).not.toContain(stale);
    expect(left).toContain(fresh);
    rmSync(join(dir, fresh), { force: true });
  });
});
