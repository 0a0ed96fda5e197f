/** Reading `Authorization: Bearer <token>` and checking a presented secret against a configured one. */
import { createHash, timingSafeEqual } from "node:crypto";

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Whether `presented` is `expected`. Digests are compared, so timing reveals neither content nor length. */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}
