/**
 * Standard Webhooks signing checked against the reference verifier (the `standardwebhooks` npm
 * package, not our own code), the secret preview format, and the at-rest SecretBox.
 */
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { generateSigningSecret, SECRET_PREFIX, SecretBox, secretPreview, sign, signatureHeaders } from "./signing.js";

const BODY = JSON.stringify({
  id: "evt_abc",
  object: "event",
  type: "generation.succeeded",
  data: { prompt: "ünïcødé 🌊 — «quotes»" },
});
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe("generateSigningSecret", () => {
  it("is whsec_ + base64 of 32 random bytes", () => {
    const secrets = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const secret = generateSigningSecret();
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      const raw = Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
      expect(raw).toHaveLength(32);
      expect(raw.toString("base64")).toBe(secret.slice(SECRET_PREFIX.length));
      secrets.add(secret);
    }
    expect(secrets.size).toBe(50);
  });
});

describe("sign / signatureHeaders against standardwebhooks", () => {
  it("sign() produces exactly the reference signature", () => {
    const secret = generateSigningSecret();
    const ts = 1_700_000_000;
    const reference = new Webhook(secret).sign("evt_123", new Date(ts * 1000), BODY);
    expect(sign(secret, "evt_123", ts, BODY)).toBe(reference);
    expect(reference).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("headers verify with the secret given with or without the whsec_ prefix", () => {
    const secret = generateSigningSecret();
    const ts = nowSeconds();
    const headers = signatureHeaders([secret], "evt_1", ts, BODY);
    expect(headers).toEqual({
      "webhook-id": "evt_1",
      "webhook-timestamp": String(ts),
      "webhook-signature": expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
    });
    expect(new Webhook(secret).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(new Webhook(secret.slice(SECRET_PREFIX.length)).verify(BODY, headers)).toEqual(JSON.parse(BODY));
  });

  it("with two secrets (rotation overlap) each one verifies, and an unrelated one does not", () => {
    const current = generateSigningSecret();
    const previous = generateSigningSecret();
    const headers = signatureHeaders([current, previous], "evt_2", nowSeconds(), BODY);
    const parts = headers["webhook-signature"]?.split(" ") ?? [];
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => /^v1,[A-Za-z0-9+/]{43}=$/.test(p))).toBe(true);
    expect(new Webhook(current).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(new Webhook(previous).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(generateSigningSecret()).verify(BODY, headers)).toThrow(WebhookVerificationError);
  });

  it("any change to the body, id or timestamp breaks verification", () => {
    const secret = generateSigningSecret();
    const ts = nowSeconds();
    const headers = signatureHeaders([secret], "evt_3", ts, BODY);
    const wh = new Webhook(secret);
    expect(() => wh.verify(`${BODY} `, headers)).toThrow(WebhookVerificationError);
    expect(() => wh.verify(BODY.replace("succeeded", "failed"), headers)).toThrow(WebhookVerificationError);
    expect(() => wh.verify(BODY, { ...headers, "webhook-id": "evt_4" })).toThrow(WebhookVerificationError);
    expect(() => wh.verify(BODY, { ...headers, "webhook-timestamp": String(ts - 1) })).toThrow(
      WebhookVerificationError,
    );
  });

  it("signs the exact bytes: a multi-byte UTF-8 body verifies as a Buffer too", () => {
    const secret = generateSigningSecret();
    const headers = signatureHeaders([secret], "evt_5", nowSeconds(), BODY);
    expect(new Webhook(secret).verify(Buffer.from(BODY, "utf8"), headers)).toEqual(JSON.parse(BODY));
  });

  it("the timestamp is what the verifier checks for freshness", () => {
    const secret = generateSigningSecret();
    const stale = signatureHeaders([secret], "evt_6", nowSeconds() - 3600, BODY);
    expect(() => new Webhook(secret).verify(BODY, stale)).toThrow(/too old/);
  });
});

describe("secretPreview", () => {
  it("is whsec_ + the first 2 and the last 6 characters, never the whole secret", () => {
    for (let i = 0; i < 20; i++) {
      const secret = generateSigningSecret();
      const body = secret.slice(SECRET_PREFIX.length);
      const preview = secretPreview(secret);
      expect(preview).toBe(`whsec_${body.slice(0, 2)}...${body.slice(-6)}`);
      expect(preview).toMatch(/^whsec_[A-Za-z0-9+/]{2}\.\.\.[A-Za-z0-9+/=]{6}$/);
      expect(preview.length).toBeLessThan(secret.length);
      expect(preview).not.toContain(body.slice(2, -6));
    }
    // The contract's example shape.
    expect(secretPreview("whsec_12aaaaaaaaaaaaaaaaaabc123")).toBe("whsec_12...abc123");
  });
});

describe("SecretBox", () => {
  it("seal/open round-trips, with a fresh IV every time", () => {
    const box = new SecretBox("server-secret-1");
    const secret = generateSigningSecret();
    const a = box.seal(secret);
    const b = box.seal(secret);
    expect(a).not.toBe(b);
    expect(a).not.toContain(secret.slice(SECRET_PREFIX.length));
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(box.open(a)).toBe(secret);
    expect(box.open(b)).toBe(secret);
    // Another instance with the same server secret opens it (restart), including an empty and a long text.
    const again = new SecretBox("server-secret-1");
    expect(again.open(a)).toBe(secret);
    expect(again.open(box.seal(""))).toBe("");
    const long = "x".repeat(10_000);
    expect(again.open(box.seal(long))).toBe(long);
  });

  it("refuses a box sealed under another server secret", () => {
    const sealed = new SecretBox("server-secret-1").seal(generateSigningSecret());
    expect(() => new SecretBox("server-secret-2").open(sealed)).toThrow();
  });

  it("detects tampering with the ciphertext, the tag or the IV", () => {
    const box = new SecretBox("server-secret-1");
    const sealed = box.seal(generateSigningSecret());
    const [version, iv, tag, data] = sealed.split(".") as [string, string, string, string];
    const flip = (part: string, at = 0) => {
      const bytes = Buffer.from(part, "base64url");
      bytes[at] = (bytes[at] ?? 0) ^ 0x01;
      return bytes.toString("base64url");
    };
    expect(() => box.open([version, iv, tag, flip(data)].join("."))).toThrow();
    expect(() => box.open([version, iv, tag, flip(data, 20)].join("."))).toThrow();
    expect(() => box.open([version, iv, flip(tag), data].join("."))).toThrow();
    expect(() => box.open([version, flip(iv), tag, data].join("."))).toThrow();
    expect(() => box.open([version, iv, tag, data.slice(0, -4)].join("."))).toThrow();
    // Truncated tag: GCM must not accept a shorter tag silently.
    expect(() =>
      box.open([version, iv, Buffer.from(tag, "base64url").subarray(0, 4).toString("base64url"), data].join(".")),
    ).toThrow();
  });

  it("refuses malformed sealed strings", () => {
    const box = new SecretBox("server-secret-1");
    const sealed = box.seal("whsec_abc");
    expect(() => box.open("")).toThrow();
    expect(() => box.open("garbage")).toThrow();
    expect(() => box.open(sealed.replace(/^v1\./, "v2."))).toThrow();
    expect(() => box.open(sealed.split(".").slice(0, 3).join("."))).toThrow();
  });
});
