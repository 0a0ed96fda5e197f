/**
 * The `wait` preference of RFC 7240 (`Prefer: wait=10`). The RFC has a server ignore any
 * preference it does not understand or cannot parse, so a malformed value means "no wait", never
 * an error; the first `wait` counts when it is given more than once (RFC 7240 §2).
 */

/** The longest hold, in seconds; larger requests are held this long. */
export const MAX_WAIT_SECONDS = 60;

/** Seconds to hold (clamped to MAX_WAIT_SECONDS), or undefined when no usable `wait` was sent. */
export function parsePreferWait(header: string | undefined): number | undefined {
  if (!header) return undefined;
  // Preferences are comma-separated; parameters after ";" belong to the preference before them.
  for (const preference of header.split(",")) {
    const [head = ""] = preference.split(";");
    const eq = head.indexOf("=");
    const name = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
    if (name !== "wait") continue;
    if (eq < 0) return undefined;
    // The value may be a token or a quoted string: `wait=5` and `wait="5"` mean the same.
    const value = head
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
    if (!/^\d{1,10}$/.test(value)) return undefined;
    return Math.min(Number(value), MAX_WAIT_SECONDS);
  }
  return undefined;
}

/** What a route needs from the live status to honour `Prefer: wait` (live-status.ts). */
export interface WaitingRoom<T> {
  /** True once the server is shutting down (held requests are being let go). */
  readonly closing: boolean;
  waitFor(
    first: T,
    seconds: number,
    read: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<{ task: T; applied: boolean }>;
}

/**
 * The task to answer with for a request that may carry `Prefer: wait`: `first` at once when it
 * does not, else the state after the hold, with the Preference-Applied header when it was held.
 */
export async function afterPreferredWait<T>(
  room: WaitingRoom<T>,
  preferHeader: string | undefined,
  first: T,
  read: () => Promise<T>,
  signal?: AbortSignal,
): Promise<{ task: T; headers: Record<string, string> }> {
  const seconds = parsePreferWait(preferHeader);
  if (seconds === undefined) return { task: first, headers: {} };
  const { task, applied } = await room.waitFor(first, seconds, read, signal);
  return {
    task,
    headers: {
      ...(applied ? { "Preference-Applied": `wait=${seconds}` } : {}),
      // Let go by a shutdown: the client should not keep this connection for its next request,
      // and the server's close need not wait for the idle connection to time out.
      ...(room.closing ? { Connection: "close" } : {}),
    },
  };
}
