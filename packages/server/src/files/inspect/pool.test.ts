import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId as mainThreadId } from "node:worker_threads";
import ffmpegInstaller from "@ffmpeg-installer/ffmpeg";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InspectionPool, InspectionPoolBusy, type InspectionPoolOptions } from "./pool.js";

const FAKE_WORKER = new URL("../../../test/fixtures/inspect-pool-worker.ts", import.meta.url);
const LIMITS = { maxImageSide: 20_000, maxImagePixels: 210_000_000 };
const IMAGE = {
  kind: "image" as const,
  allowedMimeTypes: ["image/png", "image/jpeg"],
  ffmpegPath: ffmpegInstaller.path,
};

let dir: string;
const pools: InspectionPool[] = [];

function pool(opts: Partial<InspectionPoolOptions> = {}): InspectionPool {
  const created = new InspectionPool({ concurrency: 1, timeoutMs: 10_000, limits: LIMITS, ...opts });
  pools.push(created);
  return created;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "inspect-pool-"));
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("InspectionPool with the real worker", () => {
  it("inspects and decodes an image in another thread", async () => {
    const path = join(dir, "ok.png");
    await sharp({ create: { width: 320, height: 200, channels: 3, background: "#3366aa" } })
      .png()
      .toFile(path);
    const result = await pool().inspect(path, IMAGE);
    expect(result.inspection).toEqual({
      ok: true,
      mimeType: "image/png",
      width: 320,
      height: 200,
      durationSeconds: null,
    });
    expect(result.threadId).toBeGreaterThan(0);
    expect(result.threadId).not.toBe(mainThreadId);
  });

  it("refuses, in the thread, a JPEG whose scan is cut off (the decoder's check)", async () => {
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
    // Half the scan, then a proper EOI: structurally a complete JPEG.
    const path = join(dir, "cut.jpg");
    await writeFile(path, Buffer.concat([whole.subarray(0, whole.length >> 1), Buffer.from([0xff, 0xd9])]));
    const result = await pool().inspect(path, IMAGE);
    expect(result.inspection).toEqual({
      ok: false,
      code: "validation_failed",
      message: "The image declares 800×600 pixels but its image data is missing or cut off.",
    });
  });
});

describe("InspectionPool mechanics", () => {
  it("refuses a file past its budget as too complex, and keeps working afterwards", async () => {
    const p = pool({ workerUrl: FAKE_WORKER, timeoutMs: 300 });
    // CPU-bound: the thread never hears "abort" and is terminated.
    expect((await p.inspect("spin:60000", IMAGE)).inspection).toEqual({
      ok: false,
      code: "validation_failed",
      message: "The file is too complex to inspect within 0.3 s.",
    });
    // Polite: stops when asked.
    expect((await p.inspect("sleep:60000", IMAGE)).inspection).toMatchObject({ ok: false, code: "validation_failed" });
    const after = await p.inspect("ok", IMAGE);
    expect(after.inspection).toMatchObject({ ok: true });
  });

  it("does not count the time a file waits in the queue against its budget", async () => {
    const p = pool({ workerUrl: FAKE_WORKER, timeoutMs: 1500 });
    // Each task takes ~60% of the budget; the second waits for the first, so measured from
    // submission it would exceed the budget.
    const [first, second] = await Promise.all([p.inspect("sleep:900", IMAGE), p.inspect("sleep:900", IMAGE)]);
    expect(first.inspection).toMatchObject({ ok: true });
    expect(second.inspection).toMatchObject({ ok: true });
  });

  it("turns files away with InspectionPoolBusy when the queue is full", async () => {
    const p = pool({ workerUrl: FAKE_WORKER, maxQueue: 1 });
    const running = [p.inspect("sleep:1500", IMAGE), p.inspect("sleep:10", IMAGE)];
    // Let the first task reach the thread so the second is the one queued.
    await new Promise((r) => setTimeout(r, 300));
    const error = await p.inspect("ok", IMAGE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InspectionPoolBusy);
    expect((error as InspectionPoolBusy).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    for (const result of await Promise.all(running)) expect(result.inspection).toMatchObject({ ok: true });
  });

  it("refuses clearly when the thread runs out of memory, then keeps working", async () => {
    const p = pool({ workerUrl: FAKE_WORKER, timeoutMs: 60_000 });
    expect((await p.inspect("allocate", IMAGE)).inspection).toEqual({
      ok: false,
      code: "validation_failed",
      message: "The file needs more memory to inspect than allowed.",
    });
    expect((await p.inspect("ok", IMAGE)).inspection).toMatchObject({ ok: true });
  });

  it("refuses clearly when the thread dies, then keeps working", async () => {
    const p = pool({ workerUrl: FAKE_WORKER });
    expect((await p.inspect("exit", IMAGE)).inspection).toEqual({
      ok: false,
      code: "validation_failed",
      message: "The file could not be inspected.",
    });
    expect((await p.inspect("ok", IMAGE)).inspection).toMatchObject({ ok: true });
  });

  it("passes server-side errors through (they are not the client's fault)", async () => {
    const p = pool({ workerUrl: FAKE_WORKER });
    await expect(p.inspect("throw", IMAGE)).rejects.toThrow("disk on fire");
  });
});
