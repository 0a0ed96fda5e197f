/**
 * Standard Webhooks verification (https://www.standardwebhooks.com/) with WebCrypto only, so it
 * runs on Node >= 20, Deno, Bun, Cloudflare Workers and browsers alike.
 *
 *   signed content  = "{webhook-id}.{webhook-timestamp}.{raw body}"
 *   webhook-signature = space-separated "v1,<base64 HMAC-SHA256(secret, signed content)>" entries
 *   secret          = "whsec_<base64 key>"
 */
import { FramegateError, WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./types.js";

/** Headers as fetch (Headers), Node (IncomingHttpHeaders) or a plain object hand them over. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Largest accepted distance between `webhook-timestamp` and now, both ways (default 300 s). */
  toleranceSeconds?: number;
  /** The current time (default Date.now()), for tests and replays. */
  now?: Date | number;
}

const encoder = new TextEncoder();
const SECRET_PREFIX = "whsec_";

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function" && typeof (headers as Headers).has === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() !== name) continue;
    return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}

function base64ToBytes(value: string): Uint8Array | undefined {
  try {
    const binary = atob(value);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

/** Compares in time that depends only on the lengths (which are public: 32 bytes for SHA-256). */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

function bodyBytes(rawBody: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof rawBody === "string") return encoder.encode(rawBody);
  if (rawBody instanceof ArrayBuffer) return new Uint8Array(rawBody);
  return new Uint8Array(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
}

async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new FramegateError("webhooks.verify needs WebCrypto (globalThis.crypto.subtle).", {
      code: "webcrypto_unavailable",
    });
  }
  const cryptoKey = await subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await subtle.sign("HMAC", cryptoKey, data as Uint8Array<ArrayBuffer>));
}

/**
 * Verifies a delivery and returns its parsed event. Pass the body exactly as received (before any
 * JSON parsing), the request headers, and the endpoint's `whsec_…` signing secret (or several,
 * e.g. during a rotation). Throws WebhookVerificationError when anything is off.
 */
export async function verifyWebhook(
  rawBody: string | ArrayBuffer | ArrayBufferView,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      "missing_headers",
      "Missing webhook-id, webhook-timestamp or webhook-signature header.",
    );
  }
  if (!/^\d{1,15}$/.test(timestamp.trim())) {
    throw new WebhookVerificationError("invalid_timestamp", "webhook-timestamp is not a unix time in seconds.");
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor(Number(options.now ?? Date.now()) / 1000);
  const sentAt = Number(timestamp.trim());
  if (sentAt < nowSeconds - tolerance) {
    throw new WebhookVerificationError("timestamp_too_old", "The webhook timestamp is too old.");
  }
  if (sentAt > nowSeconds + tolerance) {
    throw new WebhookVerificationError("timestamp_too_new", "The webhook timestamp is in the future.");
  }

  const body = bodyBytes(rawBody);
  const prefix = encoder.encode(`${id}.${timestamp.trim()}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);

  const candidates: Uint8Array[] = [];
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const bytes = base64ToBytes(entry.slice(comma + 1));
    if (bytes) candidates.push(bytes);
  }

  const secrets = typeof secret === "string" ? [secret] : secret;
  let matched = false;
  for (const s of secrets) {
    const key = base64ToBytes(s.startsWith(SECRET_PREFIX) ? s.slice(SECRET_PREFIX.length) : s);
    if (!key || key.length === 0) {
      throw new WebhookVerificationError("invalid_secret", "The signing secret is not a whsec_<base64> value.");
    }
    const expected = await hmacSha256(key, signed);
    for (const candidate of candidates) if (constantTimeEqual(expected, candidate)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("invalid_signature", "No matching webhook signature.");

  try {
    return JSON.parse(typeof rawBody === "string" ? rawBody : new TextDecoder().decode(body)) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError("invalid_payload", "The webhook body is not JSON.");
  }
}
