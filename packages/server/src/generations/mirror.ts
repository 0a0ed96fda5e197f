/**
 * Result mirroring: the upstream's video is streamed into our storage (size-limited), checked to
 * be an MP4 and probed, before the task may become `succeeded`. Upstream URLs are never exposed.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { OutboundError, safeFetch } from "../net/safe-fetch.js";
import type { GuardOptions } from "../net/url-guard.js";
import type { ProviderMedia } from "../providers/provider.js";
import type { Storage } from "../storage/storage.js";
import { addMs, type Clock } from "../util/clock.js";
import { type MediaFacts, mediaFacts, NotPlayableMp4 } from "./media-facts.js";
import type { PosterFile, PosterMaker } from "./poster.js";
import type { StoredResult } from "./serialize.js";

export interface MirrorOptions {
  storage: Storage;
  clock: Clock;
  guard: GuardOptions;
  maxBytes: number;
  timeoutMs: number;
  retentionMs: number;
  /** Makes each video's poster frame; without it, results have no posters. */
  posters?: PosterMaker;
}

/** The media cannot be mirrored and never will be (404, HTML instead of video, too large). */
export class MediaRejected extends Error {
  override name = "MediaRejected";
}

export async function mirrorResult(taskId: string, media: ProviderMedia[], opts: MirrorOptions): Promise<StoredResult> {
  const stored: StoredResult["media"] = [];
  for (const [index, item] of media.entries()) {
    const { path, cleanup } = await localCopy(item, opts);
    try {
      const { storage } = opts;
      // A storage that links files needs the digest from us; one that copies computes it itself.
      let facts: MediaFacts;
      try {
        facts = await mediaFacts(path, { digest: storage.linkFile !== undefined });
      } catch (error) {
        if (!(error instanceof NotPlayableMp4)) throw error;
        throw new MediaRejected(`the upstream result is not a playable MP4 (${error.message})`);
      }
      const { info } = facts;
      if (info.width <= 0 || info.height <= 0 || !(info.durationSeconds > 0)) {
        throw new MediaRejected("the upstream result has no video track");
      }
      const key = `results/${taskId}/${index === 0 ? "video" : `video-${index}`}.mp4`;
      // Linking costs no copy: the source is a finished file that is only ever replaced whole.
      const object =
        storage.linkFile && facts.sha256 !== undefined
          ? await storage.linkFile(key, path, { size: facts.size, sha256: facts.sha256 })
          : await storage.putFile(key, path);
      const poster = await opts.posters?.make({
        path,
        width: info.width,
        height: info.height,
        durationSeconds: info.durationSeconds,
        sha256: object.sha256,
      });
      const posterKey = poster ? await storePoster(storage, key.replace(/\.mp4$/, ".jpg"), poster) : null;
      stored.push({
        key,
        poster_key: posterKey,
        mime_type: "video/mp4",
        width: info.width,
        height: info.height,
        duration_seconds: info.durationSeconds,
        has_audio: info.hasAudio,
        size_bytes: object.size,
        sha256: object.sha256,
      });
    } finally {
      await cleanup();
    }
  }
  if (stored.length === 0) throw new MediaRejected("the provider reported success without any media");
  return { media: stored, expires_at: addMs(opts.clock.now(), opts.retentionMs).toISOString() };
}

/**
 * Stores the poster beside its video (a hard link where the storage links files); its key, or null
 * when that failed: the poster is a convenience, the task goes on without one.
 */
async function storePoster(storage: Storage, key: string, poster: PosterFile): Promise<string | null> {
  try {
    if (storage.linkFile) await storage.linkFile(key, poster.path, { size: poster.size, sha256: poster.sha256 });
    else await storage.putFile(key, poster.path);
    return key;
  } catch {
    return null;
  }
}

/** A local file for the media: the provider's own file, or a guarded download of its URL. */
async function localCopy(
  media: ProviderMedia,
  opts: MirrorOptions,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  if (media.kind === "file") return { path: media.path, cleanup: async () => {} };
  if (media.kind === "storage") {
    const own = opts.storage.localPath(media.key);
    if (own) return { path: own, cleanup: async () => {} };
  }
  const dir = await mkdtemp(join(tmpdir(), "framegate-result-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const path = join(dir, "media.mp4");
  if (media.kind === "storage") {
    try {
      await pipeline(opts.storage.read(media.key), createWriteStream(path));
      return { path, cleanup };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }
  try {
    const response = await safeFetch(media.url, {
      ...opts.guard,
      maxBytes: opts.maxBytes,
      timeoutMs: opts.timeoutMs,
      maxRedirects: 3,
    });
    if (response.status >= 400 && response.status < 500) {
      response.body.resume();
      throw new MediaRejected(`the upstream result URL answered HTTP ${response.status}`);
    }
    if (response.status !== 200) {
      response.body.resume();
      throw new Error(`the upstream result URL answered HTTP ${response.status}`);
    }
    await pipeline(response.body, createWriteStream(path));
    return { path, cleanup };
  } catch (error) {
    await cleanup();
    if (error instanceof OutboundError && (error.kind === "too_large" || error.kind === "blocked")) {
      throw new MediaRejected(`the upstream result could not be mirrored: ${error.message}`);
    }
    throw error;
  }
}
