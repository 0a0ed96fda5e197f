import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeImage } from "../../server/test/fixtures/media.js";
import { type FileObject, type Framegate, NotFoundError } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let client: Framegate;
let dir: string;
let imagePath: string;
let image: Buffer;
let sha: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "framegate-sdk-files-"));
  [t, imagePath] = await Promise.all([
    startTestServer(),
    makeImage(dir, { format: "png", width: 320, height: 320, color: "#cc3344" }),
  ]);
  ({ client } = await clientFor(t, 1000));
  image = await readFile(imagePath);
  sha = createHash("sha256").update(image).digest("hex");
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function expectImage(file: FileObject, name: string | null) {
  expect(file).toMatchObject({
    object: "file",
    kind: "image",
    mime_type: "image/png",
    size_bytes: image.length,
    sha256: sha,
    width: 320,
    height: 320,
    name,
  });
  expect(file.id).toMatch(/^file_/);
}

describe("files", () => {
  it("uploads a Blob (and a File, whose name is used)", async () => {
    expectImage(await client.files.upload(new Blob([image]), { kind: "image", model: "kling-2-6" }), "upload");
    const file = new File([image], "product.png", { type: "image/png" });
    expectImage(await client.files.upload(file, { kind: "image" }), "product.png");
  });

  it("uploads a Buffer and a Uint8Array with a name and client_request_id", async () => {
    const fromBuffer = await client.files.upload(image, {
      kind: "image",
      name: "from-buffer.png",
      client_request_id: "up-1",
    });
    expectImage(fromBuffer, "from-buffer.png");
    expect(fromBuffer.client_request_id).toBe("up-1");
    const bytes = new Uint8Array(image.buffer, image.byteOffset, image.byteLength);
    expectImage(await client.files.upload(bytes, { kind: "image", name: "bytes.png" }), "bytes.png");
    expectImage(await client.files.upload(bytes.slice().buffer, { kind: "image", name: "ab.png" }), "ab.png");
  });

  it("uploads a web ReadableStream, a Node Readable and an async generator", async () => {
    const web = new Blob([image]).stream();
    expectImage(await client.files.upload(web, { kind: "image", name: "web.png" }), "web.png");

    // A Node fs.ReadStream is named after its file.
    const fsStream = await client.files.upload(createReadStream(imagePath), { kind: "image" });
    expectImage(fsStream, basename(imagePath));
    const chunked = Readable.from([image.subarray(0, 100), image.subarray(100, 5000), image.subarray(5000)]);
    expectImage(await client.files.upload(chunked, { kind: "image", name: "node.png" }), "node.png");

    async function* gen() {
      for (let at = 0; at < image.length; at += 777) yield image.subarray(at, at + 777);
    }
    expectImage(await client.files.upload(gen(), { kind: "image", name: "gen.png" }), "gen.png");
  });

  it("uploads from a file path, named after the file", async () => {
    const file = await client.files.upload(imagePath, { kind: "image", model: "kling-2-6" });
    expectImage(file, basename(imagePath));
  });

  it("keeps a non-ASCII file name", async () => {
    const file = await client.files.upload(image, { kind: "image", name: "produkt-ä✓.png" });
    expect(file.name).toBe("produkt-ä✓.png");
  });

  it("retrieve returns the same object, and the URL is usable as a reference", async () => {
    const uploaded = await client.files.upload(image, { kind: "image", model: "kling-2-6", name: "ref.png" });
    const again = await client.files.retrieve(uploaded.id);
    expect(again).toEqual(uploaded);
    const download = await fetch(uploaded.url);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(image)).toBe(true);

    const task = await client.generations.createAndWait({
      model: "kling-2-6",
      prompt: "The product turns [sim:delay=0]",
      params: { referenceMediaItems: [{ url: uploaded.url, kind: "image", mimeType: "image/png" }] },
    });
    expect(task.status).toBe("succeeded");
    expect(task.references).toEqual([expect.objectContaining({ file_id: uploaded.id, kind: "image" })]);
  });
});

describe("files: list and delete", () => {
  it("list walks every page newest first and filters by kind", async () => {
    const { client: own } = await clientFor(t, 0);
    const uploaded: string[] = [];
    for (let i = 0; i < 5; i++) uploaded.push((await own.files.upload(image, { kind: "image" })).id);
    const newestFirst = [...uploaded].reverse();

    const first = await own.files.list({ limit: 2 });
    expect(first.data.map((f) => f.id)).toEqual(newestFirst.slice(0, 2));
    expect(first.hasNextPage()).toBe(true);
    const walked: string[] = [];
    for await (const file of own.files.list({ limit: 2 })) walked.push(file.id);
    expect(walked).toEqual(newestFirst);
    expect((await own.files.list({ kind: "video" })).data).toEqual([]);
    expect((await own.files.list({ kind: "image", limit: 100 })).data).toHaveLength(5);
  });

  it("delete answers the deletion; the file is gone and a second delete is a NotFoundError", async () => {
    const { client: own } = await clientFor(t, 0);
    const file = await own.files.upload(image, { kind: "image" });
    await expect(own.files.delete(file.id)).resolves.toEqual({
      id: file.id,
      object: "file",
      deleted: true,
      storage: "removed",
      pending_tasks: [],
    });
    await expect(own.files.retrieve(file.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(own.files.delete(file.id)).rejects.toMatchObject({ status: 404, code: "not_found" });
    expect((await own.files.list()).data).toEqual([]);
  });

  it("delete of a file a queued task uses says it waits for that task", async () => {
    const { client: own } = await clientFor(t, 1000);
    const file = await own.files.upload(image, { kind: "image", model: "kling-2-6" });
    const task = await own.generations.create({
      model: "kling-2-6",
      prompt: "slow [sim:delay=2]",
      params: { referenceMediaItems: [{ url: file.url, kind: "image" }] },
    });
    const deletion = await own.files.delete(file.id);
    expect(deletion).toMatchObject({ deleted: true, storage: "pending_removal", pending_tasks: [task.id] });
    expect((await own.generations.waitFor(task.id)).status).toBe("succeeded");
  });
});
