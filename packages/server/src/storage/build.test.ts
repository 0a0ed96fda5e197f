/** STORAGE_DRIVER and the S3_* settings: defaults, validation messages, and the driver built. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";
import { openStorage } from "./build.js";
import { FsStorage } from "./fs.js";
import { S3Storage } from "./s3.js";

describe("storage configuration", () => {
  it("defaults to the local directory", () => {
    expect(loadConfig({}).storage).toEqual({ driver: "fs" });
  });

  it("reads the S3 settings, with defaults", () => {
    expect(loadConfig({ STORAGE_DRIVER: "s3", S3_BUCKET: "media-bucket" }).storage).toEqual({
      driver: "s3",
      bucket: "media-bucket",
      prefix: "",
      region: "us-east-1",
      endpoint: undefined,
      forcePathStyle: false,
      accessKeyId: undefined,
      secretAccessKey: undefined,
      mediaDelivery: "redirect",
    });
    const custom = loadConfig({
      STORAGE_DRIVER: "s3",
      S3_BUCKET: "media",
      S3_PREFIX: "framegate/prod/",
      S3_REGION: "auto",
      S3_ENDPOINT: "http://127.0.0.1:9000/",
      S3_FORCE_PATH_STYLE: "true",
      S3_ACCESS_KEY_ID: "id",
      S3_SECRET_ACCESS_KEY: "secret",
      S3_MEDIA_DELIVERY: "proxy",
    }).storage;
    expect(custom).toMatchObject({
      prefix: "framegate/prod/",
      region: "auto",
      endpoint: "http://127.0.0.1:9000",
      forcePathStyle: true,
      mediaDelivery: "proxy",
    });
  });

  it.each([
    [{ STORAGE_DRIVER: "gcs" }, "STORAGE_DRIVER: must be fs or s3"],
    [{ STORAGE_DRIVER: "s3" }, "S3_BUCKET: required when STORAGE_DRIVER is s3"],
    [{ STORAGE_DRIVER: "s3", S3_BUCKET: "a" }, "S3_BUCKET: is not a valid bucket name"],
    [{ STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_ENDPOINT: "minio:9000" }, "S3_ENDPOINT: must be an http(s) URL"],
    [{ STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_PREFIX: "a/../b" }, "S3_PREFIX: may only contain"],
    [{ STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_MEDIA_DELIVERY: "cdn" }, "S3_MEDIA_DELIVERY: must be redirect"],
    [{ STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_ACCESS_KEY_ID: "id" }, "S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY"],
    [{ S3_FORCE_PATH_STYLE: "maybe" }, "S3_FORCE_PATH_STYLE: must be true or false"],
  ])("%j is refused, naming the variable", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("builds the driver the configuration names", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "framegate-build-"));
    try {
      expect(await openStorage(loadConfig({ DATA_DIR: dataDir }))).toBeInstanceOf(FsStorage);
      const s3 = await openStorage(
        loadConfig({
          DATA_DIR: dataDir,
          STORAGE_DRIVER: "s3",
          S3_BUCKET: "media",
          S3_ENDPOINT: "http://127.0.0.1:1",
          S3_ACCESS_KEY_ID: "id",
          S3_SECRET_ACCESS_KEY: "secret",
        }),
      );
      expect(s3).toBeInstanceOf(S3Storage);
      expect(s3.localPath("files/x.png")).toBeUndefined();
      s3.close?.();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
