/**
 * The playground's rules, as plain functions so they are unit-tested without a browser
 * (playground.test.ts). Everything here is read from the model's catalog entry as GET
 * /api/v1/models returns it, and follows what the server checks, so the form can say what is
 * wrong before anything is sent: the prompt's length in code points, the params' defaults, the
 * price, and a reference image's type, size, sides and aspect ratio.
 */
import type { MediaLimit, Model, ModelParam } from "@framegate/sdk";

/**
 * The prompt's length as the server counts it: in Unicode code points, so an emoji is one
 * character (a string's .length would count its two UTF-16 halves).
 */
export function promptLength(prompt: string): number {
  let count = 0;
  for (const _ of prompt) count++;
  return count;
}

export interface PromptCheck {
  length: number;
  max: number;
  /** Why the prompt cannot be sent as it is, or undefined. */
  problem: string | undefined;
}

export function checkPrompt(prompt: string, max: number): PromptCheck {
  const length = promptLength(prompt);
  let problem: string | undefined;
  if (length > max) {
    const over = length - max;
    problem = `The prompt is ${over} ${over === 1 ? "character" : "characters"} over the limit of ${max}.`;
  } else if (prompt.trim() === "") {
    problem = "Write a prompt.";
  }
  return { length, max, problem };
}

/** A param's value as the form holds it: selects and text as strings, numbers as numbers. */
export type ParamValue = string | number;

/** Each param's catalog default (a param without one starts empty and is not sent while empty). */
export function defaultParams(model: Model): Record<string, ParamValue> {
  const values: Record<string, ParamValue> = {};
  for (const param of model.params) {
    if (param.default !== null) values[param.key] = param.default;
    else if (param.type === "select" && param.required && param.options?.[0] !== undefined) {
      values[param.key] = param.options[0];
    }
  }
  return values;
}

const MIB = 1024 * 1024;

/**
 * A file size against the catalog's limits, which are binary megabytes written "10 MB" (as the
 * README and the catalog write them): 10 MB, 9.5 MB, 812 kB, 40 B.
 */
export function formatSize(bytes: number): string {
  const trim = (n: number) => String(Math.round(n * 10) / 10);
  if (bytes >= MIB) return `${trim(bytes / MIB)} MB`;
  if (bytes >= 1024) return `${trim(bytes / 1024)} kB`;
  return `${bytes} B`;
}

const bytes = (n: number) => `${new Intl.NumberFormat("en-US").format(n)} bytes`;

/** A select whose two options are "false" and "true" reads better as a checkbox. */
export function isToggle(param: ModelParam): boolean {
  return (
    param.type === "select" &&
    param.options?.length === 2 &&
    param.options.includes("false") &&
    param.options.includes("true")
  );
}

/**
 * The credits a create with these params reserves, by the server's rule (contract pricing.ts): a
 * FIXED model costs its base_credits whatever the params. Other billing types are priced by the
 * server only: undefined says the form cannot know in advance.
 */
export function priceOf(model: Model, _params: Record<string, ParamValue>): number | undefined {
  return model.billing_type === "FIXED" ? model.base_credits : undefined;
}

/** The catalog's limit for reference images, or undefined when the model takes none. */
export function imageLimit(model: Model): MediaLimit | undefined {
  if (!model.reference_media || model.reference_media.max_items < 1) return undefined;
  return model.reference_media.limits.find((limit) => limit.kind === "image");
}

/**
 * The image type its first bytes say it is (the server decides by the bytes as well, never by the
 * name): JPEG, PNG, WEBP or GIF; undefined for anything else.
 */
export function sniffImageType(head: Uint8Array): string | undefined {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  const ascii = (at: number, text: string) => [...text].every((c, i) => head[at + i] === c.charCodeAt(0));
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (ascii(0, "RIFF") && ascii(8, "WEBP")) return "image/webp";
  if (ascii(0, "GIF87a") || ascii(0, "GIF89a")) return "image/gif";
  return undefined;
}

/** How many leading bytes sniffImageType needs. */
export const SNIFF_BYTES = 12;

const SNIFFABLE = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);

/**
 * The type to check a chosen file by: what its bytes say; else, for a type this page cannot
 * recognize by bytes, the browser's guess from the name (a catalog may list one); never a
 * recognizable type the bytes did not show ("" then: a BMP named .png is not a PNG).
 */
export function detectImageType(head: Uint8Array, declared: string): string {
  return sniffImageType(head) ?? (SNIFFABLE.has(declared) ? "" : declared);
}

/** What the page knows of a chosen file before it is decoded. */
export interface ChosenFile {
  sizeBytes: number;
  /** From its bytes (sniffImageType), else the browser's guess from the name, else "". */
  mimeType: string;
}

const TYPE_NAMES: Record<string, string> = {
  "image/jpeg": "JPEG",
  "image/png": "PNG",
  "image/webp": "WEBP",
  "image/gif": "GIF",
};
const typeName = (mime: string) => TYPE_NAMES[mime] ?? mime;

/** Human list of the accepted types: "JPEG, PNG or WEBP". */
export function acceptedTypes(limit: MediaLimit): string {
  const names = limit.mime_types.map(typeName);
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : (names[0] ?? "none");
}

/** The problems found before decoding: type and size. Empty when the file may be decoded. */
export function checkFile(limit: MediaLimit, file: ChosenFile): string[] {
  const problems: string[] = [];
  if (!limit.mime_types.includes(file.mimeType)) {
    const what = file.mimeType ? `a ${typeName(file.mimeType)} file` : "not an image this page recognizes";
    problems.push(`The file is ${what}; the model takes ${acceptedTypes(limit)} images.`);
  }
  if (file.sizeBytes > limit.max_bytes) {
    let size = formatSize(file.sizeBytes);
    let max = formatSize(limit.max_bytes);
    // Just over the limit rounds to the limit itself: then the exact byte counts say it.
    if (size === max) [size, max] = [bytes(file.sizeBytes), bytes(limit.max_bytes)];
    problems.push(`The file is ${size}; the limit is ${max}.`);
  } else if (file.sizeBytes === 0) {
    problems.push("The file is empty.");
  }
  return problems;
}

/** The problems with a decoded image's dimensions: the shorter side and the aspect ratio. */
export function checkDimensions(limit: MediaLimit, width: number, height: number): string[] {
  const problems: string[] = [];
  if (limit.min_side_px !== undefined && Math.min(width, height) < limit.min_side_px) {
    problems.push(`The image is ${width}×${height} px; both sides must be at least ${limit.min_side_px} px.`);
  }
  const ratio = width / height;
  // The same tolerance as the server's check, so a ratio printed as equal to the bound passes.
  const tooNarrow = limit.min_aspect_ratio !== undefined && ratio < limit.min_aspect_ratio - 1e-9;
  const tooWide = limit.max_aspect_ratio !== undefined && ratio > limit.max_aspect_ratio + 1e-9;
  if (tooNarrow || tooWide) {
    problems.push(
      `Its aspect ratio (${ratio.toFixed(2)}) must be between ${ratioText(limit.min_aspect_ratio)} and ${ratioText(limit.max_aspect_ratio)}.`,
    );
  }
  return problems;
}

/** 0.4 → "1:2.5", 2.5 → "2.5:1"; an unset bound reads "any". */
export function ratioText(ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio) || ratio <= 0) return "any";
  const round = (n: number) => Math.round(n * 100) / 100;
  return ratio >= 1 ? `${round(ratio)}:1` : `1:${round(1 / ratio)}`;
}

/** What the catalog asks of a reference image, in a sentence for the form's hint. */
export function describeLimit(limit: MediaLimit): string {
  const parts = [`${acceptedTypes(limit)}, up to ${formatSize(limit.max_bytes)}`];
  if (limit.min_side_px !== undefined) parts.push(`at least ${limit.min_side_px} px on each side`);
  if (limit.min_aspect_ratio !== undefined || limit.max_aspect_ratio !== undefined) {
    parts.push(`aspect ratio between ${ratioText(limit.min_aspect_ratio)} and ${ratioText(limit.max_aspect_ratio)}`);
  }
  return `${parts.join(", ")}.`;
}

/**
 * The params object of the create request: the form's values (empty text left out) and, with an
 * uploaded reference, the `referenceMediaItems` entry the API expects (README "Reference images").
 */
export function requestParams(
  values: Record<string, ParamValue>,
  reference?: { url: string; mimeType: string; name?: string | null },
): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value !== "") params[key] = value;
  }
  if (reference) {
    params.referenceMediaItems = [
      {
        url: reference.url,
        kind: "image",
        mimeType: reference.mimeType,
        ...(reference.name ? { name: reference.name } : {}),
      },
    ];
  }
  return params;
}

/** The box a preview of width×height is drawn in, no larger than `max` on either side. */
export function fitWithin(width: number, height: number, max: number): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}
