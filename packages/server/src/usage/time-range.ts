/**
 * Instants and UTC bucket ranges for the usage history. Stored times are ISO-8601 UTC text with
 * milliseconds (store/schema.ts), so every bound here is normalised to that exact form: compared
 * as text, `2026-12-01T00:00:00.000Z` then orders correctly against the stored values on both
 * SQLite and PostgreSQL, and a bucket's key is a prefix of the stored text.
 */
import { z } from "zod";
import { ApiError } from "../errors.js";

export type Granularity = "day" | "hour";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export const BUCKET_MS: Record<Granularity, number> = { day: DAY_MS, hour: HOUR_MS };

/**
 * The most buckets one request may ask for: a month of days, a week of hours. The work is one
 * range scan of the account's rows in the range, so the cap bounds what one request can read.
 */
export const MAX_BUCKETS: Record<Granularity, number> = { day: 31, hour: 168 };

/** Without start and end: the last 30 days (today included), or the last 24 hours. */
export const DEFAULT_BUCKETS: Record<Granularity, number> = { day: 30, hour: 24 };

/** Length of a bucket's key, a prefix of the stored ISO text: `2026-12-06` or `2026-12-06T22`. */
export const BUCKET_KEY_LENGTH: Record<Granularity, number> = { day: 10, hour: 13 };

const instantSchema = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

export function invalidQuery(path: string, issue: string): ApiError {
  return new ApiError("validation_failed", `Invalid query: ${path} ${issue}.`, { details: [{ path, issue }] });
}

/**
 * A query value naming an instant: an ISO-8601 date-time with `Z` or an offset, or a date
 * (midnight UTC). Returns it in the stored form; anything else is a 400 naming the parameter.
 */
export function parseInstant(name: string, value: string): string {
  const issue = "must be an ISO 8601 date-time with a time zone (2026-12-01T00:00:00Z) or a date (2026-12-01)";
  if (!instantSchema.safeParse(value).success) throw invalidQuery(name, issue);
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  // The schema accepts a well-formed 2026-02-30; Date rolls it over, so it is compared back.
  if (Number.isNaN(date.getTime())) throw invalidQuery(name, issue);
  const iso = date.toISOString();
  if (/^\d{4}-\d{2}-\d{2}$/.test(value) && iso.slice(0, 10) !== value) throw invalidQuery(name, "is not a real date");
  return iso;
}

export interface BucketRange {
  granularity: Granularity;
  /** First bucket's start, inclusive (ISO). */
  start: string;
  /** Last bucket's end, exclusive (ISO). */
  end: string;
  /** Start of every bucket, oldest first. */
  buckets: string[];
}

/**
 * The bucket range of a usage query: `start` is moved back and `end` forward to bucket
 * boundaries (UTC), so every bucket is whole; the defaults end with the bucket holding `now`.
 */
export function resolveBucketRange(
  input: { granularity?: string | undefined; start?: string | undefined; end?: string | undefined },
  now: Date,
): BucketRange {
  const granularity = input.granularity ?? "day";
  if (granularity !== "day" && granularity !== "hour") throw invalidQuery("granularity", "must be day or hour");
  const size = BUCKET_MS[granularity];
  const floor = (ms: number) => Math.floor(ms / size) * size;
  const ceil = (ms: number) => Math.ceil(ms / size) * size;

  const startGiven = input.start !== undefined ? Date.parse(parseInstant("start", input.start)) : undefined;
  const endGiven = input.end !== undefined ? Date.parse(parseInstant("end", input.end)) : undefined;
  const defaultSpan = DEFAULT_BUCKETS[granularity] * size;
  // One bound alone: the default span from it. Neither: the default span up to the current bucket.
  let start: number;
  let endMs: number;
  if (startGiven !== undefined) {
    start = floor(startGiven);
    endMs = endGiven !== undefined ? ceil(endGiven) : start + defaultSpan;
  } else {
    endMs = endGiven !== undefined ? ceil(endGiven) : floor(now.getTime()) + size;
    start = endMs - defaultSpan;
  }

  if (endMs <= start) throw invalidQuery("end", "must be after start");
  const count = (endMs - start) / size;
  if (count > MAX_BUCKETS[granularity]) {
    const span = granularity === "day" ? `${MAX_BUCKETS.day} days` : `${MAX_BUCKETS.hour} hours (7 days)`;
    throw invalidQuery("end", `is too far from start: at most ${span} per request with granularity=${granularity}`);
  }
  const buckets: string[] = [];
  for (let ms = start; ms < endMs; ms += size) buckets.push(new Date(ms).toISOString());
  return { granularity, start: new Date(start).toISOString(), end: new Date(endMs).toISOString(), buckets };
}

/** The bucket start (ISO) of a bucket key read back from SQL (`2026-12-06` or `2026-12-06T22`). */
export function bucketStartOfKey(key: string, granularity: Granularity): string {
  return granularity === "day" ? `${key}T00:00:00.000Z` : `${key}:00:00.000Z`;
}
