/**
 * Images: PNG, JPEG and WEBP are parsed natively (structure, size, polyglot scan); other image
 * types a policy accepts (GIF, BMP, …) are measured by ffmpeg.
 */

import { parseJpeg } from "./jpeg.js";
import { MAX_TRAILING_BYTES, ZIP_TAIL_BYTES } from "./limits.js";
import {
  ALL_MARKERS,
  embedded,
  MarkerScanner,
  type Region,
  STRONG_MARKERS,
  scanRegion,
  scanRegions,
  ZIP_MARKERS,
} from "./markers.js";
import { analyseWithFfmpeg } from "./media.js";
import { checkImageSize } from "./pixels.js";
import { parsePng } from "./png.js";
import type { Reader } from "./reader.js";
import { corrupt, Rejection, unsupported } from "./rejection.js";
import type { InspectOptions } from "./types.js";
import { parseWebp } from "./webp.js";

export interface ImageLayout {
  width: number;
  height: number;
  /** Offset just past the image's last byte (IEND chunk, EOI marker, RIFF end). */
  end: number;
  /** Non-pixel parts (metadata, comments, unknown chunks): scanned for every marker. */
  metadata: Region[];
  /** Decompressed text (PNG zTXt/iTXt) to scan as well. */
  texts: { label: string; data: Buffer }[];
  format: string;
}

export async function inspectImage(
  reader: Reader,
  path: string,
  mimeType: string,
  opts: InspectOptions,
): Promise<{ width: number; height: number }> {
  let layout: ImageLayout;
  const limits = opts.limits ?? {};
  if (mimeType === "image/png") layout = await parsePng(reader, limits);
  else if (mimeType === "image/jpeg") layout = await parseJpeg(reader, limits);
  else if (mimeType === "image/webp") layout = await parseWebp(reader, limits);
  else {
    // Another image type a policy chose to accept (GIF, BMP, …): ffmpeg reads the dimensions.
    const media = await analyseWithFfmpeg(reader, path, mimeType, opts);
    if (!media.hasVideo) throw corrupt(`it could not be read as ${mimeType}`);
    await scanRegion(reader, { start: 0, end: reader.size, label: "the file" }, STRONG_MARKERS);
    if (media.width <= 0 || media.height <= 0) throw new Rejection("validation_failed", "The image has no pixels.");
    checkImageSize(mimeType.replace("image/", "").toUpperCase(), media.width, media.height, limits);
    return { width: media.width, height: media.height };
  }

  if (layout.width <= 0 || layout.height <= 0) {
    throw new Rejection("validation_failed", "The image has zero width or height.");
  }
  const trailing = reader.size - layout.end;
  if (trailing > MAX_TRAILING_BYTES) {
    throw unsupported(
      `The file has ${trailing} bytes of extra data after the end of the ${layout.format} image ` +
        "(another file may be hidden in it); only plain media files are accepted.",
    );
  }
  const regions = [...layout.metadata];
  if (trailing > 0) regions.push({ start: layout.end, end: reader.size, label: "the data after the image" });
  await scanRegions(reader, regions, ALL_MARKERS);
  for (const text of layout.texts) {
    const found = new MarkerScanner(ALL_MARKERS).push(text.data);
    if (found) throw embedded(found, text.label);
  }
  // Script markers anywhere, ZIP signatures where a ZIP reader would look for them (the end).
  await scanRegion(reader, { start: 0, end: reader.size, label: "the image data" }, STRONG_MARKERS);
  const tail = { start: Math.max(0, reader.size - ZIP_TAIL_BYTES), end: reader.size, label: "the end of the file" };
  await scanRegion(reader, tail, ZIP_MARKERS);
  return { width: layout.width, height: layout.height };
}
