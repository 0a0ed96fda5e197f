/**
 * An in-process S3-compatible server for tests (s3rver, on 127.0.0.1 with an ephemeral port and a
 * temp directory), so no test ever talks to AWS. s3rver 3.7 answers ListMultipartUploads with
 * NotImplemented and has no AbortMultipartUpload; a small shim in front of it implements both
 * from its on-disk upload directories, so stale-upload sweeping can be tested too. s3rver also
 * answers a PUT (object or part) when its hashing stream finishes, which can be before the file
 * stream has written the bytes: a listing or read right after could see a short file (CI once
 * listed a 3-byte object as 0 bytes). The store's writes are wrapped to wait for the bytes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

// The SDK warns once that releases after January 2027 need Node 22; tests need not repeat it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export const S3_ACCESS_KEY_ID = "S3RVER";
export const S3_SECRET_ACCESS_KEY = "S3RVER";

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** Environment for a server using this bucket. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Keys of the objects in the bucket (sorted). */
  listKeys(): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingUploads(): Promise<{ key: string; uploadId: string }[]>;
  close(): Promise<void>;
}

interface ShimContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Wraps s3rver's object and part writes so they resolve only once the file holds every byte. */
function waitForWrittenBytes(store: S3rver["store"]) {
  const settled = async (path: string, size: number) => {
    for (let waited = 0; waited < 10_000; waited += 5) {
      const info = await stat(path).catch(() => undefined);
      if (info && info.size >= size) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`s3rver did not finish writing ${path}`);
  };
  const putObject = store.putObject.bind(store);
  store.putObject = async (object) => {
    const result = await putObject(object);
    await settled(store.getResourcePath(object.bucket, object.key, "object"), result.size);
    return result;
  };
  const putPart = store.putPart.bind(store);
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const result = await putPart(bucket, uploadId, partNumber, content);
    await settled(join(store.getResourcePath(bucket, undefined, "uploads"), uploadId, String(partNumber)), result.size);
    return result;
  };
}

export async function startTestS3(bucket = "framegate-test"): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), "framegate-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  const uploadsDir = (name: string) => server.store.getResourcePath(name, undefined, "uploads");
  waitForWrittenBytes(server.store);

  const pendingUploads = async (name: string, prefix = "") => {
    const dir = uploadsDir(name);
    const ids = await readdir(dir).catch(() => [] as string[]);
    const uploads: { key: string; uploadId: string; initiated: Date }[] = [];
    for (const uploadId of ids) {
      const key = await readFile(join(dir, uploadId, "key"), "utf8").catch(() => undefined);
      const info = await stat(join(dir, uploadId)).catch(() => undefined);
      if (key !== undefined && info && key.startsWith(prefix)) uploads.push({ key, uploadId, initiated: info.mtime });
    }
    return uploads.sort((a, b) => a.key.localeCompare(b.key));
  };

  // Runs before s3rver's own middleware (path-style requests only, no authentication).
  server.middleware.unshift(async (ctx: ShimContext, next: () => Promise<void>) => {
    // The SDK sends bucket operations as "/bucket/" (with the slash).
    const [name, ...rest] = ctx.path.split("/").filter(Boolean);
    if (ctx.method === "GET" && name && rest.length === 0 && "uploads" in ctx.query) {
      const prefix = typeof ctx.query.prefix === "string" ? ctx.query.prefix : "";
      const uploads = await pendingUploads(name, prefix);
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${xmlEscape(name)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads>` +
        `<IsTruncated>false</IsTruncated>` +
        uploads
          .map(
            (u) =>
              `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId>` +
              `<Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
          )
          .join("") +
        "</ListMultipartUploadsResult>";
      return;
    }
    const uploadId = ctx.query.uploadId;
    if (ctx.method === "DELETE" && name && rest.length > 0 && typeof uploadId === "string") {
      if (!/^[0-9a-f]+$/.test(uploadId)) {
        ctx.status = 400;
        return;
      }
      await rm(join(uploadsDir(name), uploadId), { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = "";
      return;
    }
    await next();
  });

  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;

  const listKeys = async () => {
    const root = join(directory, bucket);
    const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
    return entries
      .filter((e) => e.endsWith("._S3rver_object"))
      .map((e) => e.slice(0, -"._S3rver_object".length))
      .sort();
  };

  return {
    endpoint,
    bucket,
    env: (extra = {}) => ({
      STORAGE_DRIVER: "s3",
      S3_BUCKET: bucket,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: "true",
      S3_ACCESS_KEY_ID,
      S3_SECRET_ACCESS_KEY,
      ...extra,
    }),
    listKeys,
    pendingUploads: async () => (await pendingUploads(bucket)).map(({ key, uploadId }) => ({ key, uploadId })),
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
