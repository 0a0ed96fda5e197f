import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Framegate, type FramegateError, type Task } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;
let apiKey: string;
let done: Task;
let dir: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ client, key: apiKey } = await clientFor(t, 1000));
  done = await client.generations.createAndWait({ model: "kling-2-6", prompt: "A kite over dunes [sim:delay=0]" });
  expect(done.status).toBe("succeeded");
  dir = mkdtempSync(join(tmpdir(), "framegate-sdk-download-"));
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("generations.download", () => {
  it("saves the video to a path, reports progress, and checks it against the result's sha256", async () => {
    const media = done.result?.media[0];
    const progress: { received: number; total: number | undefined }[] = [];
    const path = join(dir, "nested", "video.mp4");
    const result = await client.generations.download(done, path, { onProgress: (p) => progress.push(p) });
    const bytes = readFileSync(path);
    expect(result).toEqual({ bytes: bytes.length, sha256: media?.sha256, path });
    expect(bytes.length).toBe(media?.size_bytes);
    expect(sha256(bytes)).toBe(media?.sha256);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ received: bytes.length, total: bytes.length });
    // No temporary file is left beside it.
    expect(readdirSync(join(dir, "nested"))).toEqual(["video.mp4"]);
  });

  it("takes a task id, and writes to a web WritableStream or a Node Writable", async () => {
    const chunks: Uint8Array[] = [];
    const web = new WritableStream<Uint8Array>({ write: (chunk) => void chunks.push(chunk) });
    const viaWeb = await client.generations.download(done.id, web);
    expect(sha256(Buffer.concat(chunks))).toBe(done.result?.media[0]?.sha256);
    expect(viaWeb.bytes).toBe(done.result?.media[0]?.size_bytes);

    const nodeChunks: Buffer[] = [];
    let finished = false;
    const node = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        nodeChunks.push(chunk);
        callback();
      },
      final(callback) {
        finished = true;
        callback();
      },
    });
    await client.generations.download(done, node);
    expect(finished).toBe(true);
    expect(sha256(Buffer.concat(nodeChunks))).toBe(done.result?.media[0]?.sha256);
  });

  it("downloads the poster frame with poster: true", async () => {
    const path = join(dir, "poster.jpg");
    const result = await client.generations.download(done, path, { poster: true });
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(result.bytes).toBe(bytes.length);
  });

  it("refuses bytes that do not match the result's sha256, leaving no file", async () => {
    // A fetch that flips one byte of every response body on the way.
    const tampering: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[100] = (bytes[100] ?? 0) ^ 0xff;
      return new Response(bytes, { status: response.status, headers: response.headers });
    };
    const tampered = new Framegate({ baseUrl: t.url, apiKey, fetch: tampering });
    const path = join(dir, "corrupt.mp4");
    const error = (await tampered.generations.download(done, path).catch((e) => e)) as FramegateError;
    expect(error.code).toBe("download_corrupt");
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith("corrupt"))).toEqual([]);
  });

  it("says why when there is nothing to download, and maps a bad link to an API error", async () => {
    const queued = await client.generations.create({ model: "kling-2-6", prompt: "later [sim:delay=30]" });
    const error = (await client.generations.download(queued, join(dir, "x.mp4")).catch((e) => e)) as FramegateError;
    expect(error.code).toBe("no_result");
    const media = done.result?.media[0];
    if (!done.result || !media) throw new Error("no result");
    const broken: Task = {
      ...done,
      result: { ...done.result, media: [{ ...media, url: media.url.replace(/signature=[^&]+/, "signature=AAAA") }] },
    };
    const denied = (await client.generations.download(broken, join(dir, "y.mp4")).catch((e) => e)) as FramegateError;
    expect(denied.status).toBe(403);
    expect(denied.code).toBe("signature_invalid");
  });
});
