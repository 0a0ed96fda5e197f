/** API key format, hashing and scopes (api-contract §1, §3). */
import { createHash } from "node:crypto";
import { randomBase62 } from "../util/ids.js";

export const KEY_PREFIX = "rvya_sk_";
/** 43 base62 characters carry more than 256 bits. */
const SECRET_LENGTH = 43;
const KEY_PATTERN = /^rvya_sk_[0-9A-Za-z]{32,128}$/;

export const ALL_SCOPES = [
  "models:read",
  "generations:create",
  "generations:read",
  "files:create",
  "files:read",
  "credits:read",
  "webhooks:manage",
  "chat:create",
  "chat:read",
] as const;
export type Scope = (typeof ALL_SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (ALL_SCOPES as readonly string[]).includes(value);
}

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = `${KEY_PREFIX}${randomBase62(SECRET_LENGTH)}`;
  return { key, prefix: key.slice(0, 12), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}
