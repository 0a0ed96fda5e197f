import { randomFillSync } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * Random bytes are drawn from the CSPRNG 4 KiB at a time and handed out in order, never twice: a
 * call to randomBytes per id (every request has one) cost more than the id itself (issue 13).
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomByte(): number {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++] as number;
}

/** Uniform base62 string from crypto randomness (rejection sampling avoids modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    const byte = randomByte();
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}

export type IdPrefix = "task" | "file" | "whend" | "evt" | "whdel" | "whslot" | "acct" | "key" | "req" | "job" | "led";

/** An id's time prefix: milliseconds since 1970 in base62, 8 characters (enough past the year 8000). */
const TIME_CHARS = 8;
/** An id's random part: 14 base62 characters, 83 bits (UUIDv7 has 74). */
const RANDOM_CHARS = 14;

let prefixMs = Number.NaN;
let timePrefix = "";

/** `ms` as TIME_CHARS base62 digits, most significant first (the alphabet is in ASCII order). */
function encodeTime(ms: number): string {
  let rest = Math.max(0, Math.floor(ms));
  let out = "";
  for (let i = 0; i < TIME_CHARS; i++) {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/**
 * Prefixed, URL-safe ids such as task_0a5Xk9Qz3fQe9xv1Kp2Lm8: 22 base62 characters, the first 8
 * the time the id was made (milliseconds) and the other 14 random (83 bits, so ids stay
 * unguessable). Like UUIDv7, ids made later sort after earlier ones: a new row's primary key (and
 * every index ending in an id) lands on the last page of its index instead of a random one, so a
 * commit rewrites a few pages rather than one per row. Random ids made a create's commit write
 * about four random index pages per task; time-ordered, a create cost 151 µs of CPU instead of
 * 200 (issue 13). The time it reveals is the row's own `created_at`, which the API shows anyway.
 * `now` is for tests; ids take the real time, not an injected clock, since only their order matters.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  if (now !== prefixMs) {
    prefixMs = now;
    timePrefix = encodeTime(now);
  }
  return `${prefix}_${timePrefix}${randomBase62(RANDOM_CHARS)}`;
}
