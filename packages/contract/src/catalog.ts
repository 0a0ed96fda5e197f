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
  requires_files_api: boolean;
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
    limits: [{ kind: "image", max_bytes: 10 * MB, mime_types: ["image/jpeg", "image/png", "image/webp"] }],
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
