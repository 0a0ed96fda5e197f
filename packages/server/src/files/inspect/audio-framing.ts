/**
 * Containers where a cut-off file looks like a shorter valid one to ffmpeg (ADTS AAC, Ogg, WAV)
 * get a native framing check.
 */
import type { Reader } from "./reader.js";
import { corrupt } from "./rejection.js";
import { id3v2End } from "./sniff.js";

/**
 * Walks the ADTS frames of a raw AAC stream (after an optional ID3v2 tag): a last frame that
 * runs past the end of the file means the file was cut. Returns the exact duration.
 */
export async function checkAdts(reader: Reader): Promise<number | null> {
  let offset = id3v2End(await reader.bytes(0, Math.min(10, reader.size), ""));
  let samples = 0;
  let sampleRate = 0;
  while (offset + 7 <= reader.size) {
    const h = await reader.bytes(offset, 7, "");
    // Not a frame header: trailing tags (ID3v1, APE) or junk; ffmpeg judges the rest.
    if (h[0] !== 0xff || ((h[1] as number) & 0xf6) !== 0xf0) break;
    const frameLength = (((h[3] as number) & 0x03) << 11) | ((h[4] as number) << 3) | ((h[5] as number) >> 5);
    if (frameLength < 7) throw corrupt("an AAC frame header is invalid");
    if (offset + frameLength > reader.size) throw corrupt("the last AAC frame is cut off");
    const rate = ADTS_SAMPLE_RATES[((h[2] as number) >> 2) & 0x0f];
    if (rate === undefined) throw corrupt("an AAC frame header is invalid");
    sampleRate = rate;
    samples += 1024 * (((h[6] as number) & 0x03) + 1);
    offset += frameLength;
  }
  if (offset < reader.size && reader.size - offset < 7) throw corrupt("the last AAC frame is cut off");
  return sampleRate > 0 && samples > 0 ? samples / sampleRate : null;
}

const ADTS_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** Walks the Ogg pages: the file must end exactly at the end of a complete page. */
export async function checkOggPages(reader: Reader): Promise<void> {
  let offset = 0;
  while (offset < reader.size) {
    const header = await reader.bytes(offset, 27, "the last Ogg page is cut off");
    if (header.toString("latin1", 0, 4) !== "OggS") throw corrupt("unexpected data in the Ogg stream");
    const segments = header[26] as number;
    const table = await reader.bytes(offset + 27, segments, "the last Ogg page is cut off");
    let bodySize = 0;
    for (const lacing of table) bodySize += lacing;
    const pageEnd = offset + 27 + segments + bodySize;
    if (pageEnd > reader.size) throw corrupt("the last Ogg page is cut off");
    offset = pageEnd;
  }
}

/** A WAV's RIFF header gives the file's length (0 and 0xFFFFFFFF mean "unknown", as streamed WAVs write). */
export async function checkRiffSize(reader: Reader): Promise<void> {
  const header = await reader.bytes(0, 12, "the WAV header is cut off");
  const size = header.readUInt32LE(4);
  if (size === 0 || size === 0xffffffff) return;
  if (8 + size > reader.size) throw corrupt("the WAV file is shorter than its RIFF header says");
}
