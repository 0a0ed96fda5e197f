/**
 * Client-facing failures. Parsers throw a Rejection; inspectFile turns it into `{ ok: false }`.
 * Anything else thrown is a server-side problem (I/O, ffmpeg missing) or an abort.
 */

export type FailureCode = "validation_failed" | "unsupported_media_type";

/** Internal: carries a client-facing rejection out of nested parsers. */
export class Rejection extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = "Rejection";
  }
}

export function corrupt(detail: string): Rejection {
  return new Rejection("validation_failed", `The file is truncated or corrupt (${detail}).`);
}

/**
 * A structural cap was exceeded. `detail` names the part and the cap and says why real files
 * stay below it, e.g. "the JPEG has more than 1024 marker segments before its image data; files
 * from cameras and editors have far fewer".
 */
export function tooComplex(detail: string): Rejection {
  return new Rejection("validation_failed", `The file's structure is too complex to inspect: ${detail}.`);
}

export function unsupported(message: string): Rejection {
  return new Rejection("unsupported_media_type", message);
}

export function abortError(signal: AbortSignal): Error {
  const err = new Error("file inspection aborted", { cause: signal.reason });
  err.name = "AbortError";
  return err;
}

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}
