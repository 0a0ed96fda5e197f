import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { KlingTokenSource, signKlingToken } from "./jwt.js";

const AK = "ak_test_0123456789";
const SK = "sk_test_secret_abcdefghijklmnop";
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

describe("Kling JWT", () => {
  it("signs HS256 with iss = AK, exp = now + 1800, nbf = now - 5, nothing else", async () => {
    const { token, exp, nbf } = await signKlingToken(AK, SK, T0 + 999);
    expect(decodeProtectedHeader(token)).toStrictEqual({ alg: "HS256", typ: "JWT" });
    const claims = decodeJwt(token);
    expect(claims).toStrictEqual({ iss: AK, exp: T0 / 1000 + 1800, nbf: T0 / 1000 - 5 });
    expect(exp).toBe(T0 / 1000 + 1800);
    expect(nbf).toBe(T0 / 1000 - 5);
    await expect(
      jwtVerify(token, new TextEncoder().encode(SK), { algorithms: ["HS256"], currentDate: new Date(T0) }),
    ).resolves.toBeTruthy();
    await expect(jwtVerify(token, new TextEncoder().encode("wrong"), { currentDate: new Date(T0) })).rejects.toThrow();
  });

  it("caches the token and re-signs when fewer than 5 minutes remain", async () => {
    let now = T0;
    const source = new KlingTokenSource({ accessKey: AK, secretKey: SK, now: () => now });
    const first = await source.get();
    now += 1000;
    expect(await source.get()).toBe(first);
    now = T0 + (1800 - 301) * 1000; // 301 s left: still good
    expect(await source.get()).toBe(first);
    expect(source.signedCount).toBe(1);
    now = T0 + (1800 - 299) * 1000; // 299 s left: refresh
    const second = await source.get();
    expect(second).not.toBe(first);
    expect(decodeJwt(second).exp).toBe(Math.floor(now / 1000) + 1800);
    expect(source.signedCount).toBe(2);
  });

  it("fresh / invalidate sign a new token; concurrent callers share one signing", async () => {
    let now = T0;
    const source = new KlingTokenSource({ accessKey: AK, secretKey: SK, now: () => now });
    const tokens = await Promise.all([source.get(), source.get(), source.get()]);
    expect(new Set(tokens).size).toBe(1);
    expect(source.signedCount).toBe(1);
    now += 2000;
    const fresh = await source.get({ fresh: true });
    expect(fresh).not.toBe(tokens[0]);
    expect(source.signedCount).toBe(2);
    source.invalidate();
    now += 2000;
    expect(await source.get()).not.toBe(fresh);
    expect(source.signedCount).toBe(3);
  });
});
