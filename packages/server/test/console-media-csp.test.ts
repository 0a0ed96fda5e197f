/**
 * The console's CSP under S3 redirect delivery (console/media-origin.ts): /media URLs redirect to
 * the bucket, so the CSP's img-src and media-src name the bucket's origin, exactly as the SDK
 * presigns it, and nothing else changes; with proxy delivery or filesystem storage the CSP stays
 * 'self' only. The browser side (the video really plays from the bucket with no CSP violation) is
 * console-s3-browser.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redirectMediaOrigin } from "../src/console/media-origin.js";
import { CONSOLE_CSP, consoleCsp } from "../src/console/static-routes.js";
import type { Storage } from "../src/storage/storage.js";
import { startTestServer, waitForTask } from "./harness.js";
import { startTestS3, type TestS3 } from "./s3-helpers.js";

const directives = (csp: string | null) =>
  Object.fromEntries((csp ?? "").split(/;\s*/).map((d) => [d.split(" ")[0], d.split(" ").slice(1).join(" ")]));

describe("the media origin in the console's CSP", () => {
  const storageWith = (presignGet?: Storage["presignGet"]) => ({ presignGet }) as unknown as Storage;

  it("is none without redirect delivery or presigning", () => {
    const presign = async () => "https://bucket.example/x";
    expect(redirectMediaOrigin({ storage: storageWith(presign), mediaDelivery: "proxy" })).toBeUndefined();
    expect(redirectMediaOrigin({ storage: storageWith(presign), mediaDelivery: undefined })).toBeUndefined();
    expect(redirectMediaOrigin({ storage: storageWith(undefined), mediaDelivery: "redirect" })).toBeUndefined();
  });

  it("is the presigned URL's origin, worked out once; a failure is retried after a minute", async () => {
    let now = 0;
    let calls = 0;
    let fail = true;
    const origin = redirectMediaOrigin({
      storage: storageWith(async (key) => {
        calls++;
        if (fail) throw new Error("no credentials yet");
        return `https://media-bucket.s3.eu-west-3.amazonaws.com/prefix/${key}?X-Amz-Signature=abc`;
      }),
      mediaDelivery: "redirect",
      now: () => now,
    });
    if (!origin) throw new Error("expected a media origin function");
    expect(await origin()).toBeUndefined();
    fail = false;
    now = 59_000;
    expect(await origin()).toBeUndefined();
    expect(calls).toBe(1);
    now = 61_000;
    expect(await origin()).toBe("https://media-bucket.s3.eu-west-3.amazonaws.com");
    expect(await Promise.all([origin(), origin()])).toEqual([
      "https://media-bucket.s3.eu-west-3.amazonaws.com",
      "https://media-bucket.s3.eu-west-3.amazonaws.com",
    ]);
    expect(calls).toBe(2);
  });

  it("adds the origin to img-src and media-src only", () => {
    const base = directives(CONSOLE_CSP);
    const withBucket = directives(consoleCsp("https://b.example"));
    expect(withBucket["img-src"]).toBe("'self' https://b.example");
    expect(withBucket["media-src"]).toBe("'self' https://b.example");
    expect({ ...withBucket, "img-src": base["img-src"], "media-src": base["media-src"] }).toEqual(base);
  });
});

describe("the console's CSP on S3 storage", () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(() => s3?.close());

  it("names the bucket's origin with redirect delivery, for every console response", async () => {
    const t = await startTestServer(s3.env());
    try {
      for (const path of ["/console", "/console/generations/task_x"]) {
        const csp = directives((await t.request(path)).headers.get("content-security-policy"));
        expect(csp["media-src"], path).toBe(`'self' ${s3.endpoint}`);
        expect(csp["img-src"], path).toBe(`'self' ${s3.endpoint}`);
        expect(csp["connect-src"], path).toBe("'self'");
        expect(csp["script-src"], path).toBe("'self'");
      }
      // It is where a result's media URL really redirects to.
      const { key } = await t.createAccount(100);
      const created = await t.request("/api/v1/generations", {
        key,
        json: { model: "kling-2-6", prompt: "a harbour at night" },
      });
      expect(created.status, created.text).toBe(202);
      const task = await waitForTask(t, key, created.body.id);
      const hop = await fetch(task.result.primary_url, { redirect: "manual" });
      expect(hop.status).toBe(302);
      const csp = directives((await t.request("/console")).headers.get("content-security-policy"));
      expect(csp["media-src"]).toBe(`'self' ${new URL(hop.headers.get("location") as string).origin}`);
    } finally {
      await t.close();
    }
  });

  it("stays 'self' only with proxy delivery", async () => {
    const t = await startTestServer(s3.env({ S3_MEDIA_DELIVERY: "proxy" }));
    try {
      expect((await t.request("/console")).headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    } finally {
      await t.close();
    }
  });
});
