/** API key format, hashing and scopes (api-contract §1, §3). */
import crypto from "node:crypto";
import { API_KEY_SCOPES } from "@framegate/contract";
import { randomBase62 } from "../util/ids.js";

export const KEY_PREFIX = "rvya_sk_";
/** 43 base62 characters carry more than 256 bits. */
const SECRET_LENGTH = 43;
const KEY_PATTERN = /^rvya_sk_[0-9A-Za-z]{32,128}$/;

/**
 * Every scope a key can hold, and what a key made by the operator (admin API, CLI) gets unless
 * narrowed: that key is the account's own, so it may manage the account's other keys
 * (`keys:manage`, the console's key page). Keys made through POST /api/v1/keys get their
 * creator's scopes without `keys:manage` unless they ask for it (accounts/key-routes.ts). `chat:create`
 * and `chat:read` (api-contract §3) are left out until there is a chat API: a key should not carry
 * permissions for routes that do not exist. Keys stored with them keep working (see
 * `knownScopes`), and asking for them now is refused like any unknown scope.
 */
export const ALL_SCOPES = API_KEY_SCOPES;
export type Scope = (typeof ALL_SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (ALL_SCOPES as readonly string[]).includes(value);
}

/**
 * The scopes of a key as stored (a JSON array), keeping only those this version knows. A scope that
 * was dropped from the catalog (the `chat:*` pair) or that a newer version wrote grants nothing
 * here, but it is no reason to refuse the key or hide its other scopes.
 */
export function knownScopes(stored: string): Scope[] {
  const parsed: unknown = JSON.parse(stored);
  if (!Array.isArray(parsed)) return [];
  return parsed.filter((s): s is Scope => typeof s === "string" && isScope(s));
}

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = `${KEY_PREFIX}${randomBase62(SECRET_LENGTH)}`;
  return { key, prefix: key.slice(0, 12), hash: hashApiKey(key) };
}

/**
 * SHA-256 in hex. Every keyed request hashes its key: the one-shot `crypto.hash` (Node ≥ 20.12)
 * costs about half of a Hash object's create, update and digest; older 20.x fall back to those.
 */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "hex")
    : (text) => crypto.createHash("sha256").update(text).digest("hex");

export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}
