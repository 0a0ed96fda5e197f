/**
 * Polyglot detection: markup, scripts and archive signatures hidden in an image's metadata or
 * appended after its end (the file is later served back from our own URLs).
 */
import type { Reader } from "./reader.js";
import { type Rejection, unsupported } from "./rejection.js";

export interface Marker {
  /** Lower-case bytes when `ignoreCase` (data is then lower-cased, ASCII only, before matching). */
  bytes: Buffer;
  ignoreCase: boolean;
  description: string;
}

function textMarker(text: string, description: string): Marker {
  return { bytes: Buffer.from(text.toLowerCase(), "latin1"), ignoreCase: true, description };
}

function binaryMarker(bytes: string, description: string): Marker {
  return { bytes: Buffer.from(bytes, "latin1"), ignoreCase: false, description };
}

/** Local file header, central directory header, end of central directory. */
export const ZIP_MARKERS: readonly Marker[] = [
  binaryMarker("PK\x03\x04", "a ZIP archive"),
  binaryMarker("PK\x01\x02", "a ZIP archive"),
  binaryMarker("PK\x05\x06", "a ZIP archive"),
];
/** Long enough that compressed pixel data will not contain them by chance: checked everywhere. */
export const STRONG_MARKERS: readonly Marker[] = [textMarker("<?php", "PHP code"), textMarker("<script", "a script")];
/** Checked in metadata and in data after the image's end (short ones would hit pixel data by chance). */
export const ALL_MARKERS: readonly Marker[] = [
  ...STRONG_MARKERS,
  textMarker("<html", "HTML"),
  textMarker("<!doctype html", "HTML"),
  textMarker("<svg", "SVG"),
  textMarker("%PDF", "a PDF document"),
  ...ZIP_MARKERS,
];

/**
 * Finds markers in a byte stream fed in pieces (matches may straddle pieces). One scanner per
 * region, so a match never spans two regions.
 */
export class MarkerScanner {
  private carry: Buffer = Buffer.alloc(0);
  private readonly keep: number;
  private readonly anyIgnoreCase: boolean;

  constructor(private readonly markers: readonly Marker[]) {
    this.keep = longestMarker(markers) - 1;
    this.anyIgnoreCase = markers.some((m) => m.ignoreCase);
  }

  push(data: Uint8Array): Marker | undefined {
    const raw =
      this.carry.length > 0
        ? Buffer.concat([this.carry, data])
        : Buffer.from(data.buffer, data.byteOffset, data.length);
    let lower = raw;
    if (this.anyIgnoreCase) {
      lower = Buffer.from(raw);
      for (let i = 0; i < lower.length; i++) {
        const c = lower[i] as number;
        if (c >= 0x41 && c <= 0x5a) lower[i] = c | 0x20;
      }
    }
    const found = this.markers.find((m) => (m.ignoreCase ? lower : raw).includes(m.bytes));
    this.carry = Buffer.from(raw.subarray(Math.max(0, raw.length - this.keep)));
    return found;
  }
}

function longestMarker(markers: readonly Marker[]): number {
  return markers.reduce((n, m) => Math.max(n, m.bytes.length), 0);
}

function shortestMarker(markers: readonly Marker[]): number {
  return markers.reduce((n, m) => Math.min(n, m.bytes.length), Number.POSITIVE_INFINITY);
}

export interface Region {
  start: number;
  end: number;
  /** Where this is, for messages: "a PNG tEXt chunk", "the data after the image". */
  label: string;
}

/**
 * Scans regions (in file order) for markers. The bytes come from the reader's window, so many
 * small regions cost no extra reads; a region shorter than every marker cannot hold one and is
 * skipped without a scanner.
 */
export async function scanRegions(
  reader: Reader,
  regions: readonly Region[],
  markers: readonly Marker[],
): Promise<void> {
  const shortest = shortestMarker(markers);
  for (const region of regions) {
    if (region.end - region.start < shortest) continue;
    const scanner = new MarkerScanner(markers);
    for await (const { data } of reader.blocks(region.start, region.end)) {
      const found = scanner.push(data);
      if (found) throw embedded(found, region.label);
    }
  }
}

export function scanRegion(reader: Reader, region: Region, markers: readonly Marker[]): Promise<void> {
  return scanRegions(reader, [region], markers);
}

export function embedded(found: Marker, where: string): Rejection {
  return unsupported(`The file contains ${found.description} hidden in ${where}; only plain media files are accepted.`);
}
