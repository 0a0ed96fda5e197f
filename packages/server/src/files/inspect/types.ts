import type { ImageLimits } from "./limits.js";
import type { FileKind } from "./sniff.js";

export type Inspection =
  | { ok: true; mimeType: string; width: number | null; height: number | null; durationSeconds: number | null }
  | { ok: false; code: "validation_failed" | "unsupported_media_type"; message: string };

export interface InspectOptions {
  /** The kind the client declared. */
  kind: FileKind;
  /** The policy's accepted types (aliases such as audio/x-wav are understood). */
  allowedMimeTypes: readonly string[];
  ffmpegPath: string;
  signal?: AbortSignal;
  /** How long ffmpeg may take to read the file (default FFMPEG_TIMEOUT_MS). */
  ffmpegTimeoutMs?: number;
  /** Pixel limits for images (defaults DEFAULT_MAX_IMAGE_SIDE and DEFAULT_MAX_IMAGE_PIXELS). */
  limits?: ImageLimits;
}
