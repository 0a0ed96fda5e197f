/**
 * Helpers for the Files API tests: multipart uploads with FormData (fields in a chosen order
 * around the file part), and looks at what an upload left behind (rows in `files`, objects under
 * storage/files and storage/tmp).
 */
import { openAsBlob } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { expect } from "vitest";
import type { S3Config } from "../src/config.js";
import { runFfmpeg, uniquePath } from "./fixtures/media.js";
import { request, type TestResponse, type TestServer } from "./harness.js";

export interface UploadPart {
  /** A file on disk (sent as a Blob backed by the file) or bytes. */
  path?: string;
  bytes?: Uint8Array;
  filename?: string;
  /** The part's declared Content-Type (the server must ignore it). */
  type?: string;
  /** Form field name; "file" unless testing a wrong one. */
  field?: string;
}

export interface UploadSpec {
  /** Fields sent before the file part, in order. */
  before?: Record<string, string>;
  /** Zero, one or several file parts. */
  files?: UploadPart[];
  /** Fields sent after the file part(s), in order. */
  after?: Record<string, string>;
}

async function partBlob(part: UploadPart): Promise<Blob> {
  const type = part.type ?? "application/octet-stream";
  if (part.path) return openAsBlob(part.path, { type });
  return new Blob([part.bytes ?? new Uint8Array()], { type });
}

/** Builds the multipart form with the fields and files in exactly the given order. */
export async function buildForm(spec: UploadSpec): Promise<FormData> {
  const form = new FormData();
  for (const [name, value] of Object.entries(spec.before ?? {})) form.append(name, value);
  for (const part of spec.files ?? []) {
    const filename = part.filename ?? (part.path ? (part.path.split("/").pop() as string) : "upload.bin");
    form.append(part.field ?? "file", await partBlob(part), filename);
  }
  for (const [name, value] of Object.entries(spec.after ?? {})) form.append(name, value);
  return form;
}

/** POST /api/v1/files with a multipart form. */
export async function uploadForm(baseUrl: string, key: string | undefined, spec: UploadSpec): Promise<TestResponse> {
  return request(baseUrl, "/api/v1/files", { method: "POST", key, body: await buildForm(spec) });
}

/** The common case: one file, kind (and model) sent before it. */
export function uploadFile(
  t: { url: string },
  key: string,
  path: string,
  fields: Record<string, string>,
  opts: { filename?: string; type?: string } = {},
): Promise<TestResponse> {
  return uploadForm(t.url, key, { before: fields, files: [{ path, ...opts }] });
}

/** Relative paths of every file under `dir` (recursive); [] when it does not exist. */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

export interface StorageState {
  rows: number;
  stored: string[];
  tmp: string[];
}

/** Rows in `files`, objects under storage/files, leftovers under storage/tmp. */
export async function storageState(t: TestServer): Promise<StorageState> {
  const row = await t.server.store.db
    .selectFrom("files")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  const { storage } = t.server.config;
  if (storage.driver === "s3") {
    // Stored: the objects under files/; left behind: multipart uploads never completed.
    const bucket = await bucketState(storage);
    return { rows: Number(row.n), stored: bucket.files, tmp: bucket.pendingUploads };
  }
  return {
    rows: Number(row.n),
    stored: await listFiles(join(t.dataDir, "storage", "files")),
    tmp: await listFiles(join(t.dataDir, "storage", "tmp")),
  };
}

/** The bytes of a stored object, through the server's own storage (local directory or bucket). */
export async function readStored(t: TestServer, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of t.server.storage.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The server's files/ objects and unfinished multipart uploads, under its prefix of the bucket. */
async function bucketState(storage: S3Config): Promise<{ files: string[]; pendingUploads: string[] }> {
  const client = new S3Client({
    region: storage.region,
    endpoint: storage.endpoint,
    forcePathStyle: storage.forcePathStyle,
    credentials: { accessKeyId: storage.accessKeyId ?? "", secretAccessKey: storage.secretAccessKey ?? "" },
  });
  try {
    const files: string[] = [];
    const prefix = `${storage.prefix}files/`;
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: storage.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) files.push((object.Key ?? "").slice(prefix.length));
      token = page.NextContinuationToken;
    } while (token);
    const uploads = await client.send(
      new ListMultipartUploadsCommand({ Bucket: storage.bucket, Prefix: storage.prefix }),
    );
    return { files: files.sort(), pendingUploads: (uploads.Uploads ?? []).map((u) => u.Key ?? "").sort() };
  } finally {
    client.destroy();
  }
}

/** Asserts that nothing new was stored since `before`, and nothing is left in tmp. */
export async function expectNothingStored(t: TestServer, before: StorageState, what: string): Promise<void> {
  const after = await storageState(t);
  expect(after.rows, `${what}: files rows`).toBe(before.rows);
  expect(after.stored, `${what}: storage/files`).toEqual(before.stored);
  expect(after.tmp, `${what}: storage/tmp`).toEqual([]);
}

/** Asserts the standard error envelope with `status` and `code`, and a request id matching the header. */
export function expectApiError(res: TestResponse, status: number, code: string, what = ""): void {
  expect(res.status, `${what}: ${res.text}`).toBe(status);
  expect(res.body?.error?.code, `${what}: ${res.text}`).toBe(code);
  expect(res.body.error.message, what).toEqual(expect.any(String));
  expect(res.body.error.requestId, what).toMatch(/^req_/);
  expect(res.headers.get("x-request-id"), what).toBe(res.body.error.requestId);
}

/** Downloads a URL without any key. */
export async function download(url: string): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get("content-type") };
}

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/**
 * Mean colour of a region of the first frame of a video (or an image): the bottom quarter by
 * default, which the simulator's "SIMULATED" banner (top) and prompt text (middle) leave alone.
 */
export async function regionColor(
  dir: string,
  mediaPath: string,
  crop = "iw:ih/4:0:ih*3/4",
  atSeconds = 0,
): Promise<Rgb> {
  const out = uniquePath(dir, "region", "rgb");
  const seek = atSeconds > 0 ? ["-ss", String(atSeconds)] : [];
  await runFfmpeg([
    ...seek,
    "-i",
    mediaPath,
    "-frames:v",
    "1",
    "-vf",
    `crop=${crop},scale=1:1:flags=area`,
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    out,
  ]);
  const pixel = await readFile(out);
  if (pixel.length < 3) throw new Error(`no frame in ${mediaPath}`);
  return { r: pixel[0] as number, g: pixel[1] as number, b: pixel[2] as number };
}

/** Asserts every channel of `actual` is within `tolerance` of `expected`. */
export function expectColorNear(actual: Rgb, expected: Rgb, tolerance: number, what: string): void {
  for (const channel of ["r", "g", "b"] as const) {
    expect(
      Math.abs(actual[channel] - expected[channel]),
      `${what}: ${channel} ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`,
    ).toBeLessThanOrEqual(tolerance);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}
