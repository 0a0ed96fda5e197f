/**
 * The i2v start frame. Kling takes an http(s) URL or raw base64 (no `data:` prefix) of a
 * JPEG/PNG (kling-upstreams §1.3). Our references can also be WEBP: those are converted to PNG
 * with sharp (libvips, bounded memory, see convertToKlingImage) and always sent as base64, since
 * our signed URL would serve the WEBP bytes.
 */
import { readFile } from "node:fs/promises";
import sharp from "sharp";
import { configureSharp } from "../../media/image-decode.js";
import { ProviderError, type ProviderReference } from "../provider.js";

export type SendImagesAs = "url" | "base64";

/** Kling's documented image size limit. */
export const KLING_MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const DIRECT_TYPES = new Set(["image/jpeg", "image/jpg", "image/png"]);
const CONVERTED_TYPES = new Set(["image/webp"]);

export interface ResolvedImage {
  /** What goes into the `image` field. */
  value: string;
  transport: "url" | "base64";
  /** Set when the file was converted (e.g. "image/webp→image/png"). */
  converted?: string;
}

export interface ResolveImageOptions {
  sendImagesAs: SendImagesAs;
}

const internal = (message: string) => new ProviderError(message, { retryable: false });

export async function resolveImage(ref: ProviderReference, opts: ResolveImageOptions): Promise<ResolvedImage> {
  const mime = ref.mimeType.toLowerCase();
  if (DIRECT_TYPES.has(mime)) {
    const useUrl = ref.url && (opts.sendImagesAs === "url" || !ref.localPath);
    if (useUrl && ref.url) {
      if (!/^https?:\/\//i.test(ref.url)) throw internal("reference URL is not http(s)");
      return { value: ref.url, transport: "url" };
    }
    if (ref.localPath) return { value: await readBase64(ref.localPath), transport: "base64" };
    throw internal("image reference has neither a URL nor a local copy");
  }
  if (CONVERTED_TYPES.has(mime)) {
    if (!ref.localPath) throw internal(`${mime} reference needs a local copy to be converted for Kling`);
    const image = await convertToKlingImage(ref.localPath);
    const to = image[0] === 0x89 ? "image/png" : "image/jpeg";
    return { value: image.toString("base64"), transport: "base64", converted: `${mime}→${to}` };
  }
  throw new ProviderError(`Kling accepts only JPEG or PNG images, not ${mime}`, {
    retryable: false,
    reason: "invalid_input",
  });
}

async function readBase64(file: string): Promise<string> {
  try {
    return (await readFile(file)).toString("base64");
  } catch (err) {
    // Our own storage failing to read is transient from the worker's point of view.
    throw new ProviderError(`could not read the reference image: ${(err as Error).message}`, {
      retryable: true,
      retryAfterMs: 1000,
    });
  }
}

/**
 * We send Kling at most this many pixels per side. Kling documents no maximum resolution (only
 * 10 MB, at least 300 px, and 1:2.5–2.5:1), and its output is 1080p at most, so a larger start
 * frame adds bytes, not detail. An image that Kling's aspect limit accepts keeps a short side of
 * at least 4096 / 2.5 = 1638 px, far above the 300 px minimum.
 */
export const KLING_MAX_IMAGE_SIDE = 4096;
/** JPEG qualities tried, in order, when the PNG is over Kling's 10 MB. */
const JPEG_QUALITIES = [92, 82, 70];

/**
 * WEBP → PNG (keeps alpha), scaled down to fit KLING_MAX_IMAGE_SIDE. A PNG can be several times
 * larger than the lossy WEBP it came from; if it exceeds Kling's 10 MB, a JPEG is used instead
 * (alpha flattened onto white), at lower qualities until it fits. Animated WEBPs give their
 * first frame.
 *
 * Memory: sharp reads sequentially and WEBP is shrunk while decoding, so a lossy WEBP costs about
 * its output (4096 × 4096 × 4 bytes = 64 MiB at most); a lossless one is decoded whole
 * (width × height × 4 bytes), which upload inspection caps at 512 MiB (media/image-decode.ts).
 * The encoded result (≤ 10 MB once accepted, a PNG of ≤ 64 MiB while trying) is the only buffer.
 */
export async function convertToKlingImage(input: string): Promise<Buffer> {
  configureSharp();
  // sharp's default input limit (16383 × 16383 pixels) is also WEBP's own maximum.
  const frame = () =>
    sharp(input, { sequentialRead: true, failOn: "error" }).resize(KLING_MAX_IMAGE_SIDE, KLING_MAX_IMAGE_SIDE, {
      fit: "inside",
      withoutEnlargement: true,
    });
  try {
    const png = await frame().png().toBuffer();
    if (png.length <= KLING_MAX_IMAGE_BYTES) return png;
    for (const quality of JPEG_QUALITIES) {
      const jpeg = await frame()
        .flatten({ background: "#ffffff" })
        .jpeg({ quality, chromaSubsampling: "4:4:4" })
        .toBuffer();
      if (jpeg.length <= KLING_MAX_IMAGE_BYTES) return jpeg;
    }
  } catch (err) {
    // libvips' message can carry the file's path; keep only its gist.
    const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0]?.replaceAll(input, "<file>");
    throw new ProviderError(`could not convert the reference image for Kling: ${reason}`, {
      retryable: false,
      reason: "invalid_input",
    });
  }
  throw new ProviderError("the reference image does not fit in Kling's 10 MB even as a JPEG", {
    retryable: false,
    reason: "invalid_input",
  });
}
