import { createHash } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { access, link, mkdir, opendir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomBase62 } from "../util/ids.js";
import { assertSafeKey, type ListedObject, type ObjectStat, type Storage, type StoredObject } from "./storage.js";

/** Storage in a local directory. Writes go to a temp file that is renamed into place. */
export class FsStorage implements Storage {
  constructor(private readonly root: string) {}

  private path(key: string): string {
    assertSafeKey(key);
    return join(this.root, key);
  }

  async putFile(key: string, sourcePath: string): Promise<StoredObject> {
    return this.putStream(key, createReadStream(sourcePath));
  }

  async linkFile(key: string, sourcePath: string, known?: { size: number; sha256: string }): Promise<StoredObject> {
    const target = this.path(key);
    try {
      await linkMakingDir(sourcePath, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Links are refused across file systems and by some (FAT, some network mounts): copy.
      if (code === "EXDEV" || code === "EPERM" || code === "ENOTSUP" || code === "EMLINK") {
        return this.putFile(key, sourcePath);
      }
      if (code !== "EEXIST") throw error;
      // Stored before (a job run again): replace it whole, as putFile would.
      const temp = `${target}.${randomBase62(8)}.part`;
      try {
        await link(sourcePath, temp);
        await rename(temp, target);
      } catch (inner) {
        await rm(temp, { force: true });
        throw inner;
      }
    }
    if (known) return { key, size: known.size, sha256: known.sha256 };
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of createReadStream(target)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { key, size, sha256: hash.digest("hex") };
  }

  async putStream(key: string, source: Readable): Promise<StoredObject> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const temp = `${target}.${randomBase62(8)}.part`;
    const hash = createHash("sha256");
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const out = createWriteStream(temp);
    try {
      await pipeline(source, meter, out);
      await rename(temp, target);
    } catch (error) {
      // pipeline() can reject while the file is still being opened; removing it before the
      // stream has closed would let the open re-create it afterwards.
      if (!out.closed) await new Promise<void>((resolve) => out.once("close", () => resolve()));
      await rm(temp, { force: true });
      throw error;
    }
    return { key, size, sha256: hash.digest("hex") };
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { size: s.size, modifiedAt: s.mtime } : undefined;
    } catch {
      return undefined;
    }
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {});
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async move(fromKey: string, toKey: string): Promise<void> {
    const target = this.path(toKey);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.path(fromKey), target);
  }

  async sweepPartials(olderThanMs: number): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    let entries: string[];
    try {
      entries = await readdir(this.root, { recursive: true });
    } catch {
      return 0;
    }
    for (const entry of entries) {
      if (!entry.endsWith(".part")) continue;
      const full = join(this.root, entry);
      const info = await stat(full).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < cutoff) {
        await rm(full, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Walks the tree one directory handle at a time, so memory stays flat however many objects there are. */
  async *listObjects(): AsyncIterable<ListedObject> {
    yield* this.walk("");
  }

  private async *walk(relative: string): AsyncIterable<ListedObject> {
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(relative ? join(this.root, relative) : this.root);
    } catch (error) {
      // A directory removed meanwhile (a result purged while we walk) has nothing left to list.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    for await (const entry of dir) {
      const key = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        yield* this.walk(key);
      } else if (entry.isFile()) {
        const info = await stat(join(this.root, key)).catch(() => undefined);
        if (info) yield { key, size: info.size, modifiedAt: info.mtime };
      }
    }
  }

  localPath(key: string): string {
    return this.path(key);
  }

  async checkReady(): Promise<void> {
    await access(this.root, constants.W_OK);
  }
}

/**
 * Links `target` to `source`, making the target's directory when it is missing: one call when it
 * exists (a task's second file, its poster, goes beside its video), three when it does not.
 */
async function linkMakingDir(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(dirname(target), { recursive: true });
    await link(source, target);
  }
}
