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

/** Prefixed, random, URL-safe ids such as task_3fQe9xv1Kp2Lm8NwA7sTq. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(22)}`;
}
