/**
 * Type detection from a file's first bytes (never its name or declared type), and the MIME
 * spellings the API understands.
 */
import { fileTypeFromBuffer } from "file-type";

export type FileKind = "image" | "video" | "audio";

/** First bytes of a file are enough for sniffing; callers capture this many while streaming. */
export const SNIFF_BYTES = 4100;

/** Spellings that name the same format, mapped to the names the API uses. */
const MIME_ALIASES: Readonly<Record<string, string>> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  // An APNG is a valid PNG (decoders that ignore animation show the default image).
  "image/apng": "image/png",
  "image/x-png": "image/png",
  "image/x-ms-bmp": "image/bmp",
  "image/x-bmp": "image/bmp",
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/vnd.wave": "audio/wav",
  "audio/x-pn-wav": "audio/wav",
  "audio/x-m4a": "audio/mp4",
  "audio/m4a": "audio/mp4",
  "video/x-m4v": "video/mp4",
  "audio/mp3": "audio/mpeg",
  "audio/x-mpeg": "audio/mpeg",
  "audio/x-mp3": "audio/mpeg",
  "audio/x-aac": "audio/aac",
  "audio/aacp": "audio/aac",
  "audio/x-ogg": "audio/ogg",
  "video/x-matroska": "video/matroska",
  "video/x-quicktime": "video/quicktime",
};

/** Lower-cases, drops parameters (`audio/ogg; codecs=opus` → `audio/ogg`) and resolves aliases. */
export function normalizeMimeType(mimeType: string): string {
  const base = (mimeType.split(";")[0] ?? "").trim().toLowerCase();
  return MIME_ALIASES[base] ?? base;
}

/** The file kind a (normalized) MIME type belongs to, if any. */
export function kindOfMimeType(mimeType: string): FileKind | undefined {
  const top = normalizeMimeType(mimeType).split("/")[0];
  return top === "image" || top === "video" || top === "audio" ? top : undefined;
}

/**
 * Detects the MIME type from magic numbers only (never filename/declared type), normalized to the
 * names the API uses: image/jpeg, image/png, image/webp, image/gif, image/bmp, video/mp4,
 * video/quicktime, video/webm, audio/mpeg, audio/mp4, audio/wav, audio/aac, audio/ogg, …;
 * undefined if unknown (e.g. text).
 *
 * ISO-BMFF files are named after their ftyp brand: `M4A ` is audio/mp4, but an audio-only file
 * with a generic brand (isom, mp42) is video/mp4 here; `inspectFile` refines that by looking at
 * the tracks.
 */
export async function sniffMimeType(head: Uint8Array): Promise<string | undefined> {
  if (head.length === 0) return undefined;
  const sample = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  try {
    const detected = await fileTypeFromBuffer(sample);
    return detected ? normalizeMimeType(detected.mime) : undefined;
  } catch {
    // file-type throws on some malformed structures; for us that is simply "not recognised".
    return undefined;
  }
}

/** Offset just past a leading ID3v2 tag (0 without one). */
export function id3v2End(head: Uint8Array): number {
  if (head.length < 10 || head[0] !== 0x49 || head[1] !== 0x44 || head[2] !== 0x33) return 0;
  const size =
    ((head[6] as number) << 21) | ((head[7] as number) << 14) | ((head[8] as number) << 7) | (head[9] as number);
  return 10 + size + ((head[5] as number) & 0x10 ? 10 : 0);
}
