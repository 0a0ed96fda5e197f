/**
 * Decoder-grade image check (issue #11, "pixel bombs"): the structural parsers in files/inspect/
 * read headers and chunk layout, but only a real decoder proves that an image's declared
 * width × height is backed by pixel data. A PNG header can claim 20000×20000 over a 100-byte
 * IDAT; a JPEG can stop in the middle of its scan and still end with a valid EOI marker. Both
 * pass a structural check and only blow up later, when ffmpeg or Kling decodes them whole.
 *
 * libvips (through sharp) decodes the whole image here, but streams it: sequential access, and a
 * tiny thumbnail as output so every decoder works on a few scanlines at a time (with JPEG and
 * WEBP shrink-on-load). The exceptions are layouts whose decoder needs the whole image in memory
 * (progressive JPEG: the DCT coefficients; interlaced PNG: the Adam7 passes; WEBP: lossless
 * frames); those are accepted only while that buffer stays under WHOLE_IMAGE_BUFFER_MAX_BYTES.
 *
 * Runs inside the inspection pool's threads; callers there should call `configureSharp()` once.
 */
import { stat } from "node:fs/promises";
import sharp, { type Metadata } from "sharp";

/** Formats an upload may reach us in (after sniffing); anything else is never handed to libvips. */
const DECODABLE_FORMATS = new Set(["jpeg", "png", "webp", "gif"]);

/**
 * Upper bound on the memory a single decode may need for a whole-image buffer. 512 MiB covers a
 * 170 MP progressive JPEG (4:2:0, 3 bytes of coefficients per pixel) or a 128 MP interlaced RGBA
 * PNG; phones and cameras write baseline JPEGs and non-interlaced PNGs at their largest sizes, so
 * real files above it are rare, and a re-save fixes them.
 */
export const WHOLE_IMAGE_BUFFER_MAX_BYTES = 512 * 1024 * 1024;

/** The thumbnail libvips renders: small enough that shrink-on-load does most of the work. */
const THUMBNAIL_SIDE = 64;

/**
 * libjpeg warnings that mean pixel data is missing or damaged (JWRN_HIT_MARKER, JWRN_JPEG_EOF,
 * bad entropy codes, lost restart markers), plus libvips' own truncation errors. Other libjpeg
 * warnings (extraneous bytes before a marker, unknown JFIF revision, odd progression) appear in
 * real camera and editor output and do not mean anything is missing.
 */
const MISSING_DATA =
  /premature end|bad huffman code|bad arithmetic code|instead of RST|not enough image data|truncated|read error|out of order|decode failed/i;

export interface DecodeOptions {
  /** Largest accepted width × height of one frame. */
  maxPixels: number;
  /** Abort the decode inside libvips after this long (the pool's remaining budget). */
  timeoutMs?: number;
}

export type DecodeCheck =
  | { ok: true; format: string; width: number; height: number; pages: number }
  | { ok: false; message: string };

let configured = false;

/**
 * Keeps libvips small and predictable in a process that decodes untrusted images: no operation
 * cache (it would keep decoded images alive between uploads) and one libvips thread per image,
 * so the pool size, not libvips, decides how many cores inspection uses. Both settings are
 * process-wide; calling this more than once is harmless.
 */
export function configureSharp(): void {
  if (configured) return;
  sharp.cache(false);
  sharp.concurrency(1);
  configured = true;
}

const formatPixels = (n: number) => n.toLocaleString("en-US");

/**
 * Decodes the whole image at `path` (every frame of an animated one) and reports its size, or a
 * client-facing reason to refuse it. I/O problems (a missing file) are thrown, not returned.
 */
export async function verifyImageDecodes(path: string, opts: DecodeOptions): Promise<DecodeCheck> {
  await stat(path); // a missing file is our problem, not the client's; let it throw
  let meta: Metadata;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch {
    return { ok: false, message: "The image could not be decoded." };
  }
  const format = meta.format ?? "unknown";
  if (!DECODABLE_FORMATS.has(format)) return { ok: false, message: "The image is not in a supported format." };
  const width = meta.width;
  const pages = Math.max(1, meta.pages ?? 1);
  const height = pages > 1 && meta.pageHeight ? meta.pageHeight : meta.height;
  if (!width || !height) return { ok: false, message: "The image declares no size." };
  if (width * height > opts.maxPixels) {
    return { ok: false, message: `The image has more than ${formatPixels(opts.maxPixels)} pixels.` };
  }
  const buffered = wholeImageBuffer(meta, format, width * height);
  if (buffered && buffered.bytes > WHOLE_IMAGE_BUFFER_MAX_BYTES) {
    return {
      ok: false,
      message:
        `The image is ${width}×${height} pixels ${buffered.layout}, which cannot be decoded within the memory ` +
        `allowed; save it ${buffered.fix} or make it smaller.`,
    };
  }

  const cutOff: DecodeCheck = {
    ok: false,
    message: `The image declares ${width}×${height} pixels but its image data is missing or cut off.`,
  };
  const total = width * height * pages;
  // JPEG: libvips turns libjpeg's "premature end of data segment" into a failure only at the
  // "warning" level, so decode strictly first and forgive warnings that do not mean missing data.
  const first = await decode(path, format === "jpeg" ? "warning" : "error", total, pages, opts.timeoutMs);
  if (first === null) return { ok: true, format, width, height, pages };
  if (/timeout/i.test(first)) return { ok: false, message: "The image took too long to decode." };
  if (format !== "jpeg" || MISSING_DATA.test(first)) return cutOff;
  const second = await decode(path, "error", total, pages, opts.timeoutMs);
  if (second === null) return { ok: true, format, width, height, pages };
  if (/timeout/i.test(second)) return { ok: false, message: "The image took too long to decode." };
  return cutOff;
}

/** Decodes to a thumbnail; returns null on success, else libvips' message (never shown to clients). */
async function decode(
  path: string,
  failOn: "error" | "warning",
  totalPixels: number,
  pages: number,
  timeoutMs: number | undefined,
): Promise<string | null> {
  try {
    let pipeline = sharp(path, {
      failOn,
      sequentialRead: true,
      // Backstop for the check above: libvips refuses before allocating if the header lied to metadata().
      limitInputPixels: totalPixels,
      ...(pages > 1 ? { pages: -1 } : {}),
    }).resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: "inside" });
    if (timeoutMs !== undefined) pipeline = pipeline.timeout({ seconds: Math.max(1, Math.ceil(timeoutMs / 1000)) });
    await pipeline.raw().toBuffer();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The whole-image buffer a decoder needs for this layout, if it needs one. */
function wholeImageBuffer(
  meta: Metadata,
  format: string,
  pixels: number,
): { bytes: number; layout: string; fix: string } | undefined {
  const channels = meta.channels ?? 4;
  if (format === "jpeg" && meta.isProgressive) {
    // 16-bit DCT coefficients per component sample; 4:2:0 halves both chroma planes twice.
    const samples = meta.chromaSubsampling === "4:2:0" ? 1.5 : channels;
    return { bytes: pixels * samples * 2, layout: "in a progressive layout", fix: "as a baseline JPEG" };
  }
  if (format === "png" && meta.isProgressive) {
    const bytesPerSample = meta.depth === "ushort" ? 2 : 1;
    return { bytes: pixels * channels * bytesPerSample, layout: "in an interlaced layout", fix: "without interlacing" };
  }
  if (format === "webp") {
    // Lossless frames are decoded whole (ARGB, 4 bytes per pixel); the header sniff that tells
    // lossy from lossless is not worth it below the pixel cap most deployments use.
    return { bytes: pixels * 4, layout: "as a WEBP", fix: "as a smaller WEBP or as a JPEG/PNG" };
  }
  return undefined;
}
