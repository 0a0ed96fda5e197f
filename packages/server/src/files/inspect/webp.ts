import type { ImageLayout } from "./image.js";
import { type ImageLimits, MAX_WEBP_CHUNKS } from "./limits.js";
import { checkImageSize } from "./pixels.js";
import type { Reader } from "./reader.js";
import { corrupt, Rejection, tooComplex } from "./rejection.js";

// WEBP: RIFF container ("RIFF", size, "WEBP") holding VP8 / VP8L / VP8X (+ metadata) chunks.

/** Chunks holding image data (not scanned for short markers). */
const WEBP_IMAGE_CHUNKS = new Set(["VP8 ", "VP8L", "ALPH", "VP8X"]);

/** VP8X flag bit that marks an animation. */
const VP8X_ANIMATION = 0x02;

/**
 * Animation is refused outright: the model takes a still reference frame, decoders disagree on
 * which frame an animated WEBP "is", and each frame is a separate image to check.
 */
function animated(): Rejection {
  return new Rejection(
    "validation_failed",
    "Animated WEBP images are not accepted; upload a still image (JPEG, PNG or still WEBP).",
  );
}

export async function parseWebp(reader: Reader, limits: ImageLimits): Promise<ImageLayout> {
  const header = await reader.bytes(0, 12, "the WEBP header is cut off");
  if (header.toString("latin1", 0, 4) !== "RIFF" || header.toString("latin1", 8, 12) !== "WEBP") {
    throw corrupt("bad WEBP header");
  }
  const riffEnd = 8 + header.readUInt32LE(4);
  if (riffEnd > reader.size) throw corrupt("the WEBP file is shorter than its RIFF header says");
  const layout: ImageLayout = { width: 0, height: 0, end: riffEnd, metadata: [], texts: [], format: "WEBP" };
  let canvas: { width: number; height: number } | null = null;
  let hasImage = false;
  let offset = 12;
  let chunks = 0;
  while (offset < riffEnd) {
    if (++chunks > MAX_WEBP_CHUNKS) {
      throw tooComplex(`the WEBP has more than ${MAX_WEBP_CHUNKS} chunks; still images from encoders have at most 6`);
    }
    const chunk = await reader.bytes(offset, 8, "a WEBP chunk header is cut off");
    if (offset + 8 > riffEnd) throw corrupt("a WEBP chunk header is cut off");
    const type = chunk.toString("latin1", 0, 4);
    const length = chunk.readUInt32LE(4);
    const dataStart = offset + 8;
    const dataEnd = dataStart + length;
    if (dataEnd > riffEnd)
      throw corrupt(`the WEBP chunk ${JSON.stringify(type.trim())} extends past the end of the file`);
    if (offset === 12 && type !== "VP8 " && type !== "VP8L" && type !== "VP8X") {
      throw corrupt("the WEBP has no image header");
    }
    if (type === "VP8X") {
      if (length < 10) throw corrupt("invalid WEBP VP8X chunk");
      const data = await reader.bytes(dataStart, 10, "");
      if ((data[0] as number) & VP8X_ANIMATION) throw animated();
      canvas = { width: 1 + data.readUIntLE(4, 3), height: 1 + data.readUIntLE(7, 3) };
      checkImageSize("WEBP", canvas.width, canvas.height, limits);
    } else if (type === "VP8 ") {
      if (length < 10) throw corrupt("invalid WEBP VP8 chunk");
      const data = await reader.bytes(dataStart, 10, "");
      if (data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) throw corrupt("invalid WEBP VP8 chunk");
      if (!hasImage) {
        layout.width = data.readUInt16LE(6) & 0x3fff;
        layout.height = data.readUInt16LE(8) & 0x3fff;
        checkImageSize("WEBP", layout.width, layout.height, limits);
      }
      hasImage = true;
    } else if (type === "VP8L") {
      if (length < 5) throw corrupt("invalid WEBP VP8L chunk");
      const data = await reader.bytes(dataStart, 5, "");
      if (data[0] !== 0x2f) throw corrupt("invalid WEBP VP8L chunk");
      const bits = data.readUInt32LE(1);
      if (!hasImage) {
        layout.width = (bits & 0x3fff) + 1;
        layout.height = ((bits >>> 14) & 0x3fff) + 1;
        checkImageSize("WEBP", layout.width, layout.height, limits);
      }
      hasImage = true;
    } else if (type === "ANIM" || type === "ANMF") {
      // Without the VP8X flag, a decoder may still play the frames.
      throw animated();
    }
    if (!WEBP_IMAGE_CHUNKS.has(type)) {
      layout.metadata.push({ start: dataStart, end: dataEnd, label: `a WEBP ${type.trim()} chunk` });
    }
    // Chunks are padded to an even size; tolerate a missing pad byte on the last one.
    offset = Math.min(dataEnd + (length & 1), riffEnd);
  }
  if (!hasImage) throw corrupt("the WEBP has no image data");
  if (canvas) {
    layout.width = canvas.width;
    layout.height = canvas.height;
  }
  return layout;
}
