import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp, { type Sharp } from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderError } from "../provider.js";
import { convertToKlingImage, KLING_MAX_IMAGE_BYTES, KLING_MAX_IMAGE_SIDE } from "./image.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kling-image-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function webp(name: string, image: Sharp): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, await image.webp({ quality: 90 }).toBuffer());
  return path;
}

describe("convertToKlingImage", () => {
  it("keeps the size and the alpha of an ordinary WEBP (PNG out)", async () => {
    const path = await webp(
      "alpha.webp",
      sharp({ create: { width: 320, height: 400, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } } }),
    );
    const meta = await sharp(await convertToKlingImage(path)).metadata();
    expect(meta).toMatchObject({ format: "png", width: 320, height: 400, hasAlpha: true });
  });

  it("scales a very large WEBP down to fit KLING_MAX_IMAGE_SIDE, keeping its aspect ratio", async () => {
    const path = await webp(
      "large.webp",
      sharp({ create: { width: 5000, height: 3000, channels: 3, background: "#4a7" } }),
    );
    const meta = await sharp(await convertToKlingImage(path)).metadata();
    expect(meta.width).toBe(KLING_MAX_IMAGE_SIDE);
    expect(meta.height).toBe(Math.round((3000 * KLING_MAX_IMAGE_SIDE) / 5000));
  });

  it("falls back to a JPEG under 10 MB when the PNG would be larger", async () => {
    // Noise does not compress: as PNG it is about 3 bytes per pixel, ~13 MB here.
    const noise = sharp({
      create: {
        width: 2500,
        height: 1800,
        channels: 3,
        background: "#000",
        noise: { type: "gaussian", mean: 128, sigma: 30 },
      },
    });
    const path = await webp("noise.webp", noise);
    const out = await convertToKlingImage(path);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ format: "jpeg", width: 2500, height: 1800 });
    expect(out.length).toBeLessThanOrEqual(KLING_MAX_IMAGE_BYTES);
  });

  it("refuses a broken file with a non-retryable error that does not name the path", async () => {
    const path = join(dir, "broken.webp");
    await writeFile(path, Buffer.from("RIFF\x10\x00\x00\x00WEBPVP8 garbage"));
    const error = await convertToKlingImage(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: false, reason: "invalid_input" });
    expect((error as Error).message).not.toContain(dir);
  });
});
