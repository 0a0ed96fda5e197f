/**
 * The model catalog as data. Validation, pricing, /api/v1/models, the OpenAPI document and the
 * CLI's flags are derived from it: adding a model means adding an entry here, not code paths.
 */

export type ParamType = "select" | "text" | "number";

export interface ParamDescriptor {
  key: string;
  type: ParamType;
  required: boolean;
  default: string | number | null;
  options: string[] | null;
  min: number | null;
  max: number | null;
  step: number | null;
  description: string;
}

export type FileKind = "image" | "video" | "audio";

export interface MediaLimit {
  kind: FileKind;
  max_bytes: number;
  mime_types: string[];
  /** Added: what the upstream model itself accepts, so bad inputs are refused before charging. */
  min_side_px?: number;
  min_aspect_ratio?: number;
  max_aspect_ratio?: number;
}

export interface ReferenceMediaPolicy {
  max_items: number;
  kinds: FileKind[];
  limits: MediaLimit[];
}

export type BillingType = "FIXED" | "METERED" | "TOKEN_BASED";

/** One public model entry, field for field as Rivya's GET /api/v1/models returns it. */
export interface ModelEntry {
  id: string;
  display_name: string;
  category: "video" | "image" | "audio" | "chat";
  runtime: "async_task";
  base_credits: number;
  billing_type: BillingType;
  supported_modes: string[];
  max_prompt_length: number;
  reference_media: ReferenceMediaPolicy | null;
  params: ParamDescriptor[];
  api_status: "available" | "coming_soon" | "studio_only";
  api_input_status: "available_text" | "available_url_input" | "partial_requires_files" | "requires_files_api";
  supported_api_inputs: string[];
  /**
   * Whether the model cannot be used at all without the Files API: true only when every supported
   * mode is in `requires_upload_for_modes` (`api_input_status: "requires_files_api"`). A model
   * with both kinds of mode is false here and `partial_requires_files`, as Rivya reports
   * kling-2-6 (text-to-video needs no upload; image-to-video does).
   */
  requires_files_api: boolean;
  /** The supported modes that need a reference uploaded through the Files API. */
  requires_upload_for_modes: string[];
  url_input_supported: boolean;
  file_kinds: FileKind[];
  chat_capabilities: null;
  notices: string[];
}

const MB = 1024 * 1024;

function select(key: string, options: string[], defaultValue: string, description: string): ParamDescriptor {
  return {
    key,
    type: "select",
    required: false,
    default: defaultValue,
    options,
    min: null,
    max: null,
    step: null,
    description,
  };
}

export const KLING_2_6: ModelEntry = {
  id: "kling-2-6",
  display_name: "Kling 2.6",
  category: "video",
  runtime: "async_task",
  base_credits: 55,
  billing_type: "FIXED",
  supported_modes: ["text-to-video", "image-to-video"],
  max_prompt_length: 1000,
  reference_media: {
    max_items: 1,
    kinds: ["image"],
    limits: [
      {
        kind: "image",
        max_bytes: 10 * MB,
        mime_types: ["image/jpeg", "image/png", "image/webp"],
        // Kling's image2video refuses images under 300 px or outside 1:2.5 .. 2.5:1.
        min_side_px: 300,
        min_aspect_ratio: 0.4,
        max_aspect_ratio: 2.5,
      },
    ],
  },
  params: [
    select("duration", ["5", "10"], "5", "Duration"),
    select("sound", ["false", "true"], "false", "Generate audio"),
    select("aspect_ratio", ["1:1", "16:9", "9:16"], "1:1", "Aspect ratio"),
  ],
  api_status: "available",
  api_input_status: "partial_requires_files",
  supported_api_inputs: ["text", "file"],
  requires_files_api: false,
  requires_upload_for_modes: ["image-to-video"],
  url_input_supported: false,
  file_kinds: ["image"],
  chat_capabilities: null,
  notices: [],
};

export const CATALOG: readonly ModelEntry[] = [KLING_2_6];

export function findModel(id: string, catalog: readonly ModelEntry[] = CATALOG): ModelEntry | undefined {
  return catalog.find((m) => m.id === id);
}

/** Upload limits when no model is named (api-contract §6). */
export const DEFAULT_UPLOAD_LIMITS: readonly MediaLimit[] = [
  { kind: "image", max_bytes: 10 * MB, mime_types: ["image/jpeg", "image/png", "image/webp"] },
  { kind: "video", max_bytes: 50 * MB, mime_types: ["video/mp4", "video/quicktime", "video/webm"] },
  {
    kind: "audio",
    max_bytes: 10 * MB,
    mime_types: ["audio/mpeg", "audio/mp4", "audio/wav", "audio/x-wav", "audio/aac", "audio/ogg"],
  },
];

export const FILE_KINDS: readonly FileKind[] = ["image", "video", "audio"];

/** The largest upload any policy allows: the hard cap while the kind is not known yet. */
export const MAX_UPLOAD_BYTES = Math.max(
  ...DEFAULT_UPLOAD_LIMITS.map((l) => l.max_bytes),
  ...CATALOG.flatMap((m) => m.reference_media?.limits.map((l) => l.max_bytes) ?? []),
);

/**
 * The limit that applies to an upload of `kind`: the model's policy when a model is named
 * (undefined when the model does not accept that kind), the defaults otherwise.
 */
export function uploadLimit(kind: FileKind, model?: ModelEntry): MediaLimit | undefined {
  if (model) return model.reference_media?.limits.find((l) => l.kind === kind);
  return DEFAULT_UPLOAD_LIMITS.find((l) => l.kind === kind);
}

/** Checks image dimensions against a limit's model constraints; returns every problem found, if any. */
export function checkImageConstraints(limit: MediaLimit, width: number, height: number): string | undefined {
  const problems: string[] = [];
  const short = Math.min(width, height);
  if (limit.min_side_px !== undefined && short < limit.min_side_px) {
    problems.push(`both sides must be at least ${limit.min_side_px} px`);
  }
  const ratio = width / height;
  if (
    (limit.min_aspect_ratio !== undefined && ratio < limit.min_aspect_ratio - 1e-9) ||
    (limit.max_aspect_ratio !== undefined && ratio > limit.max_aspect_ratio + 1e-9)
  ) {
    const range = `${ratioText(limit.min_aspect_ratio ?? 0)} and ${ratioText(limit.max_aspect_ratio ?? Number.POSITIVE_INFINITY)}`;
    problems.push(`the aspect ratio (${ratio.toFixed(2)}) must be between ${range}`);
  }
  return problems.length ? `the image is ${width}x${height}; ${problems.join(", and ")}` : undefined;
}

function ratioText(ratio: number): string {
  if (!Number.isFinite(ratio)) return "any";
  const round = (n: number) => Math.round(n * 100) / 100;
  return ratio >= 1 ? `${round(ratio)}:1` : `1:${round(1 / ratio)}`;
}
