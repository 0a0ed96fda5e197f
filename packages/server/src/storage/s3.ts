/**
 * Storage in an S3-compatible bucket (AWS S3, MinIO, R2). Objects become visible only when
 * complete: small ones are one PutObject, larger ones a multipart upload that is completed after
 * the last byte, or aborted. Media are served through our own signed URLs (see media-routes.ts);
 * presignGet gives the short-lived S3 URL those redirect to.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { MIME_BY_EXTENSION } from "../media/mime.js";
import { assertSafeKey, type ListedObject, type ObjectStat, type Storage, type StoredObject } from "./storage.js";

export interface S3StorageOptions {
  bucket: string;
  /** Prepended to every key ("" or "some/prefix/"). */
  prefix: string;
  region: string;
  /** For MinIO, R2 or a local test server; unset for AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
  /** Both or neither; neither means the default AWS credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Upper bound of presigned URL lifetimes (SigV4 allows at most 7 days). */
  presignExpiresMaxSeconds: number;
  /** Multipart part size; S3's minimum (5 MiB) unless set. */
  partSizeBytes?: number;
}

/** S3's minimum part size (except the last part). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

function contentTypeFor(key: string): string {
  return MIME_BY_EXTENSION[key.split(".").pop()?.toLowerCase() ?? ""] ?? "application/octet-stream";
}

function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** "/a/b/" → "a/b/", "" → "". */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed ? `${trimmed}/` : "";
}

export class S3Storage implements Storage {
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly presignMax: number;

  constructor(opts: S3StorageOptions) {
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix);
    this.partSize = Math.max(MIN_PART_BYTES, opts.partSizeBytes ?? MIN_PART_BYTES);
    this.presignMax = Math.min(MAX_PRESIGN_SECONDS, Math.max(1, opts.presignExpiresMaxSeconds));
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      // The SDK's default CRC checksums (aws-chunked trailers) are not understood by every
      // S3-compatible store; checksums are only sent where the API requires them.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  private objectKey(key: string): string {
    assertSafeKey(key);
    return `${this.prefix}${key}`;
  }

  async putFile(key: string, sourcePath: string): Promise<StoredObject> {
    return this.putStream(key, createReadStream(sourcePath));
  }

  /**
   * Reads `source` in parts of `partSize` bytes (memory stays at about one part per upload). A
   * source that ends within the first part is a single PutObject; anything larger is a multipart
   * upload, completed after the last part and aborted on any error, so nothing partial is visible.
   */
  async putStream(key: string, source: Readable): Promise<StoredObject> {
    const Key = this.objectKey(key);
    const ContentType = contentTypeFor(key);
    const hash = createHash("sha256");
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];

    const flushPart = async () => {
      if (parts.length >= MAX_PARTS) throw new Error(`object too large for a multipart upload: ${key}`);
      uploadId ??= (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType })))
        .UploadId;
      if (!uploadId) throw new Error("the object store returned no multipart upload id");
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const PartNumber = parts.length + 1;
      const answer = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          PartNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      parts.push({ PartNumber, ETag: answer.ETag });
    };

    try {
      for await (const chunk of source) {
        const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
        hash.update(buffer);
        size += buffer.length;
        pending.push(buffer);
        pendingBytes += buffer.length;
        // Parts grow every 1000 parts, so 10,000 parts reach far beyond any result we keep.
        if (pendingBytes >= this.partSize * (1 + Math.floor(parts.length / 1000))) await flushPart();
      }
      if (uploadId === undefined) {
        const body = Buffer.concat(pending, pendingBytes);
        pending = [];
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: body.length, ContentType }),
        );
      } else {
        if (pendingBytes > 0) await flushPart();
        await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      }
    } catch (error) {
      source.destroy();
      if (uploadId !== undefined) {
        const UploadId = uploadId;
        // Left behind if this fails too: sweepPartials (or a bucket lifecycle rule) removes it.
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(() => {});
      }
      throw error;
    }
    return { key, size, sha256: hash.digest("hex") };
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    const out = new PassThrough();
    const abort = new AbortController();
    // A reader that stops early (client gone) also ends the request to the store.
    out.on("close", () => abort.abort());
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
    });
    this.client
      .send(command, { abortSignal: abort.signal })
      .then((answer) => pipeline(answer.Body as Readable, out))
      .catch((error: unknown) => out.destroy(error as Error));
    return out;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /** Copy then delete: readers see either name complete, never a partial object. */
  async move(fromKey: string, toKey: string): Promise<void> {
    const from = this.objectKey(fromKey);
    await this.client.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(toKey),
        CopySource: `${this.bucket}/${from.split("/").map(encodeURIComponent).join("/")}`,
        MetadataDirective: "REPLACE",
        ContentType: contentTypeFor(toKey),
      }),
    );
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: from }));
  }

  /** Aborts multipart uploads under our prefix started more than `olderThanMs` ago. */
  async sweepPartials(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      let page: ListMultipartUploadsCommandOutput;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(this.prefix ? { Prefix: this.prefix } : {}),
            ...(KeyMarker ? { KeyMarker } : {}),
            ...(UploadIdMarker ? { UploadIdMarker } : {}),
          }),
        );
      } catch (error) {
        // Some S3-compatible stores cannot list uploads: their lifecycle rules must do this.
        if ((error as { name?: string }).name === "NotImplemented" || httpStatusOf(error) === 501) return removed;
        throw error;
      }
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= cutoff) continue;
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }),
        );
        removed++;
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) return removed;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** The objects under our prefix, a page (up to 1,000 keys) at a time; keys without the prefix. */
  async *listObjects(): AsyncIterable<ListedObject> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          ...(this.prefix ? { Prefix: this.prefix } : {}),
          ...(ContinuationToken ? { ContinuationToken } : {}),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(this.prefix)) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          modifiedAt: object.LastModified ?? new Date(0),
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** Objects live in the bucket, not on this machine. */
  localPath(_key: string): undefined {
    return undefined;
  }

  /** A GET URL signed by the store, valid for `expiresInSeconds` (capped by the configured maximum). */
  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ResponseContentType: contentTypeFor(key),
    });
    const expiresIn = Math.min(this.presignMax, Math.max(1, Math.floor(expiresInSeconds)));
    return getSignedUrl(this.client, command, { expiresIn });
  }

  async checkReady(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  close(): void {
    this.client.destroy();
  }
}
