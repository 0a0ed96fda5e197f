/**
 * Local copies of stored objects for code that needs a file path (ffmpeg in the simulator, Kling's
 * WEBP conversion) when the storage has none (S3). A copy keeps the object's key under `root`,
 * is reused while present, and is removed once unused for a while: the simulator renders from the
 * path after submit returns, so a copy must outlive the call that made it.
 */
import { readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { FsStorage } from "./fs.js";
import type { Storage } from "./storage.js";

export class LocalObjectCache {
  private readonly copies: FsStorage;

  constructor(
    private readonly storage: Storage,
    private readonly root: string,
  ) {
    this.copies = new FsStorage(root);
  }

  /** The storage's own path when it has one, else a local copy (downloaded on first use). */
  async localPath(key: string): Promise<string> {
    const own = this.storage.localPath(key);
    if (own) return own;
    const path = this.copies.localPath(key);
    const now = new Date();
    try {
      await utimes(path, now, now); // marks the copy as used, for sweep
      return path;
    } catch {
      await this.copies.putStream(key, this.storage.read(key));
      return path;
    }
  }

  /** Removes copies unused for `olderThanMs` and interrupted downloads; returns how many. */
  async sweep(olderThanMs: number): Promise<number> {
    let entries: string[];
    try {
      entries = await readdir(this.root, { recursive: true });
    } catch {
      return 0;
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const entry of entries) {
      const full = join(this.root, entry);
      const info = await stat(full).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < cutoff) {
        await rm(full, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
