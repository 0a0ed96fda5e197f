/**
 * The kling-2-6 catalog entry, field by field as api-contract §4 states it, and FIXED pricing.
 */
import { describe, expect, it } from "vitest";
import { CATALOG, findModel, KLING_2_6, type ModelEntry } from "./catalog.js";
import { priceGeneration } from "./pricing.js";
import { ModelEntrySchema } from "./schemas.js";
import { validateGenerationRequest } from "./validate.js";

const MB = 1024 * 1024;

/** Every field Rivya's GET /api/v1/models returns (api-contract §4). */
const RIVYA_MODEL_FIELDS = [
  "id",
  "display_name",
  "category",
  "runtime",
  "base_credits",
  "billing_type",
  "supported_modes",
  "max_prompt_length",
  "reference_media",
  "params",
  "api_status",
  "api_input_status",
  "supported_api_inputs",
  "requires_files_api",
  "requires_upload_for_modes",
  "url_input_supported",
  "file_kinds",
  "chat_capabilities",
  "notices",
];

const PARAM_FIELDS = ["key", "type", "required", "default", "options", "min", "max", "step", "description"];

function selectParam(key: string, options: string[], defaultValue: string) {
  return {
    key,
    type: "select",
    required: false,
    default: defaultValue,
    options,
    min: null,
    max: null,
    step: null,
    description: expect.any(String),
  };
}

describe("catalog: kling-2-6", () => {
  it("is the one model in the catalog, found by id", () => {
    expect(CATALOG.map((m) => m.id)).toEqual(["kling-2-6"]);
    expect(findModel("kling-2-6")).toBe(KLING_2_6);
    expect(findModel("kling-2-5")).toBeUndefined();
    expect(findModel("KLING-2-6")).toBeUndefined();
    expect(findModel("")).toBeUndefined();
  });

  it("has exactly the Rivya model fields", () => {
    expect(Object.keys(KLING_2_6).sort()).toEqual([...RIVYA_MODEL_FIELDS].sort());
    for (const param of KLING_2_6.params) expect(Object.keys(param).sort()).toEqual([...PARAM_FIELDS].sort());
    expect(ModelEntrySchema.parse(KLING_2_6)).toEqual(KLING_2_6);
  });

  it("matches api-contract §4 item by item", () => {
    expect(KLING_2_6).toMatchObject({
      id: "kling-2-6",
      display_name: "Kling 2.6",
      category: "video",
      runtime: "async_task",
      base_credits: 55,
      billing_type: "FIXED",
      max_prompt_length: 1000,
      api_status: "available",
      api_input_status: "partial_requires_files",
      requires_files_api: false,
      chat_capabilities: null,
    });
    expect(KLING_2_6.supported_modes).toEqual(["text-to-video", "image-to-video"]);
    expect(KLING_2_6.supported_api_inputs).toEqual(["text", "file"]);
    expect(KLING_2_6.file_kinds).toEqual(["image"]);
  });

  it("has the three select params with their options and defaults, in order", () => {
    expect(KLING_2_6.params).toEqual([
      selectParam("duration", ["5", "10"], "5"),
      selectParam("sound", ["false", "true"], "false"),
      selectParam("aspect_ratio", ["1:1", "16:9", "9:16"], "1:1"),
    ]);
    for (const param of KLING_2_6.params) {
      // Select values are canonically strings, and the default is one of the options.
      expect(param.options?.every((o) => typeof o === "string")).toBe(true);
      expect(param.options).toContain(param.default);
      expect(param.description.trim().length).toBeGreaterThan(0);
    }
  });

  it("accepts at most one reference image of up to 10 MB (jpeg, png, webp)", () => {
    expect(KLING_2_6.reference_media).toEqual({
      max_items: 1,
      kinds: ["image"],
      limits: [
        {
          kind: "image",
          max_bytes: 10 * MB,
          mime_types: ["image/jpeg", "image/png", "image/webp"],
          // Added fields: what Kling's image2video accepts (at least 300 px, 1:2.5 .. 2.5:1).
          min_side_px: 300,
          min_aspect_ratio: 0.4,
          max_aspect_ratio: 2.5,
        },
      ],
    });
    expect(KLING_2_6.reference_media?.limits[0]?.max_bytes).toBe(10_485_760);
  });

  it("is consistent about which inputs need the Files API", () => {
    // partial_requires_files: text-to-video works without uploads, reference modes need them.
    expect(KLING_2_6.requires_upload_for_modes).not.toContain("text-to-video");
    for (const mode of KLING_2_6.requires_upload_for_modes) expect(KLING_2_6.supported_modes).toContain(mode);
    // Reference URLs must come from this server's Files API (api-contract §6), not the open web.
    expect(KLING_2_6.url_input_supported).toBe(false);
    expect(KLING_2_6.file_kinds).toEqual(KLING_2_6.reference_media?.kinds);
    // The catalog itself carries no notices; the server adds the simulator's (api-contract §10).
    expect(KLING_2_6.notices).toEqual([]);
  });

  it.each(CATALOG.map((m) => [m.id, m] as const))(
    "%s: requires_files_api, requires_upload_for_modes and api_input_status tell one story",
    (_id, model) => {
      const needUpload = model.supported_modes.filter((m) => model.requires_upload_for_modes.includes(m));
      expect(needUpload).toEqual(model.requires_upload_for_modes);
      const all = needUpload.length === model.supported_modes.length;
      // requires_files_api means "nothing works without an upload", not "some mode takes one".
      expect(model.requires_files_api).toBe(all);
      const status =
        needUpload.length === 0
          ? ["available_text", "available_url_input"]
          : [all ? "requires_files_api" : "partial_requires_files"];
      expect(status).toContain(model.api_input_status);
      if (needUpload.length > 0) expect(model.supported_api_inputs).toContain("file");
    },
  );

  it("drives request defaults: omitted params take the catalog defaults", () => {
    const result = validateGenerationRequest({ model: "kling-2-6", prompt: "hello" });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.value.model).toBe(KLING_2_6);
      expect(result.value.params).toEqual(Object.fromEntries(KLING_2_6.params.map((p) => [p.key, String(p.default)])));
    }
  });
});

describe("pricing", () => {
  const combos: Record<string, string>[] = [];
  for (const duration of ["5", "10"]) {
    for (const sound of ["false", "true"]) {
      for (const aspect_ratio of ["1:1", "16:9", "9:16"]) combos.push({ duration, sound, aspect_ratio });
    }
  }

  it("charges a FIXED 55 credits for every combination of params", () => {
    expect(combos).toHaveLength(12);
    for (const params of combos) expect(priceGeneration(KLING_2_6, params), JSON.stringify(params)).toBe(55);
    expect(priceGeneration(KLING_2_6, {})).toBe(55);
  });

  it("prices validated requests at 55, whatever form the params were sent in", () => {
    for (const params of [
      {},
      { duration: 10, sound: true, aspect_ratio: "16:9" },
      { duration: "10", sound: "true", aspect_ratio: "9:16" },
      { duration: 5, sound: false },
    ]) {
      const result = validateGenerationRequest({ model: "kling-2-6", prompt: "p", params });
      expect(result.ok, JSON.stringify(params)).toBe(true);
      if (result.ok) expect(priceGeneration(result.value.model, result.value.params)).toBe(55);
    }
  });

  it("follows base_credits for FIXED models and refuses billing types it cannot price", () => {
    const cheaper: ModelEntry = { ...KLING_2_6, base_credits: 7 };
    expect(priceGeneration(cheaper, { duration: "10" })).toBe(7);
    expect(() => priceGeneration({ ...KLING_2_6, billing_type: "METERED" }, {})).toThrow();
    expect(() => priceGeneration({ ...KLING_2_6, billing_type: "TOKEN_BASED" }, {})).toThrow();
  });
});
