import type { ImageLayout } from "./image.js";
import { type ImageLimits, MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS, MAX_JPEG_SEGMENTS_BEFORE_SCAN } from "./limits.js";
import { checkImageSize } from "./pixels.js";
import type { Reader } from "./reader.js";
import { corrupt, tooComplex } from "./rejection.js";

// JPEG: SOI, marker segments, entropy-coded scans after each SOS, EOI.

export async function parseJpeg(reader: Reader, limits: ImageLimits): Promise<ImageLayout> {
  const soi = await reader.bytes(0, 2, "the JPEG is cut off");
  if (soi[0] !== 0xff || soi[1] !== 0xd8) throw corrupt("bad JPEG start marker");
  const layout: ImageLayout = { width: 0, height: 0, end: 0, metadata: [], texts: [], format: "JPEG" };
  let sawFrame = false;
  let offset = 2;
  let segments = 0;
  let scans = 0;
  const ended = "the JPEG ends before its EOI marker";
  for (;;) {
    if ((await reader.bytes(offset, 1, ended))[0] !== 0xff) throw corrupt("a JPEG segment is malformed");
    // Any number of 0xFF fill bytes may precede a marker code.
    const codeAt = await reader.skipRun(offset + 1, 0xff);
    const code = (await reader.bytes(codeAt, 1, ended))[0] as number;
    offset = codeAt - 1;
    // Every marker counts (parameterless ones too), so no run of them goes unbounded.
    segments++;
    if (scans === 0 && segments > MAX_JPEG_SEGMENTS_BEFORE_SCAN) {
      throw tooComplex(
        `the JPEG has more than ${MAX_JPEG_SEGMENTS_BEFORE_SCAN} marker segments before its image data; ` +
          "files from cameras and editors have far fewer",
      );
    }
    if (segments > MAX_JPEG_SEGMENTS) {
      throw tooComplex(
        `the JPEG has more than ${MAX_JPEG_SEGMENTS} marker segments; files from cameras and editors have far fewer`,
      );
    }
    if (code === 0xd9) {
      if (!sawFrame) throw corrupt("the JPEG has no frame header");
      layout.end = offset + 2;
      return layout;
    }
    if (code === 0x00 || code === 0xd8) throw corrupt("a JPEG segment is malformed");
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) {
      // Parameterless markers (RSTn, TEM).
      offset += 2;
      continue;
    }
    const length = (await reader.bytes(offset + 2, 2, ended)).readUInt16BE(0);
    if (length < 2) throw corrupt("a JPEG segment is malformed");
    const segmentEnd = offset + 2 + length;
    if (segmentEnd > reader.size) throw corrupt("a JPEG segment extends past the end of the file");

    if (isStartOfFrame(code)) {
      if (length < 8) throw corrupt("invalid JPEG frame header");
      const frame = await reader.bytes(offset + 4, 6, "");
      if (!sawFrame) {
        layout.height = frame.readUInt16BE(1);
        layout.width = frame.readUInt16BE(3);
        checkImageSize("JPEG", layout.width, layout.height, limits);
        sawFrame = true;
      }
    } else if (code === 0xda) {
      if (!sawFrame) throw corrupt("the JPEG has image data before its frame header");
      if (++scans > MAX_JPEG_SCANS) {
        throw tooComplex(
          `the JPEG has more than ${MAX_JPEG_SCANS} scans; progressive files from encoders have about 10`,
        );
      }
      offset = await findMarkerAfterScan(reader, segmentEnd);
      continue;
    } else if (code === 0xfe) {
      layout.metadata.push({ start: offset + 4, end: segmentEnd, label: "a JPEG comment" });
    } else if (code >= 0xe0 && code <= 0xef) {
      // Skipping APPn by its length also skips any EXIF thumbnail (a whole JPEG with its own EOI).
      layout.metadata.push({ start: offset + 4, end: segmentEnd, label: `a JPEG APP${code - 0xe0} segment` });
    }
    offset = segmentEnd;
  }
}

/** SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
function isStartOfFrame(code: number): boolean {
  return code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc;
}

/**
 * Skips entropy-coded data: returns the offset of the next real marker. Inside a scan 0xFF is
 * followed by 0x00 (stuffing), RSTn or more 0xFF fill bytes; anything else starts a marker.
 */
async function findMarkerAfterScan(reader: Reader, start: number): Promise<number> {
  let pendingFF = -1;
  for await (const { offset, data } of reader.blocks(start, reader.size)) {
    let i = 0;
    if (pendingFF >= 0) {
      const next = data[0] as number;
      if (next !== 0x00 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) return pendingFF;
      pendingFF = -1;
      i = next === 0xff ? 0 : 1;
    }
    for (;;) {
      const j = data.indexOf(0xff, i);
      if (j < 0) break;
      if (j + 1 >= data.length) {
        pendingFF = offset + j;
        break;
      }
      const next = data[j + 1] as number;
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i = j + 2;
      else if (next === 0xff) i = j + 1;
      else return offset + j;
    }
  }
  throw corrupt("the JPEG ends inside its image data (no EOI marker)");
}
