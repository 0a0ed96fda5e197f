/** Sizes and bounds used by file inspection, with the reason for each number. */

/** Bytes tolerated after an image's logical end (some writers pad); more is treated as a hidden payload. */
export const MAX_TRAILING_BYTES = 16;
/** ffmpeg gets this long to read a file. */
export const FFMPEG_TIMEOUT_MS = 10_000;

export const BLOCK_BYTES = 256 * 1024;
/** A ZIP reader looks for its end-of-central-directory record in the last 22 + 65535 bytes. */
export const ZIP_TAIL_BYTES = 22 + 65_535;
/** Cap for decompressed PNG text (zTXt/iTXt); more is a decompression bomb, not metadata. */
export const MAX_INFLATED_TEXT_BYTES = 8 * 1024 * 1024;
