/**
 * Sizes and bounds used by file inspection, with the reason for each number.
 *
 * The structural caps exist so that a crafted file cannot make inspection walk millions of
 * empty chunks, segments or boxes: each is checked while parsing, so such a file is refused
 * after reading only up to the cap. Every number is far above what cameras, phones, editors and
 * encoders write; a file past one is refused as "too complex", not as corrupt.
 */
import { DEFAULT_MP4_LIMITS } from "../../media/mp4-probe.js";

/** Bytes tolerated after an image's logical end (some writers pad); more is treated as a hidden payload. */
export const MAX_TRAILING_BYTES = 16;
/** ffmpeg gets this long to read a file. */
export const FFMPEG_TIMEOUT_MS = 10_000;

/** Parsers read the file through one window of this size: a few reads per MB, whatever the structure. */
export const BLOCK_BYTES = 256 * 1024;
/** A ZIP reader looks for its end-of-central-directory record in the last 22 + 65535 bytes. */
export const ZIP_TAIL_BYTES = 22 + 65_535;
/** Cap for decompressed PNG text (zTXt/iTXt), all chunks together; more is a decompression bomb, not metadata. */
export const MAX_INFLATED_TEXT_BYTES = 8 * 1024 * 1024;

// --- Structural caps --------------------------------------------------------------------------

/**
 * PNG chunks in total. Image data dominates: libpng writes 8 KiB IDATs (a 10 MB file has about
 * 1,300), some encoders write one per scanline (a 20,000-row image: 20,000), and an APNG adds an
 * fcTL and fdAT per frame. 100,000 still covers an 800 MB PNG in 8 KiB IDATs.
 */
export const MAX_PNG_CHUNKS = 100_000;
/**
 * PNG chunks that are neither image data nor animation control (text, ICC, EXIF, private
 * chunks). Cameras, phones and editors write well under 20; exiftool-style tagging a few dozen.
 */
export const MAX_PNG_ANCILLARY_CHUNKS = 1024;
/**
 * JPEG marker segments before the first scan. Real files have tens: APPn for EXIF, XMP,
 * extended XMP (one per 64 KB of XMP) and ICC profile chunks, plus DQT, DHT, SOF, DRI. Even a
 * 40 MB XMP packet would fit in about 640 segments.
 */
export const MAX_JPEG_SEGMENTS_BEFORE_SCAN = 1024;
/**
 * Scans in one JPEG. Baseline files have 1, progressive ones about 10 (optimised scan scripts a
 * few more); libjpeg-turbo's tools use 500 as their safety bound against scan bombs, as do we.
 */
export const MAX_JPEG_SCANS = 500;
/**
 * JPEG marker segments in the whole file (tables between scans included): the segments allowed
 * before the first scan plus up to 6 tables (DHT, DQT, DRI, …) before each of the scans allowed.
 */
export const MAX_JPEG_SEGMENTS = MAX_JPEG_SEGMENTS_BEFORE_SCAN + 6 * MAX_JPEG_SCANS;
/**
 * WEBP chunks. A still WEBP has at most VP8X, ICCP, ALPH, VP8/VP8L, EXIF and XMP (6), plus
 * the odd unknown chunk a tool may add.
 */
export const MAX_WEBP_CHUNKS = 256;
/**
 * MP4/QuickTime caps live with the box reader (../../media/mp4-probe.ts, which also checks
 * provider results): 200,000 top-level boxes (over 27 hours of 1-second fragments, each a
 * moof + mdat pair) and 10,000 boxes visited inside moov (about 10 per track).
 */
export const MAX_MP4_TOP_LEVEL_BOXES = DEFAULT_MP4_LIMITS.maxTopLevelBoxes;
export const MAX_MP4_MOOV_BOXES = DEFAULT_MP4_LIMITS.maxMoovBoxes;

// --- Pixel limits ------------------------------------------------------------------------------

/**
 * Longest side accepted by default. Phone and camera sensors top out around 16,320 px (200 MP);
 * phone panoramas are longer than that but stay under 20,000.
 */
export const DEFAULT_MAX_IMAGE_SIDE = 20_000;
/** Total pixels accepted by default: the 200 MP phone sensors (16,320 × 12,240) with a margin. */
export const DEFAULT_MAX_IMAGE_PIXELS = 210_000_000;
/**
 * deflate cannot compress better than about 1032:1 (a 258-byte match costs at least 2 bits), so
 * a PNG's IDAT bytes are at least its raw scanline bytes divided by this.
 */
export const DEFLATE_MAX_RATIO = 1032;

export interface ImageLimits {
  /** Longest accepted width or height, in pixels (default DEFAULT_MAX_IMAGE_SIDE). */
  maxImageSide?: number;
  /** Largest accepted width × height (default DEFAULT_MAX_IMAGE_PIXELS). */
  maxImagePixels?: number;
}
