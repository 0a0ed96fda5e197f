/**
 * Inspection runs in the pool within a time budget (issue #11): over HTTP, a large but valid image
 * that takes longer than INSPECT_TIMEOUT to inspect is refused as too complex and leaves nothing
 * behind, the same file passes with the default budget, and an image whose scan is cut off (only
 * a decoder can tell) is refused at upload.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectApiError, expectNothingStored, storageState, uploadFile } from "./files-helpers.js";
import { craftSlowPng } from "./fixtures/crafted.js";
import { startTestServer, type TestServer } from "./harness.js";

const NO_LIMITS = { RATE_LIMIT_UPLOAD_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" };

describe("inspection budget over HTTP", () => {
  let dir: string;
  /** 196 MP (under the 210 MP default) in 600 KB: slow to decode, but valid. */
  let large: string;
  let cutJpeg: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-inspect-budget-"));
    large = join(dir, "large.png");
    await craftSlowPng(large, 14_000, 14_000);
    const whole = await sharp({
      create: {
        width: 800,
        height: 600,
        channels: 3,
        background: "#000",
        noise: { type: "gaussian", mean: 128, sigma: 40 },
      },
    })
      .jpeg({ quality: 90 })
      .toBuffer();
    cutJpeg = join(dir, "cut.jpg");
    await writeFile(cutJpeg, Buffer.concat([whole.subarray(0, whole.length >> 1), Buffer.from([0xff, 0xd9])]));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe("with INSPECT_TIMEOUT=100ms", () => {
    let t: TestServer;
    let key: string;
    beforeAll(async () => {
      t = await startTestServer({ ...NO_LIMITS, INSPECT_TIMEOUT: "100ms", INSPECT_CONCURRENCY: "1" });
      ({ key } = await t.createAccount(10));
    });
    afterAll(async () => {
      await t?.close();
    });

    it("refuses a large valid image as too complex, stores nothing, and keeps serving", async () => {
      const before = await storageState(t);
      const started = performance.now();
      const res = await uploadFile(t, key, large, { kind: "image" });
      console.log(
        `196 MP PNG with a 100 ms budget: answered ${res.status} in ${Math.round(performance.now() - started)} ms`,
      );
      expectApiError(res, 400, "validation_failed", "too complex");
      expect(res.body.error.message).toBe("The file is too complex to inspect within 0.1 s.");
      await expectNothingStored(t, before, "too complex");
      // The pool replaced or freed its thread: a small image still goes through.
      const small = join(dir, "small.png");
      await sharp({ create: { width: 64, height: 48, channels: 3, background: "#fff" } })
        .png()
        .toFile(small);
      // A fresh thread's first file can take more than 100 ms on a loaded machine (the decoder
      // starts up): what matters is that the pool answers again, so allow a few tries.
      let ok = await uploadFile(t, key, small, { kind: "image" });
      for (let attempt = 1; attempt < 5 && ok.status === 400; attempt++) {
        ok = await uploadFile(t, key, small, { kind: "image" });
      }
      expect(ok.status, ok.text).toBe(201);
    });
  });

  describe("with the default budget", () => {
    let t: TestServer;
    let key: string;
    beforeAll(async () => {
      t = await startTestServer(NO_LIMITS);
      ({ key } = await t.createAccount(10));
    });
    afterAll(async () => {
      await t?.close();
    });

    it("accepts the same large image", async () => {
      const started = performance.now();
      const res = await uploadFile(t, key, large, { kind: "image" });
      console.log(
        `196 MP PNG with the default budget: answered ${res.status} in ${Math.round(performance.now() - started)} ms`,
      );
      expect(res.status, res.text).toBe(201);
      expect(res.body).toMatchObject({ mime_type: "image/png", width: 14_000, height: 14_000 });
    });

    it("refuses a JPEG whose scan is cut off (with an EOI appended) and stores nothing", async () => {
      const before = await storageState(t);
      const res = await uploadFile(t, key, cutJpeg, { kind: "image" });
      expectApiError(res, 400, "validation_failed", "cut-off JPEG");
      expect(res.body.error.message).toBe(
        "The image declares 800×600 pixels but its image data is missing or cut off.",
      );
      await expectNothingStored(t, before, "cut-off JPEG");
    });
  });
});
