import { inflateSync } from "node:zlib";
import { CRC_INITIAL, crc32Update } from "./crc32.js";
import type { ImageLayout } from "./image.js";
import {
  DEFLATE_MAX_RATIO,
  type ImageLimits,
  MAX_INFLATED_TEXT_BYTES,
  MAX_PNG_ANCILLARY_CHUNKS,
  MAX_PNG_CHUNKS,
} from "./limits.js";
import { checkImageSize } from "./pixels.js";
import type { Reader } from "./reader.js";
import { corrupt, Rejection, tooComplex, unsupported } from "./rejection.js";

// PNG: signature, then chunks (length, type, data, CRC); IHDR first, IEND last.

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Valid bit depths per colour type (PNG spec table 11.1). */
const PNG_BIT_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Channels per pixel by colour type: grey, -, RGB, palette index, grey + alpha, -, RGBA. */
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Chunks that carry the image or its animation (APNG has an fcTL per frame): not counted as
 * ancillary. PLTE, acTL and fcTL are still scanned as metadata, as they can hold any bytes.
 */
const PNG_IMAGE_CHUNKS = new Set(["IHDR", "PLTE", "IDAT", "IEND", "fdAT", "fcTL", "acTL"]);

export async function parsePng(reader: Reader, limits: ImageLimits): Promise<ImageLayout> {
  const signature = await reader.bytes(0, 8, "the PNG signature is cut off");
  if (!signature.equals(PNG_SIGNATURE)) throw corrupt("bad PNG signature");
  const layout: ImageLayout = { width: 0, height: 0, end: 0, metadata: [], texts: [], format: "PNG" };
  let offset = 8;
  let sawHeader = false;
  let sawData = false;
  let chunks = 0;
  let ancillary = 0;
  let minImageData = 0;
  let idatBytes = 0;
  /** Decompressed text is held for scanning: bounded for the whole file, not per chunk. */
  let textBudget = MAX_INFLATED_TEXT_BYTES;
  for (;;) {
    if (offset >= reader.size) throw corrupt("the PNG ends before its IEND chunk");
    const header = await reader.bytes(offset, 8, "a PNG chunk header is cut off");
    const length = header.readUInt32BE(0);
    const type = header.toString("latin1", 4, 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw corrupt("invalid PNG chunk type");
    if (length > 0x7fffffff) throw corrupt(`invalid length for PNG chunk ${type}`);
    const dataStart = offset + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > reader.size) throw corrupt(`the PNG chunk ${type} extends past the end of the file`);
    if (!sawHeader && type !== "IHDR") throw corrupt("the PNG does not start with an IHDR chunk");
    if (++chunks > MAX_PNG_CHUNKS) {
      throw tooComplex(
        `the PNG has more than ${MAX_PNG_CHUNKS} chunks; images from cameras and editors have far fewer`,
      );
    }
    if (!PNG_IMAGE_CHUNKS.has(type) && ++ancillary > MAX_PNG_ANCILLARY_CHUNKS) {
      throw tooComplex(
        `the PNG has more than ${MAX_PNG_ANCILLARY_CHUNKS} metadata chunks; images from cameras and editors have a handful`,
      );
    }

    if ((await chunkCrc(reader, offset, length)) !== (await reader.bytes(dataEnd, 4, "")).readUInt32BE(0)) {
      throw corrupt(`the PNG chunk ${type} has a bad checksum`);
    }

    if (type === "IHDR") {
      if (sawHeader) throw corrupt("the PNG has two IHDR chunks");
      if (length !== 13) throw corrupt("invalid PNG IHDR chunk");
      const header = parseHeader(await reader.bytes(dataStart, 13, ""), limits);
      layout.width = header.width;
      layout.height = header.height;
      minImageData = header.minImageData;
      sawHeader = true;
    } else if (type === "IDAT") {
      sawData = true;
      idatBytes += length;
    } else if (type === "IEND") {
      if (!sawData) throw corrupt("the PNG has no image data");
      if (idatBytes < minImageData) {
        throw new Rejection(
          "validation_failed",
          `The PNG declares ${layout.width}×${layout.height} pixels but holds too little image data ` +
            `(${idatBytes} bytes; even at the best possible compression it needs ${minImageData}).`,
        );
      }
      layout.end = dataEnd + 4;
      return layout;
    } else if (type !== "fdAT") {
      // Everything else is metadata (text, colour profiles, private chunks).
      const label = `a PNG ${type} chunk`;
      layout.metadata.push({ start: dataStart, end: dataEnd, label });
      if (type === "zTXt" || type === "iTXt") {
        const text = await pngCompressedText(reader, type, dataStart, length, textBudget);
        if (text) {
          textBudget -= text.length;
          layout.texts.push({ label, data: text });
        }
      }
    }
    offset = dataEnd + 4;
  }
}

/** CRC-32 of a chunk's type and data; small chunks are checked from memory without an await per block. */
async function chunkCrc(reader: Reader, offset: number, length: number): Promise<number> {
  const inMemory = reader.peek(offset + 4, 4 + length);
  if (inMemory) return (crc32Update(CRC_INITIAL, inMemory) ^ CRC_INITIAL) >>> 0;
  let crc = crc32Update(CRC_INITIAL, await reader.bytes(offset + 4, 4, ""));
  for await (const { data } of reader.blocks(offset + 8, offset + 8 + length)) crc = crc32Update(crc, data);
  return (crc ^ CRC_INITIAL) >>> 0;
}

/**
 * Size and bit layout from IHDR, refused past the pixel limits. `minImageData` is the fewest
 * IDAT bytes that can hold the declared pixels: their raw (filtered, uncompressed) size divided
 * by deflate's best possible ratio.
 */
function parseHeader(ihdr: Buffer, limits: ImageLimits): { width: number; height: number; minImageData: number } {
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const bitDepth = ihdr.readUInt8(8);
  const colorType = ihdr.readUInt8(9);
  const interlaced = ihdr.readUInt8(12) !== 0;
  if (!PNG_BIT_DEPTHS[colorType]?.includes(bitDepth)) throw corrupt("invalid PNG colour type or bit depth");
  checkImageSize("PNG", width, height, limits);
  const bitsPerPixel = bitDepth * (PNG_CHANNELS[colorType] as number);
  // Each scanline is a filter-type byte and the packed pixels. Interlaced images split rows into
  // seven passes whose byte counts are rounded separately, so only the pixel bits are a safe floor.
  const rawBytes = interlaced
    ? Math.ceil((width * height * bitsPerPixel) / 8)
    : height * (1 + Math.ceil((width * bitsPerPixel) / 8));
  return { width, height, minImageData: Math.ceil(rawBytes / DEFLATE_MAX_RATIO) };
}

/** The decompressed text of a zTXt chunk, or of an iTXt chunk with its compression flag set. */
async function pngCompressedText(
  reader: Reader,
  type: string,
  start: number,
  length: number,
  maxOutputLength: number,
): Promise<Buffer | null> {
  const data = await reader.bytes(start, length, "");
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 1) throw corrupt(`invalid PNG ${type} chunk`);
  let compressed: Buffer;
  if (type === "zTXt") {
    compressed = data.subarray(keywordEnd + 2);
  } else {
    if (data[keywordEnd + 1] !== 1) return null;
    const languageEnd = data.indexOf(0, keywordEnd + 3);
    const translatedEnd = languageEnd < 0 ? -1 : data.indexOf(0, languageEnd + 1);
    if (translatedEnd < 0) throw corrupt(`invalid PNG ${type} chunk`);
    compressed = data.subarray(translatedEnd + 1);
  }
  try {
    return inflateSync(compressed, { maxOutputLength: Math.max(1, maxOutputLength) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw unsupported(
        `The file contains an oversized compressed text chunk (${type}); only plain media files are accepted.`,
      );
    }
    throw corrupt(`a compressed PNG ${type} chunk cannot be decompressed`);
  }
}
