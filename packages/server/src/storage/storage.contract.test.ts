/**
 * The Storage contract, run against every driver: local directory and S3 (an in-process s3rver).
 * Whatever the driver, callers see the same bytes, hashes, ranges, atomic writes and sweeping.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { CreateMultipartUploadCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startTestS3, type TestS3 } from "../../test/s3-helpers.js";
import { FsStorage } from "./fs.js";
import { MIN_PART_BYTES, S3Storage } from "./s3.js";
import type { Storage } from "./storage.js";

interface Driver {
  storage: Storage;
  /** Leaves what a process that died mid-write would leave behind. */
  leavePartial(key: string): Promise<void>;
  partials(): Promise<number>;
  close(): Promise<void>;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `data` in chunks of `chunkSize`, as a network stream would deliver it. */
function chunked(data: Buffer, chunkSize = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) this.push(null);
      else {
        this.push(data.subarray(offset, offset + chunkSize));
        offset += chunkSize;
      }
    },
  });
}

/** Sends `bytes` bytes, then fails (a client that disconnects mid-upload). */
function failingAfter(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.destroy(new Error("connection reset"));
        return;
      }
      const chunk = randomBytes(Math.min(256 * 1024, bytes - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

async function fsDriver(): Promise<Driver> {
  const root = mkdtempSync(join(tmpdir(), "framegate-storage-"));
  return {
    storage: new FsStorage(root),
    async leavePartial(key) {
      const path = join(root, `${key}.x1y2z3.part`);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, "half of it");
    },
    async partials() {
      const entries = await readdir(root, { recursive: true });
      return entries.filter((e) => e.endsWith(".part")).length;
    },
    async close() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

let s3: TestS3 | undefined;

async function s3Driver(): Promise<Driver> {
  s3 ??= await startTestS3();
  const prefix = `contract-${randomBytes(4).toString("hex")}/`;
  const storage = new S3Storage({
    bucket: s3.bucket,
    prefix,
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: S3_SECRET_ACCESS_KEY,
    presignExpiresMaxSeconds: 3600,
  });
  const server = s3;
  return {
    storage,
    async leavePartial(key) {
      const Key = `${prefix}${key}`;
      const { UploadId } = await storage.client.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key }));
      await storage.client.send(
        new UploadPartCommand({ Bucket: server.bucket, Key, UploadId, PartNumber: 1, Body: Buffer.from("half") }),
      );
    },
    async partials() {
      return (await server.pendingUploads()).filter((u) => u.key.startsWith(prefix)).length;
    },
    async close() {
      storage.close();
    },
  };
}

const DRIVERS: [string, () => Promise<Driver>][] = [
  ["fs", fsDriver],
  ["s3", s3Driver],
];

afterAll(async () => {
  await s3?.close();
});

describe.each(DRIVERS)("Storage contract: %s", (name, makeDriver) => {
  let driver: Driver;
  let storage: Storage;

  beforeAll(async () => {
    driver = await makeDriver();
    storage = driver.storage;
  });

  afterAll(async () => {
    await driver.close();
  });

  it("stores a stream and reports its size and sha256", async () => {
    const data = randomBytes(300_000);
    const stored = await storage.putStream("results/t1/video.mp4", chunked(data));
    expect(stored).toEqual({ key: "results/t1/video.mp4", size: data.length, sha256: sha256(data) });
    expect(await readAll(storage.read("results/t1/video.mp4"))).toEqual(data);
    const stat = await storage.stat("results/t1/video.mp4");
    expect(stat?.size).toBe(data.length);
    expect(Math.abs((stat?.modifiedAt.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
  });

  it("stores a local file", async () => {
    const data = randomBytes(70_000);
    const dir = mkdtempSync(join(tmpdir(), "framegate-src-"));
    try {
      const source = join(dir, "image.png");
      writeFileSync(source, data);
      expect(await storage.putFile("files/file_a.png", source)).toEqual({
        key: "files/file_a.png",
        size: data.length,
        sha256: sha256(data),
      });
      expect(await readAll(storage.read("files/file_a.png"))).toEqual(data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stores an empty object", async () => {
    expect(await storage.putStream("files/empty.bin", Readable.from([]))).toEqual({
      key: "files/empty.bin",
      size: 0,
      sha256: sha256(Buffer.alloc(0)),
    });
    expect((await storage.stat("files/empty.bin"))?.size).toBe(0);
  });

  it("streams objects larger than one multipart part, with ranges across part boundaries", async () => {
    const data = randomBytes(2 * MIN_PART_BYTES + 12_345);
    const stored = await storage.putStream("results/big/video.mp4", chunked(data, 100_000));
    expect(stored.size).toBe(data.length);
    expect(stored.sha256).toBe(sha256(data));
    expect((await storage.stat("results/big/video.mp4"))?.size).toBe(data.length);
    expect(sha256(await readAll(storage.read("results/big/video.mp4")))).toBe(sha256(data));
    const boundary = { start: MIN_PART_BYTES - 10, end: MIN_PART_BYTES + 9 };
    expect(await readAll(storage.read("results/big/video.mp4", boundary))).toEqual(
      data.subarray(boundary.start, boundary.end + 1),
    );
    expect(await driver.partials()).toBe(0);
  });

  it("reads inclusive byte ranges", async () => {
    const data = Buffer.from("0123456789abcdefghij");
    await storage.putStream("files/range.bin", chunked(data, 3));
    const read = async (start: number, end: number) =>
      (await readAll(storage.read("files/range.bin", { start, end }))).toString();
    // s3rver answers "bytes=0-0" with the whole object (AWS, MinIO and R2 do not).
    if (name === "fs") expect(await read(0, 0)).toBe("0");
    expect(await read(0, 1)).toBe("01");
    expect(await read(5, 9)).toBe("56789");
    expect(await read(19, 19)).toBe("j");
    expect(await read(10, 19)).toBe("abcdefghij");
  });

  it("reports missing objects: stat is undefined, read fails", async () => {
    expect(await storage.stat("files/missing.png")).toBeUndefined();
    await expect(readAll(storage.read("files/missing.png"))).rejects.toThrow();
  });

  it("replaces an object atomically", async () => {
    await storage.putStream("files/replace.bin", chunked(Buffer.from("first version")));
    await storage.putStream("files/replace.bin", chunked(Buffer.from("second")));
    expect((await readAll(storage.read("files/replace.bin"))).toString()).toBe("second");
  });

  it("leaves nothing behind when the source fails, and keeps an existing object intact", async () => {
    await expect(storage.putStream("tmp/failed.upload", failingAfter(MIN_PART_BYTES + 300_000))).rejects.toThrow(
      /connection reset/,
    );
    expect(await storage.stat("tmp/failed.upload")).toBeUndefined();
    await expect(storage.putStream("tmp/small-failed.upload", failingAfter(1000))).rejects.toThrow(/connection reset/);
    expect(await storage.stat("tmp/small-failed.upload")).toBeUndefined();

    await storage.putStream("files/keep.bin", chunked(Buffer.from("keep me")));
    await expect(storage.putStream("files/keep.bin", failingAfter(MIN_PART_BYTES + 1))).rejects.toThrow();
    expect((await readAll(storage.read("files/keep.bin"))).toString()).toBe("keep me");
    expect(await driver.partials()).toBe(0);
  });

  it("deletes, and deleting twice is fine", async () => {
    await storage.putStream("files/gone.bin", chunked(Buffer.from("bye")));
    await storage.delete("files/gone.bin");
    expect(await storage.stat("files/gone.bin")).toBeUndefined();
    await storage.delete("files/gone.bin");
  });

  it("moves an object to a new key", async () => {
    const data = randomBytes(10_000);
    await storage.putStream("tmp/file_m.upload", chunked(data));
    await storage.move("tmp/file_m.upload", "files/file_m.webp");
    expect(await storage.stat("tmp/file_m.upload")).toBeUndefined();
    expect(await readAll(storage.read("files/file_m.webp"))).toEqual(data);
    await expect(storage.move("tmp/not-there.upload", "files/x.png")).rejects.toThrow();
  });

  it("sweeps partial writes older than the given age, and only those", async () => {
    await driver.leavePartial("results/crashed/video.mp4");
    expect(await driver.partials()).toBe(1);
    expect(await storage.sweepPartials(3600_000)).toBe(0);
    expect(await driver.partials()).toBe(1);
    await sleep(50);
    expect(await storage.sweepPartials(10)).toBe(1);
    expect(await driver.partials()).toBe(0);
  });

  it("lists every object with its size and time, keys as they were stored", async () => {
    const dir = `list-${randomBytes(4).toString("hex")}`;
    const keys = [`${dir}/a.bin`, `${dir}/nested/deeper/b.bin`, `${dir}/nested/c.bin`];
    for (const [i, key] of keys.entries()) await driver.storage.putStream(key, chunked(Buffer.alloc(i + 1, 7)));
    const listed = [];
    for await (const object of driver.storage.listObjects()) if (object.key.startsWith(`${dir}/`)) listed.push(object);
    expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
    for (const object of listed) {
      expect(object.size).toBe(keys.indexOf(object.key) + 1);
      expect(object.modifiedAt.getTime()).toBeGreaterThan(Date.now() - 3_600_000);
    }
  });

  it("refuses unsafe keys", async () => {
    for (const key of ["../escape", "/abs/path", "a//b", "files/../../x", ""]) {
      await expect(storage.putStream(key, Readable.from([Buffer.from("x")])), key).rejects.toThrow(/unsafe/);
    }
  });

  it("is ready", async () => {
    await storage.checkReady();
  });

  if (name === "fs") {
    it("has local paths with the bytes", async () => {
      await storage.putStream("files/local.bin", chunked(Buffer.from("on disk")));
      const path = storage.localPath("files/local.bin");
      expect(path).toBeDefined();
      expect(await readFile(path as string, "utf8")).toBe("on disk");
      expect(storage.presignGet).toBeUndefined();
    });

    it("links files into a new directory and beside an existing one; a missing source stores nothing", async () => {
      const dir = mkdtempSync(join(tmpdir(), "framegate-link-"));
      try {
        const [video, poster] = [join(dir, "video.mp4"), join(dir, "poster.jpg")];
        writeFileSync(video, "video bytes");
        writeFileSync(poster, "poster bytes");
        const link = storage.linkFile?.bind(storage);
        if (!link) throw new Error("the fs driver links files");
        const stored = await link("results/linked/video.mp4", video);
        expect(stored).toMatchObject({ size: 11, sha256: createHash("sha256").update("video bytes").digest("hex") });
        await link("results/linked/video.jpg", poster, { size: 12, sha256: "given" });
        expect(await readFile(storage.localPath("results/linked/video.mp4") as string, "utf8")).toBe("video bytes");
        expect(await readFile(storage.localPath("results/linked/video.jpg") as string, "utf8")).toBe("poster bytes");
        // Linking again (a job run twice) replaces the object whole.
        writeFileSync(join(dir, "again.mp4"), "new video");
        await link("results/linked/video.mp4", join(dir, "again.mp4"));
        expect(await readFile(storage.localPath("results/linked/video.mp4") as string, "utf8")).toBe("new video");
        await expect(link("results/other/video.mp4", join(dir, "missing.mp4"))).rejects.toMatchObject({
          code: "ENOENT",
        });
        expect(await storage.stat("results/other/video.mp4")).toBeUndefined();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  if (name === "s3") {
    it("has no local paths, and presigns short-lived GET URLs with the right type and ranges", async () => {
      const data = randomBytes(50_000);
      await storage.putStream("results/p/video.mp4", chunked(data));
      expect(storage.localPath("results/p/video.mp4")).toBeUndefined();
      const url = await storage.presignGet?.("results/p/video.mp4", 60);
      expect(url).toMatch(/X-Amz-Expires=60(&|$)/);
      const whole = await fetch(url as string);
      expect(whole.status).toBe(200);
      expect(whole.headers.get("content-type")).toBe("video/mp4");
      expect(Buffer.from(await whole.arrayBuffer())).toEqual(data);
      const part = await fetch(url as string, { headers: { range: "bytes=100-199" } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer())).toEqual(data.subarray(100, 200));
      expect(await storage.presignGet?.("results/p/video.mp4", 10 * 24 * 3600)).toMatch(/X-Amz-Expires=3600(&|$)/);
    });

    it("keeps every object under its prefix", async () => {
      const keys = await (s3 as TestS3).listKeys();
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith("contract-"))).toBe(true);
    });

    it("is not ready when the bucket does not exist", async () => {
      const other = new S3Storage({
        bucket: "no-such-bucket",
        prefix: "",
        region: "us-east-1",
        endpoint: (s3 as TestS3).endpoint,
        forcePathStyle: true,
        accessKeyId: S3_ACCESS_KEY_ID,
        secretAccessKey: S3_SECRET_ACCESS_KEY,
        presignExpiresMaxSeconds: 60,
      });
      await expect(other.checkReady()).rejects.toThrow();
      other.close();
    });
  }
});
