/**
 * duration_token: proof that the server measured a video/audio file's duration. It binds the
 * file id, the duration and an expiry with an HMAC, so a client can't claim a different
 * duration for a file than the one the server measured.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const VERSION = "dt1";

export class DurationTokens {
  constructor(private readonly secret: string) {}

  private mac(fileId: string, duration: string, expires: number): string {
    return createHmac("sha256", this.secret).update(`${VERSION}|${fileId}|${duration}|${expires}`).digest("base64url");
  }

  issue(fileId: string, durationSeconds: number, expiresAt: Date): string {
    const duration = durationSeconds.toFixed(3);
    const expires = Math.floor(expiresAt.getTime() / 1000);
    return `${VERSION}.${expires}.${duration}.${this.mac(fileId, duration, expires)}`;
  }

  /** The duration the token proves for this file, or why it proves nothing. */
  verify(
    token: string,
    fileId: string,
    now: Date,
  ): { ok: true; durationSeconds: number } | { ok: false; reason: string } {
    // "dt1.<expires>.<seconds>.<millis>.<mac>": the duration itself contains a dot.
    const parts = token.split(".");
    if (parts.length !== 5 || parts[0] !== VERSION) return { ok: false, reason: "is malformed" };
    const [, expiresText, whole, fraction, mac] = parts as [string, string, string, string, string];
    const duration = `${whole}.${fraction}`;
    if (!/^\d{1,12}$/.test(expiresText) || !/^\d{1,6}\.\d{3}$/.test(duration))
      return { ok: false, reason: "is malformed" };
    const expires = Number(expiresText);
    const expected = Buffer.from(this.mac(fileId, duration, expires));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: "does not belong to this file" };
    }
    if (expires * 1000 <= now.getTime()) return { ok: false, reason: "has expired" };
    return { ok: true, durationSeconds: Number(duration) };
  }
}
