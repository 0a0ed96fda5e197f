import { DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_IMAGE_SIDE, type ImageLimits } from "./limits.js";
import { Rejection } from "./rejection.js";

/**
 * Refuses an image whose declared size is past the limits, as soon as its header has been read:
 * decoding it later (renders, format conversion) would need memory in proportion to its pixels.
 */
export function checkImageSize(format: string, width: number, height: number, limits: ImageLimits = {}): void {
  const maxSide = limits.maxImageSide ?? DEFAULT_MAX_IMAGE_SIDE;
  const maxPixels = limits.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  if (width > maxSide || height > maxSide) {
    throw new Rejection(
      "validation_failed",
      `The ${format} image is ${width}×${height} pixels; at most ${maxSide} pixels per side are accepted.`,
    );
  }
  if (width * height > maxPixels) {
    throw new Rejection(
      "validation_failed",
      `The ${format} image is ${width}×${height} = ${width * height} pixels; at most ${maxPixels} pixels are accepted.`,
    );
  }
}
