/**
 * Signed, expiring download URLs: HMAC-SHA256 over the object path and its expiry. The expiry
 * is the end of the object's retention, so every read hands out the same URL until then.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const MEDIA_PREFIX = "/media/";

export class UrlSigner {
  constructor(
    private readonly secret: string,
    private readonly baseUrl: () => string,
  ) {}

  private mac(path: string, expires: number): string {
    return createHmac("sha256", this.secret).update(`GET\n${path}\n${expires}`).digest("base64url");
  }

  /** URL for a storage key, valid until `expiresAt` (whole seconds). */
  signMediaUrl(key: string, expiresAt: Date): string {
    const path = `${MEDIA_PREFIX}${key}`;
    const expires = Math.floor(expiresAt.getTime() / 1000);
    return `${this.baseUrl()}${path}?expires=${expires}&signature=${this.mac(path, expires)}`;
  }

  /** Checks a request's path and query; returns the problem, or undefined when valid. */
  verify(path: string, expiresParam: string | undefined, signature: string | undefined, now: Date): string | undefined {
    if (!expiresParam || !signature || !/^\d{1,12}$/.test(expiresParam)) return "missing or malformed signature";
    const expires = Number(expiresParam);
    const expected = Buffer.from(this.mac(path, expires));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid signature";
    if (expires * 1000 <= now.getTime()) return "this link has expired";
    return undefined;
  }
}
