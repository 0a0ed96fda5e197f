import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { dir } from "../../../test/fixtures/inspect-helpers.js";
import * as media from "../../../test/fixtures/media.js";
import { kindOfMimeType, normalizeMimeType, SNIFF_BYTES, sniffMimeType } from "./sniff.js";

describe("sniffMimeType and helpers", () => {
  it("returns undefined for empty or unknown input and only looks at the first SNIFF_BYTES", async () => {
    expect(await sniffMimeType(new Uint8Array(0))).toBeUndefined();
    expect(await sniffMimeType(Buffer.from("hello"))).toBeUndefined();
    const png = fs.readFileSync(await media.makeImage(dir, { format: "png", width: 8, height: 8 }));
    expect(await sniffMimeType(Buffer.concat([png, Buffer.alloc(10 * SNIFF_BYTES)]))).toBe("image/png");
  });

  it("normalizes MIME spellings to the API's names", () => {
    expect(normalizeMimeType("audio/x-wav")).toBe("audio/wav");
    expect(normalizeMimeType("audio/x-m4a")).toBe("audio/mp4");
    expect(normalizeMimeType("audio/ogg; codecs=opus")).toBe("audio/ogg");
    expect(normalizeMimeType("image/apng")).toBe("image/png");
    expect(normalizeMimeType("Image/JPEG")).toBe("image/jpeg");
    expect(kindOfMimeType("audio/x-wav")).toBe("audio");
    expect(kindOfMimeType("application/pdf")).toBeUndefined();
  });
});
