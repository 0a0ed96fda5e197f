/** File extensions for the media types we store, and back (the media route's Content-Type). */
export const EXTENSION_BY_MIME: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "video/mp4": "mp4",
  "video/quicktime": "mov",
  "video/webm": "webm",
  "audio/mpeg": "mp3",
  "audio/mp4": "m4a",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/aac": "aac",
  "audio/ogg": "ogg",
};

export const MIME_BY_EXTENSION: Record<string, string> = Object.fromEntries(
  Object.entries(EXTENSION_BY_MIME)
    .filter(([mime]) => mime !== "audio/x-wav")
    .map(([mime, ext]) => [ext, mime]),
);

export function extensionFor(mime: string): string {
  return EXTENSION_BY_MIME[mime] ?? "bin";
}
