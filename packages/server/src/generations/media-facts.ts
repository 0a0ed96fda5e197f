/**
 * What the mirror learns about a local result file (its MP4 facts, size and digest), remembered
 * by the file's identity: device, inode, size and modification time. Hard links share an inode,
 * so a video that many tasks link to (the simulator's reuse mode) is probed and hashed once per
 * process instead of once per task. Our files are replaced by rename, never rewritten in place,
 * so a changed file always has a new identity; the few remembered entries are bounded.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { type Mp4Info, probeMp4 } from "../media/mp4-probe.js";

export interface MediaFacts {
  info: Mp4Info;
  size: number;
  /** Computed only when asked for (a driver that copies the bytes hashes them on the way). */
  sha256?: string;
}

/** The file is not an MP4 we can read (probeMp4's message); other errors are I/O trouble. */
export class NotPlayableMp4 extends Error {
  override name = "NotPlayableMp4";
}

const MAX_REMEMBERED = 64;
const remembered = new Map<string, MediaFacts>();

/** Probes `path` (NotPlayableMp4 when that fails) and, with `digest`, hashes it. */
export async function mediaFacts(path: string, opts: { digest: boolean }): Promise<MediaFacts> {
  // A missing file is judged like an unreadable one, as probing it would have been.
  const s = await stat(path).catch((error: Error) => {
    throw new NotPlayableMp4(error.message);
  });
  const identity = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  const known = remembered.get(identity);
  if (known && (known.sha256 !== undefined || !opts.digest)) return known;
  const facts: MediaFacts = { info: known?.info ?? (await probe(path)), size: s.size };
  if (opts.digest) facts.sha256 = await sha256File(path);
  remembered.delete(identity);
  remembered.set(identity, facts);
  // Oldest first in a Map: drop it once full.
  if (remembered.size > MAX_REMEMBERED) remembered.delete(remembered.keys().next().value as string);
  return facts;
}

async function probe(path: string): Promise<Mp4Info> {
  try {
    return await probeMp4(path);
  } catch (error) {
    throw new NotPlayableMp4((error as Error).message);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
