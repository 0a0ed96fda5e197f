/**
 * The origin the console's player and thumbnails load media from when they are not this server.
 *
 * With S3 storage and S3_MEDIA_DELIVERY=redirect, a /media URL answers 302 to a presigned URL on
 * the bucket's host, and the browser checks that target against the console's CSP (media-src for
 * the video, img-src for posters and reference thumbnails). The console's CSP then has to name
 * that host, and only that one. It is not worked out from S3_ENDPOINT, S3_REGION and
 * S3_FORCE_PATH_STYLE by hand: the SDK decides between a virtual-hosted bucket host and path
 * style (and falls back to path style for bucket names that are no DNS label), so the origin is
 * read off a URL the storage presigns for a probe key, the same way every redirect is made.
 * Presigning is local (no request to the bucket), but with the AWS credential chain it needs
 * credentials, so it runs when the console is first served, not at startup.
 */
import type { Storage } from "../storage/storage.js";

/** Any safe key does: only the path of a presigned URL depends on the key, never its origin. */
const PROBE_KEY = "console-csp-probe";

/** How long a failed probe (no credentials yet, say) is remembered before the next try. */
const RETRY_AFTER_MS = 60_000;

/**
 * A function answering the media origin to allow in the console's CSP, or undefined when media are
 * served by this server (filesystem storage, or S3 with proxy delivery) and 'self' covers them.
 * The answer is kept once known; a failure answers undefined (the CSP stays 'self', media fall
 * back to being blocked, as before) and is retried after a minute.
 */
export function redirectMediaOrigin(deps: {
  storage: Storage;
  mediaDelivery?: "redirect" | "proxy" | undefined;
  now?: () => number;
}): (() => Promise<string | undefined>) | undefined {
  const { storage } = deps;
  if (deps.mediaDelivery !== "redirect" || !storage.presignGet) return undefined;
  const now = deps.now ?? Date.now;
  let known: string | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  let pending: Promise<string | undefined> | undefined;
  return () => {
    if (known) return Promise.resolve(known);
    if (now() - failedAt < RETRY_AFTER_MS) return Promise.resolve(undefined);
    pending ??= (async () => {
      try {
        known = new URL(await (storage.presignGet as NonNullable<Storage["presignGet"]>)(PROBE_KEY, 60)).origin;
        return known;
      } catch {
        failedAt = now();
        return undefined;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}
