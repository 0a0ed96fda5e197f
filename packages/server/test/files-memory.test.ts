/**
 * Uploads stream to storage (api-contract §6): against a real `framegate serve` child process,
 * the resident memory does not grow with the size of what is uploaded, and a client that goes
 * away mid-upload (or sends a body that never ends properly) leaves nothing behind and does not
 * take the server down.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, pollUntil, uploadFile } from "./files-helpers.js";
import { fileSize, makeBigImage } from "./fixtures/media.js";
import { ChildServer, freePort, queryStore, sleep } from "./process-helpers.js";
import { TEST_STORAGE } from "./test-store.js";

const MB = 1024 * 1024;
const LIMIT = 10 * MB;

/** A /proc/<pid>/status field in bytes (VmRSS, VmHWM). Linux only. */
async function procStatus(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

// It watches the local storage directory's tmp/ and files/; the S3 driver's spooling is checked
// by s3-storage.test.ts.
describe.runIf(process.platform === "linux" && TEST_STORAGE === "fs")("uploads stream (child process)", () => {
  let child: ChildServer;
  let dir: string;
  let dataDir: string;
  let key: string;
  let image: string;

  const tmpDir = () => join(dataDir, "storage", "tmp");
  const filesDir = () => join(dataDir, "storage", "files");
  const rowCount = async () =>
    Number((await queryStore<{ n: number }>(dataDir, "select count(*) as n from files"))[0]?.n);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-files-mem-"));
    dataDir = join(dir, "data");
    const port = await freePort();
    child = new ChildServer(`http://127.0.0.1:${port}`, {
      DATA_DIR: dataDir,
      PORT: String(port),
      RATE_LIMIT_UPLOAD_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
      WORKER_CONCURRENCY: "0",
      // One inspection thread, whatever the machine: its working set is part of the warm-up.
      INSPECT_CONCURRENCY: "1",
    });
    await child.waitReady();
    ({ key } = await child.createAccount(10));
    // A valid PNG just under the 10 MB image limit.
    image = await makeBigImage(dir, LIMIT - 256 * 1024);
  });

  afterAll(async () => {
    await child?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it("RSS does not grow with concurrent uploads of ~10 MB each", { timeout: 180_000 }, async () => {
    const size = await fileSize(image);
    expect(size).toBeLessThanOrEqual(LIMIT);
    expect(size).toBeGreaterThan(LIMIT - MB);
    const warmUpImage = await makeBigImage(dir, MB);
    const pid = child.proc.pid as number;
    const upload = async (path: string) => {
      const res = await uploadFile(child, key, path, { kind: "image" });
      expect(res.status, res.text).toBe(201);
      expect(res.body.size_bytes).toBe(await fileSize(path));
    };

    // Warm-up until the process has its working size: the heap (JIT, V8 young generation, SQLite
    // pages) with 1 MB uploads, then the inspection thread's working set for a 10 MB file (its
    // read windows and the decoder's scanline buffers: about 10 MB once, measured). After that, a
    // server that buffered uploads would need ~10 MB more for each upload received at the same
    // time (three at once here: the inspection thread takes them one by one, but they all arrive
    // together); one that streams to disk does not.
    const start = await procStatus(pid, "VmRSS");
    for (let i = 0; i < 10; i++) await upload(warmUpImage);
    for (let i = 0; i < 2; i++) await upload(image);
    await sleep(200);
    const baseline = await procStatus(pid, "VmRSS");
    const peakBefore = await procStatus(pid, "VmHWM");
    const samples: number[] = [];
    for (let round = 0; round < 3; round++) {
      await Promise.all([upload(image), upload(image), upload(image)]);
      samples.push(await procStatus(pid, "VmRSS"));
    }
    const peakAfter = await procStatus(pid, "VmHWM");
    // Over the warm-up's peak, not the RSS sampled after it: the collector may hand pages back
    // during the pause, and the next round taking them again is not growth (a clean CI run saw
    // 9.1 MB "growth" that stayed 1 MB under the warm-up's own peak).
    const growth = Math.max(...samples) - Math.max(baseline, peakBefore);
    const peakGrowth = peakAfter - peakBefore;
    console.log(
      [
        `upload memory (child process, /proc/${pid}/status): 3 rounds of 3 concurrent uploads of ${mb(size)} (${size} bytes) after 10 warm-up uploads of 1 MB and 2 of 10 MB`,
        `  RSS at start ${mb(start)}, after warm-up ${mb(baseline)} (peak ${mb(peakBefore)})`,
        `  RSS after each round: ${samples.map(mb).join(", ")}`,
        `  RSS growth over the warm-up's peak: max ${mb(growth)}, last RSS minus warm-up RSS ${mb((samples.at(-1) as number) - baseline)}`,
        `  peak RSS (VmHWM) growth over warm-up: ${mb(peakGrowth)} (${mb(peakBefore)} -> ${mb(peakAfter)})`,
      ].join("\n"),
    );
    // Buffering three uploads at once costs >= 20 MB more than one; streaming stays within GC noise.
    // 7 MB leaves room for GC timing on a loaded machine and still catches any full copy.
    expect(growth, `RSS growth ${mb(growth)}`).toBeLessThan(7 * MB);
    expect(peakGrowth, `peak RSS growth ${mb(peakGrowth)}`).toBeLessThan(7 * MB);
  });

  /**
   * Starts a multipart upload declaring the whole file, writes `prefix` fields and `fileBytes`
   * of the file, waits until the server is writing it to storage/tmp (when bytes were sent),
   * then drops the connection.
   */
  async function abandonUpload(opts: { before: Record<string, string>; fileBytes: number }): Promise<void> {
    const png = await readFile(image);
    const boundary = "----framegate-abandon";
    let head = "";
    for (const [name, value] of Object.entries(opts.before)) {
      head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    }
    head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.png"\r\nContent-Type: image/png\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const length = Buffer.byteLength(head) + png.length + Buffer.byteLength(tail);
    const { hostname, port } = new URL(child.url);
    const req = http.request({
      host: hostname,
      port,
      method: "POST",
      path: "/api/v1/files",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": `multipart/form-data; boundary=${boundary}`,
        "content-length": length,
      },
    });
    let response = false;
    req.on("response", () => {
      response = true;
    });
    req.on("error", () => {});
    req.write(head);
    if (opts.fileBytes > 0) {
      await new Promise<void>((resolve) => req.write(png.subarray(0, opts.fileBytes), () => resolve()));
      // The upload is under way: its temporary object exists.
      expect(await pollUntil(async () => (await listFiles(tmpDir())).length > 0, 5000, 20)).toBe(true);
    } else {
      await sleep(200);
    }
    expect(response).toBe(false);
    req.destroy();
  }

  it.each<{ name: string; before: Record<string, string>; fraction: number }>([
    { name: "half of a 10 MB image, kind first", before: { kind: "image" }, fraction: 0.5 },
    { name: "most of the image, kind and model first", before: { kind: "image", model: "kling-2-6" }, fraction: 0.95 },
    { name: "half of the image, no kind yet", before: {}, fraction: 0.5 },
    { name: "only the file part's headers", before: { kind: "image" }, fraction: 0 },
  ])("a client that disconnects mid-upload ($name) leaves nothing behind", async (c) => {
    const rows = await rowCount();
    const stored = await listFiles(filesDir());
    await abandonUpload({ before: c.before, fileBytes: Math.floor((await fileSize(image)) * c.fraction) });
    const clean = await pollUntil(
      async () => (await listFiles(tmpDir())).length === 0 && (await rowCount()) === rows,
      5000,
      50,
    );
    expect(clean, `tmp: ${JSON.stringify(await listFiles(tmpDir()))}`).toBe(true);
    expect(await listFiles(filesDir())).toEqual(stored);
    expect(await rowCount()).toBe(rows);
    // The server is still up and serving.
    expect(child.alive, child.output()).toBe(true);
    expect((await child.request("/healthz")).status).toBe(200);
  });

  it("a body that ends without its closing boundary is a 400, and the server survives it", async () => {
    const rows = await rowCount();
    const png = await readFile(image);
    const body = Buffer.concat([
      Buffer.from(
        '--B0undary\r\nContent-Disposition: form-data; name="kind"\r\n\r\nimage\r\n' +
          '--B0undary\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n',
      ),
      png.subarray(0, 1000),
    ]);
    for (let i = 0; i < 3; i++) {
      const res = await child.request("/api/v1/files", {
        method: "POST",
        key,
        headers: { "content-type": "multipart/form-data; boundary=B0undary" },
        body,
      });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
    }
    await sleep(200);
    expect(child.alive, child.output()).toBe(true);
    expect((await child.request("/healthz")).status).toBe(200);
    expect(await listFiles(tmpDir())).toEqual([]);
    expect(await rowCount()).toBe(rows);
  });
});
