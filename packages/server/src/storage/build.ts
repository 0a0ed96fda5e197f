/** The storage driver the configuration asks for (STORAGE_DRIVER). */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config.js";
import { FsStorage } from "./fs.js";
import { S3Storage } from "./s3.js";
import type { Storage } from "./storage.js";

/** Longest presigned URL S3Storage hands out; the media route asks for minutes. */
const PRESIGN_MAX_SECONDS = 3600;

export async function openStorage(config: Pick<Config, "dataDir" | "storage">): Promise<Storage> {
  const settings = config.storage;
  if (settings.driver === "s3") {
    return new S3Storage({
      bucket: settings.bucket,
      prefix: settings.prefix,
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.accessKeyId && settings.secretAccessKey
        ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
        : {}),
      presignExpiresMaxSeconds: PRESIGN_MAX_SECONDS,
    });
  }
  const root = join(config.dataDir, "storage");
  await mkdir(root, { recursive: true });
  return new FsStorage(root);
}
