/**
 * Kling's auth token: an HS256 JWT the caller signs with its SecretKey (kling-upstreams §1.2).
 * Claims exactly as in the official sample: iss = AccessKey, exp = now + 1800 s, nbf = now - 5 s
 * (no iat/sub/aud). Tokens are cached and re-signed once fewer than `refreshMarginSeconds`
 * remain, so one long render never sees a token expire between polls.
 */
import { SignJWT } from "jose";

export const KLING_TOKEN_TTL_SECONDS = 1800;
export const KLING_TOKEN_NBF_SKEW_SECONDS = 5;
/** Re-sign when fewer than 5 minutes remain (the token lives 30). */
export const KLING_TOKEN_REFRESH_MARGIN_SECONDS = 300;

export interface SignedKlingToken {
  token: string;
  /** Expiry, epoch seconds (the `exp` claim). */
  exp: number;
  /** Not-before, epoch seconds (the `nbf` claim). */
  nbf: number;
}

/** Signs one token for `nowMs` (epoch ms). */
export async function signKlingToken(
  accessKey: string,
  secretKey: string,
  nowMs: number,
  ttlSeconds: number = KLING_TOKEN_TTL_SECONDS,
): Promise<SignedKlingToken> {
  const nowS = Math.floor(nowMs / 1000);
  const exp = nowS + ttlSeconds;
  const nbf = nowS - KLING_TOKEN_NBF_SKEW_SECONDS;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(accessKey)
    .setExpirationTime(exp)
    .setNotBefore(nbf)
    .sign(new TextEncoder().encode(secretKey));
  return { token, exp, nbf };
}

export interface KlingTokenSourceOptions {
  accessKey: string;
  secretKey: string;
  now?: () => number;
  ttlSeconds?: number;
  refreshMarginSeconds?: number;
}

/** A cached token, shared by every request of one adapter instance. */
export class KlingTokenSource {
  private readonly accessKey: string;
  private readonly secretKey: string;
  private readonly now: () => number;
  private readonly ttlSeconds: number;
  private readonly marginSeconds: number;
  private cached: SignedKlingToken | undefined;
  private pending: Promise<SignedKlingToken> | undefined;
  /** How many tokens this source has signed (for tests and diagnostics). */
  signedCount = 0;

  constructor(opts: KlingTokenSourceOptions) {
    this.accessKey = opts.accessKey;
    this.secretKey = opts.secretKey;
    this.now = opts.now ?? Date.now;
    this.ttlSeconds = opts.ttlSeconds ?? KLING_TOKEN_TTL_SECONDS;
    this.marginSeconds = Math.min(opts.refreshMarginSeconds ?? KLING_TOKEN_REFRESH_MARGIN_SECONDS, this.ttlSeconds - 1);
  }

  /**
   * The current token, signing a new one when there is none, it is close to expiry, or `fresh`
   * is set (after a 401). Concurrent callers share one signing.
   */
  async get(opts: { fresh?: boolean } = {}): Promise<string> {
    if (opts.fresh) this.cached = undefined;
    const nowS = Math.floor(this.now() / 1000);
    if (this.cached && this.cached.exp - nowS > this.marginSeconds) return this.cached.token;
    if (!this.pending) {
      this.pending = signKlingToken(this.accessKey, this.secretKey, this.now(), this.ttlSeconds)
        .then((signed) => {
          this.cached = signed;
          this.signedCount++;
          return signed;
        })
        .finally(() => {
          this.pending = undefined;
        });
    }
    return (await this.pending).token;
  }

  /** Drops the cached token (the next `get` signs a new one). */
  invalidate(): void {
    this.cached = undefined;
  }
}
