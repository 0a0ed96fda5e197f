/**
 * Mirroring a local result into storage: on the file system it is a hard link (no bytes copied)
 * carrying the right size and digest, even when many tasks mirror one file (the simulator's reuse
 * mode); a storage without links gets a copy; a file that is not an MP4 is rejected.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as media from "../../test/fixtures/media.js";
import { STRICT } from "../net/url-guard.js";
import { FsStorage } from "../storage/fs.js";
import type { Storage } from "../storage/storage.js";
import { systemClock } from "../util/clock.js";
import { MediaRejected, type MirrorOptions, mirrorResult } from "./mirror.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "framegate-mirror-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let video = "";
beforeAll(async () => {
  video = await media.makeVideo(root, { format: "mp4", width: 64, height: 48, seconds: 1, audio: true });
});

function options(storage: Storage): MirrorOptions {
  return {
    storage,
    clock: systemClock,
    guard: STRICT,
    maxBytes: 10_000_000,
    timeoutMs: 5000,
    retentionMs: 60_000,
  };
}

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

describe("mirrorResult", () => {
  it("links one local file into each task's result with the file's size and digest", async () => {
    const storage = new FsStorage(path.join(root, "linked"));
    const source = { kind: "file" as const, path: video, mimeType: "video/mp4" };
    const results = [];
    for (const task of ["task_a", "task_b", "task_b"]) {
      results.push(await mirrorResult(task, [source], options(storage)));
    }
    const want = { size_bytes: fs.statSync(video).size, sha256: sha256(video), width: 64, height: 48, has_audio: true };
    for (const result of results) expect(result.media[0]).toMatchObject(want);
    for (const task of ["task_a", "task_b"]) {
      const stored = storage.localPath(`results/${task}/video.mp4`);
      // The same inode: no copy was made (a rerun for task_b replaced its link with a new one).
      expect(fs.statSync(stored).ino).toBe(fs.statSync(video).ino);
      expect(sha256(stored)).toBe(want.sha256);
    }
  });

  it("copies into a storage that cannot link, with the same facts", async () => {
    const fsStorage = new FsStorage(path.join(root, "copied"));
    // Every method but linkFile, as a driver without links (S3) has.
    const storage: Storage = {
      putFile: (k, p) => fsStorage.putFile(k, p),
      putStream: (k, s) => fsStorage.putStream(k, s),
      stat: (k) => fsStorage.stat(k),
      read: (k, r) => fsStorage.read(k, r),
      delete: (k) => fsStorage.delete(k),
      move: (a, b) => fsStorage.move(a, b),
      sweepPartials: (ms) => fsStorage.sweepPartials(ms),
      localPath: (k) => fsStorage.localPath(k),
      listObjects: () => fsStorage.listObjects(),
      checkReady: () => fsStorage.checkReady(),
    };
    const result = await mirrorResult(
      "task_c",
      [{ kind: "file", path: video, mimeType: "video/mp4" }],
      options(storage),
    );
    expect(result.media[0]).toMatchObject({ size_bytes: fs.statSync(video).size, sha256: sha256(video) });
    const stored = fsStorage.localPath("results/task_c/video.mp4");
    expect(fs.statSync(stored).ino).not.toBe(fs.statSync(video).ino);
    expect(sha256(stored)).toBe(sha256(video));
  });

  it("rejects a file that is not an MP4, and a missing one, storing nothing", async () => {
    const storage = new FsStorage(path.join(root, "rejected"));
    const text = await media.makeTextFile(root);
    for (const file of [text, path.join(root, "missing.mp4")]) {
      const error = await mirrorResult(
        "task_d",
        [{ kind: "file", path: file, mimeType: "video/mp4" }],
        options(storage),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MediaRejected);
    }
    expect(await storage.stat("results/task_d/video.mp4")).toBeUndefined();
  });
});
