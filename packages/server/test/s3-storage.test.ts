/**
 * The server on S3 storage (STORAGE_DRIVER=s3 against an in-process s3rver): uploads are
 * inspected from a local spool and land in the bucket under their final key only; results are
 * mirrored into the bucket; every URL the API returns is our own stable signed /media/ URL, which
 * redirects to a short-lived presigned bucket URL (or streams the bytes, S3_MEDIA_DELIVERY=proxy);
 * ranges work either way; retention deletes from the bucket.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectColorNear,
  expectNothingStored,
  listFiles,
  regionColor,
  storageState,
  uploadFile,
} from "./files-helpers.js";
import { hexToRgb, makeImage, makeTextFile } from "./fixtures/media.js";
import { ManualClock, startTestServer, type TestServer, waitForTask } from "./harness.js";
import { startTestS3, type TestS3 } from "./s3-helpers.js";

const KLING = "kling-2-6";
const DAY_MS = 24 * 3600 * 1000;
const NO_LIMITS = { RATE_LIMIT_UPLOAD_PER_MIN: "0", RATE_LIMIT_CREATE_PER_MIN: "0", RATE_LIMIT_READ_PER_MIN: "0" };

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

/** Spooled uploads still on this machine for the given file ids (none once accepted or refused). */
async function spooled(ids: string[]): Promise<string[]> {
  const entries = await readdir(join(tmpdir(), "framegate-uploads"), { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => ids.some((id) => e.includes(id)));
}

let s3: TestS3;
let dir: string;

beforeAll(async () => {
  s3 = await startTestS3();
  dir = mkdtempSync(join(tmpdir(), "framegate-s3-it-"));
});

afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("S3 storage, media redirected to the bucket", () => {
  let t: TestServer;
  const clock = new ManualClock();
  let key: string;
  // biome-ignore lint/suspicious/noExplicitAny: file / task JSON
  let file: any;
  // biome-ignore lint/suspicious/noExplicitAny: file / task JSON
  let task: any;
  let png: string;

  beforeAll(async () => {
    t = await startTestServer(
      s3.env({ S3_PREFIX: "redirect", FILE_RETENTION_DAYS: "1", RESULT_RETENTION_DAYS: "2", ...NO_LIMITS }),
      undefined,
      { clock },
    );
    ({ key } = await t.createAccount(1000));
    png = await makeImage(dir, { format: "png", width: 640, height: 480, color: "#2040e0" });
  });

  afterAll(async () => {
    await t?.close();
  });

  it("is ready when the bucket answers", async () => {
    const res = await t.request("/readyz");
    expect(res.status, res.text).toBe(200);
    expect(res.body.checks.storage).toBe("ok");
  });

  it("stores an accepted upload in the bucket under its final key only", async () => {
    const res = await uploadFile(t, key, png, { kind: "image", model: KLING });
    expect(res.status, res.text).toBe(201);
    file = res.body;
    const original = await readFile(png);
    expect(file).toMatchObject({ size_bytes: original.length, sha256: sha256(original), mime_type: "image/png" });
    expect(await s3.listKeys()).toEqual([`redirect/files/${file.id}.png`]);
    expect(await spooled([file.id])).toEqual([]);
    expect(await s3.pendingUploads()).toEqual([]);
    // No local copy under DATA_DIR/storage either.
    expect(await listFiles(join(t.dataDir, "storage", "files"))).toEqual([]);
  });

  it("leaves nothing in the bucket or the spool when an upload is refused", async () => {
    const before = await storageState(t);
    const keys = await s3.listKeys();
    const res = await uploadFile(t, key, await makeTextFile(dir), { kind: "image", model: KLING });
    expect(res.status, res.text).toBe(415);
    await expectNothingStored(t, before, "refused upload");
    expect(await s3.listKeys()).toEqual(keys);
    expect(await spooled(["file_"])).toEqual([]);
  });

  it("answers the file's stable signed URL with a redirect to a presigned bucket URL", async () => {
    const again = await t.request(`/api/v1/files/${file.id}`, { key });
    expect(again.body.url).toBe(file.url);
    expect(new URL(file.url).pathname).toMatch(/^\/media\/files\/file_\w+\.png$/);

    const hop = await fetch(file.url, { redirect: "manual" });
    expect(hop.status).toBe(302);
    expect(hop.headers.get("cache-control")).toContain("no-store");
    const location = hop.headers.get("location") as string;
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/redirect/files/${file.id}.png?`)).toBe(true);
    expect(new URL(location).searchParams.get("X-Amz-Expires")).toMatch(/^\d+$/);
    expect(Number(new URL(location).searchParams.get("X-Amz-Expires"))).toBeLessThanOrEqual(300);

    const followed = await fetch(file.url);
    expect(followed.status).toBe(200);
    expect(followed.headers.get("content-type")).toBe("image/png");
    expect((await bytesOf(followed)).equals(await readFile(png))).toBe(true);
  });

  it("renders a generation from the S3 reference and serves the result through the signed URL", async () => {
    const created = await t.request("/api/v1/generations", {
      key,
      json: {
        model: KLING,
        prompt: "The reference slowly comes to life",
        params: {
          aspect_ratio: "16:9",
          referenceMediaItems: [{ url: file.url, kind: "image", mimeType: "image/png" }],
        },
      },
    });
    expect(created.status, created.text).toBe(202);
    task = await waitForTask(t, key, created.body.id);
    expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
    const media = task.result.media[0];
    expect(task.result.primary_url).toBe(media.url);
    expect(new URL(media.url).pathname).toBe(`/media/results/${task.id}/video.mp4`);
    // The same URL on every read until it expires.
    expect((await t.request(`/api/v1/generations/${task.id}`, { key })).body.result.primary_url).toBe(media.url);

    const res = await fetch(media.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    const video = await bytesOf(res);
    expect(video.length).toBe(media.size_bytes);
    expect(sha256(video)).toBe(media.sha256);

    // The simulator rendered from a local copy of the S3 reference: the first frame is its colour.
    const local = join(dir, `${task.id}.mp4`);
    await writeFile(local, video);
    expectColorNear(await regionColor(dir, local), hexToRgb("#2040e0"), 25, "first frame vs reference");

    // Ranges: the client's Range header follows the redirect to the bucket.
    const ranged = await fetch(media.url, { headers: { range: "bytes=100-1099" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 100-1099/${video.length}`);
    expect((await bytesOf(ranged)).equals(video.subarray(100, 1100))).toBe(true);
    // (Suffix ranges, "bytes=-500", are left out here: s3rver reads them as "bytes=0-500".)

    // HEAD is answered by the server itself (a presigned URL is for GET only).
    const head = await fetch(media.url, { method: "HEAD", redirect: "manual" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(video.length));
    expect(head.headers.get("accept-ranges")).toBe("bytes");

    // The video and its poster frame.
    expect(await s3.listKeys()).toEqual([
      `redirect/files/${file.id}.png`,
      `redirect/results/${task.id}/video.jpg`,
      `redirect/results/${task.id}/video.mp4`,
    ]);
    expect((await s3.listKeys()).some((k) => k.includes("/tmp/"))).toBe(false);
    expect(await s3.pendingUploads()).toEqual([]);
  });

  it("still checks the signature before redirecting", async () => {
    const url = new URL(task.result.primary_url);
    const signature = url.searchParams.get("signature") as string;
    url.searchParams.set("signature", `${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`);
    const res = await fetch(url, { redirect: "manual" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("signature_invalid");
  });

  it("deletes expired files and results from the bucket", async () => {
    clock.advance(DAY_MS + 60_000);
    const first = await t.server.runMaintenance();
    expect(first.filesPurged).toBe(1);
    expect(await s3.listKeys()).toEqual([
      `redirect/results/${task.id}/video.jpg`,
      `redirect/results/${task.id}/video.mp4`,
    ]);
    clock.advance(DAY_MS);
    const second = await t.server.runMaintenance();
    expect(second.resultsPurged).toBe(1);
    expect(await s3.listKeys()).toEqual([]);
    const after = await t.request(`/api/v1/generations/${task.id}`, { key });
    expect(after.body.result.media[0].sha256).toBe(task.result.media[0].sha256);
  });
});

describe("S3 storage, media streamed through the server (S3_MEDIA_DELIVERY=proxy)", () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer(s3.env({ S3_PREFIX: "proxy/", S3_MEDIA_DELIVERY: "proxy", ...NO_LIMITS }));
  });

  afterAll(async () => {
    await t?.close();
  });

  it("serves whole files and ranges without a redirect", async () => {
    const { key } = await t.createAccount(1000);
    const created = await t.request("/api/v1/generations", {
      key,
      json: { model: KLING, prompt: "A fox runs through snow", params: { aspect_ratio: "1:1" } },
    });
    expect(created.status, created.text).toBe(202);
    const task = await waitForTask(t, key, created.body.id);
    expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
    const media = task.result.media[0];

    const res = await fetch(media.url, { redirect: "manual" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(media.size_bytes));
    const video = await bytesOf(res);
    expect(sha256(video)).toBe(media.sha256);

    const ranged = await fetch(media.url, { redirect: "manual", headers: { range: "bytes=10-" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 10-${video.length - 1}/${video.length}`);
    expect((await bytesOf(ranged)).equals(video.subarray(10))).toBe(true);

    // The server resolves ranges itself here, suffix ranges included.
    const tail = await fetch(media.url, { redirect: "manual", headers: { range: "bytes=-500" } });
    expect(tail.status).toBe(206);
    expect((await bytesOf(tail)).equals(video.subarray(video.length - 500))).toBe(true);

    const outside = await fetch(media.url, { headers: { range: `bytes=${video.length + 10}-` } });
    expect(outside.status).toBe(416);

    expect((await s3.listKeys()).filter((k) => k.startsWith("proxy/"))).toEqual([
      `proxy/results/${task.id}/video.jpg`,
      `proxy/results/${task.id}/video.mp4`,
    ]);
  });
});
