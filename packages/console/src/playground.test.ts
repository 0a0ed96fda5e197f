import type { Model } from "@framegate/sdk";
import { describe, expect, it } from "vitest";
import {
  checkDimensions,
  checkFile,
  checkPrompt,
  defaultParams,
  describeLimit,
  detectImageType,
  fitWithin,
  formatSize,
  imageLimit,
  isToggle,
  priceOf,
  promptLength,
  ratioText,
  requestParams,
  sniffImageType,
} from "./playground.js";

/** The catalog entry as GET /api/v1/models gives it (the fields the playground reads). */
const MB = 1024 * 1024;
const kling = {
  id: "kling-2-6",
  display_name: "Kling 2.6",
  base_credits: 55,
  billing_type: "FIXED",
  max_prompt_length: 1000,
  reference_media: {
    max_items: 1,
    kinds: ["image"],
    limits: [
      {
        kind: "image",
        max_bytes: 10 * MB,
        mime_types: ["image/jpeg", "image/png", "image/webp"],
        min_side_px: 300,
        min_aspect_ratio: 0.4,
        max_aspect_ratio: 2.5,
      },
    ],
  },
  params: [
    {
      key: "duration",
      type: "select",
      required: false,
      default: "5",
      options: ["5", "10"],
      min: null,
      max: null,
      step: null,
      description: "Duration",
    },
    {
      key: "sound",
      type: "select",
      required: false,
      default: "false",
      options: ["false", "true"],
      min: null,
      max: null,
      step: null,
      description: "Generate audio",
    },
    {
      key: "seed",
      type: "number",
      required: false,
      default: null,
      options: null,
      min: 0,
      max: 100,
      step: 1,
      description: "Seed",
    },
  ],
} as unknown as Model;
// biome-ignore lint/style/noNonNullAssertion: the fixture has an image limit
const limit = imageLimit(kling)!;

describe("prompt", () => {
  it("counts code points as the server does, not UTF-16 units", () => {
    expect(promptLength("abc")).toBe(3);
    expect("🎬".length).toBe(2);
    expect(promptLength("🎬🎬")).toBe(2);
    expect(promptLength("é")).toBe(1);
  });

  it("accepts the limit and refuses one more, saying by how much", () => {
    expect(checkPrompt("a".repeat(1000), 1000)).toEqual({ length: 1000, max: 1000, problem: undefined });
    expect(checkPrompt("a".repeat(1001), 1000).problem).toBe("The prompt is 1 character over the limit of 1000.");
    expect(checkPrompt("🎬".repeat(1002), 1000).problem).toBe("The prompt is 2 characters over the limit of 1000.");
    // 1000 emoji are 2000 UTF-16 units and still within the limit.
    expect(checkPrompt("🎬".repeat(1000), 1000).problem).toBeUndefined();
  });

  it("refuses an empty or blank prompt", () => {
    expect(checkPrompt("", 1000).problem).toBe("Write a prompt.");
    expect(checkPrompt(" \n\t", 1000).problem).toBe("Write a prompt.");
  });
});

describe("params and price", () => {
  it("starts from the catalog's defaults, leaving out params without one", () => {
    expect(defaultParams(kling)).toEqual({ duration: "5", sound: "false" });
  });

  it("shows false/true selects as a toggle and other selects as choices", () => {
    expect(kling.params.map(isToggle)).toEqual([false, true, false]);
  });

  it("prices a FIXED model at its base credits whatever the params, and leaves others to the server", () => {
    expect(priceOf(kling, { duration: "5" })).toBe(55);
    expect(priceOf(kling, { duration: "10", sound: "true" })).toBe(55);
    expect(priceOf({ ...kling, billing_type: "METERED" }, {})).toBeUndefined();
  });

  it("builds the create request's params with the reference the way the API expects", () => {
    expect(requestParams({ duration: "10", sound: "true", seed: "" })).toEqual({ duration: "10", sound: "true" });
    expect(
      requestParams(
        { duration: "5" },
        { url: "http://127.0.0.1/media/files/f.png", mimeType: "image/png", name: "f.png" },
      ),
    ).toEqual({
      duration: "5",
      referenceMediaItems: [
        { url: "http://127.0.0.1/media/files/f.png", kind: "image", mimeType: "image/png", name: "f.png" },
      ],
    });
  });
});

describe("reference image", () => {
  it("has no image limit for a model without reference media", () => {
    expect(imageLimit({ ...kling, reference_media: null })).toBeUndefined();
  });

  it("tells the type by the bytes", () => {
    const bytes = (...b: number[]) => Uint8Array.from(b);
    const text = (s: string) => Uint8Array.from([...s].map((c) => c.charCodeAt(0)));
    expect(sniffImageType(bytes(0xff, 0xd8, 0xff, 0xe0))).toBe("image/jpeg");
    expect(sniffImageType(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a))).toBe("image/png");
    expect(sniffImageType(text("RIFF\u0000\u0000\u0000\u0000WEBP"))).toBe("image/webp");
    expect(sniffImageType(text("GIF89a"))).toBe("image/gif");
    expect(sniffImageType(text("%PDF-1.7"))).toBeUndefined();
    expect(sniffImageType(bytes(0x89, 0x50))).toBeUndefined();
  });

  it("trusts the name's type only for types it cannot tell by the bytes", () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const bmp = Uint8Array.from([0x42, 0x4d, 0, 0]);
    expect(detectImageType(png, "image/jpeg")).toBe("image/png");
    expect(detectImageType(bmp, "image/png")).toBe("");
    expect(detectImageType(bmp, "image/avif")).toBe("image/avif");
    expect(detectImageType(bmp, "")).toBe("");
  });

  it("refuses a type or a size the catalog does not allow, before decoding", () => {
    expect(checkFile(limit, { sizeBytes: 1000, mimeType: "image/png" })).toEqual([]);
    expect(checkFile(limit, { sizeBytes: 10 * MB, mimeType: "image/webp" })).toEqual([]);
    expect(checkFile(limit, { sizeBytes: 1000, mimeType: "image/gif" })).toEqual([
      "The file is a GIF file; the model takes JPEG, PNG or WEBP images.",
    ]);
    expect(checkFile(limit, { sizeBytes: 10 * MB + 1, mimeType: "" })).toEqual([
      "The file is not an image this page recognizes; the model takes JPEG, PNG or WEBP images.",
      "The file is 10,485,761 bytes; the limit is 10,485,760 bytes.",
    ]);
    expect(checkFile(limit, { sizeBytes: 12.5 * MB, mimeType: "image/png" })).toEqual([
      "The file is 12.5 MB; the limit is 10 MB.",
    ]);
    expect(checkFile(limit, { sizeBytes: 0, mimeType: "image/png" })).toEqual(["The file is empty."]);
  });

  it("refuses a short side or an aspect ratio out of range, at the bounds' own values", () => {
    expect(checkDimensions(limit, 300, 300)).toEqual([]);
    expect(checkDimensions(limit, 750, 300)).toEqual([]); // exactly 2.5:1
    expect(checkDimensions(limit, 300, 750)).toEqual([]); // exactly 1:2.5
    expect(checkDimensions(limit, 200, 200)).toEqual(["The image is 200×200 px; both sides must be at least 300 px."]);
    expect(checkDimensions(limit, 800, 300)).toEqual(["Its aspect ratio (2.67) must be between 1:2.5 and 2.5:1."]);
    expect(checkDimensions(limit, 100, 400)).toHaveLength(2);
    expect(checkDimensions({ kind: "image", max_bytes: MB, mime_types: [] }, 1, 1000)).toEqual([]);
  });

  it("describes the catalog's rules in a sentence", () => {
    expect(describeLimit(limit)).toBe(
      "JPEG, PNG or WEBP, up to 10 MB, at least 300 px on each side, aspect ratio between 1:2.5 and 2.5:1.",
    );
    expect(ratioText(1)).toBe("1:1");
    expect(ratioText(undefined)).toBe("any");
  });

  it("writes sizes in the catalog's binary megabytes", () => {
    expect(formatSize(40)).toBe("40 B");
    expect(formatSize(2048)).toBe("2 kB");
    expect(formatSize(10 * MB)).toBe("10 MB");
  });

  it("fits a preview in a box, never enlarging it", () => {
    expect(fitWithin(1280, 720, 320)).toEqual({ width: 320, height: 180 });
    expect(fitWithin(300, 750, 320)).toEqual({ width: 128, height: 320 });
    expect(fitWithin(100, 50, 320)).toEqual({ width: 100, height: 50 });
  });
});
