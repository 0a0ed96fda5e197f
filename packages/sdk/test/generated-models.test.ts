import { readFileSync } from "node:fs";
import { CATALOG } from "@framegate/contract";
import { describe, expect, it } from "vitest";
import { GENERATED_PATH, renderModelTypes, typeName } from "../scripts/generate-models.js";
import { MODEL_IDS } from "../src/index.js";

describe("generated model types", () => {
  it("the committed src/generated/models.ts matches the catalog (run `npm run generate -w @framegate/sdk`)", () => {
    expect(readFileSync(GENERATED_PATH, "utf8")).toBe(renderModelTypes(CATALOG));
  });

  it("lists every catalog model", () => {
    expect([...MODEL_IDS]).toEqual(CATALOG.map((m) => m.id));
  });

  it("renders select options with their number and boolean forms, and reference tuples", () => {
    const text = renderModelTypes([
      {
        ...(CATALOG[0] as (typeof CATALOG)[number]),
        id: "demo-1",
        display_name: "Demo",
        params: [
          {
            key: "steps",
            type: "number",
            required: true,
            default: null,
            options: null,
            min: 1,
            max: 50,
            step: 1,
            description: "Steps",
          },
          {
            key: "mode",
            type: "select",
            required: false,
            default: "1.5",
            options: ["1.5", "01", "fast"],
            min: null,
            max: null,
            step: null,
            description: "Mode",
          },
        ],
        reference_media: { max_items: 2, kinds: ["image", "video"], limits: [] },
      },
    ]);
    expect(text).toContain("export interface Demo1Params {");
    expect(text).toContain("  steps: number;");
    expect(text).toContain('  mode?: "1.5" | "01" | "fast" | 1.5;');
    expect(text).toContain(
      '  referenceMediaItems?: readonly [] | readonly [ReferenceMediaItem<"image" | "video">] | readonly [ReferenceMediaItem<"image" | "video">, ReferenceMediaItem<"image" | "video">];',
    );
    expect(typeName("kling-2-6")).toBe("Kling26");
    expect(typeName("3d-model")).toBe("Model3dModel");
  });
});
