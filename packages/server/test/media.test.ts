/**
 * Signed media URLs (api-contract §5): downloads without a key, byte ranges, HEAD, and every way
 * a link can be wrong (tampered signature, path or expiry, missing parts, expired, traversal).
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jpegSize } from "../src/generations/poster.js";
import { UrlSigner } from "../src/storage/signed-urls.js";
import { ManualClock, startTestServer, type TestServer, waitForTask } from "./harness.js";
import { TEST_STORAGE } from "./test-store.js";

const SIGNING_SECRET = "media-test-signing-secret-0123456789abcdef";
const SENTINEL = "TOP-SECRET-SENTINEL-outside-storage";

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request with the path sent exactly as given (fetch would normalize dot segments). */
function rawRequest(
  baseUrl: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method: opts.method ?? "GET", headers: opts.headers });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function pathAndQuery(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

async function expectSignatureInvalid(res: Response | RawResponse, what: string) {
  const status = res.status;
  const isFetch = res instanceof Response;
  const text = isFetch ? await res.text() : res.body.toString("utf8");
  const requestId = isFetch ? res.headers.get("x-request-id") : res.headers["x-request-id"];
  const contentType = isFetch ? res.headers.get("content-type") : res.headers["content-type"];
  expect(status, `${what}: ${text}`).toBe(403);
  expect(contentType, what).toMatch(/^application\/json/);
  const body = JSON.parse(text);
  expect(body, what).toEqual({
    error: { code: "signature_invalid", message: expect.any(String), requestId: expect.stringMatching(/^req_/) },
  });
  expect(body.error.requestId).toBe(requestId);
  expect(text).not.toContain(SIGNING_SECRET);
}

describe("signed media URLs", () => {
  let t: TestServer;
  const clock = new ManualClock();
  let key: string;
  let urlA: string;
  let urlB: string;
  let full: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  let taskA: any;
  let signer: UrlSigner;

  beforeAll(async () => {
    // On S3 the bytes are streamed by the server (proxy), so this checks our range handling, not
    // s3rver's (which has no suffix ranges); s3-storage.test.ts covers the redirect.
    const delivery: Record<string, string> = TEST_STORAGE === "s3" ? { S3_MEDIA_DELIVERY: "proxy" } : {};
    t = await startTestServer({ SIGNING_SECRET, RATE_LIMIT_READ_PER_MIN: "0", ...delivery }, undefined, { clock });
    signer = new UrlSigner(SIGNING_SECRET, () => t.url);
    writeFileSync(join(t.dataDir, "outside.txt"), SENTINEL);
    ({ key } = await t.createAccount(200));
    const [a, b] = await Promise.all(
      ["media A", "media B"].map((prompt) =>
        t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt, params: { sound: "true" } } }),
      ),
    );
    expect(a?.status).toBe(202);
    expect(b?.status).toBe(202);
    taskA = await waitForTask(t, key, a?.body.id);
    const doneB = await waitForTask(t, key, b?.body.id);
    expect(taskA.status).toBe("succeeded");
    expect(doneB.status).toBe("succeeded");
    urlA = taskA.result.primary_url;
    urlB = doneB.result.primary_url;
    const res = await fetch(urlA);
    expect(res.status).toBe(200);
    full = Buffer.from(await res.arrayBuffer());
  });
  afterAll(() => t?.close());

  it("serves a valid link without an API key: 200, video/mp4, Accept-Ranges", async () => {
    const res = await fetch(urlA);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe(String(taskA.result.media[0].size_bytes));
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(taskA.result.media[0].size_bytes);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(taskA.result.media[0].sha256);
    expect(bytes.subarray(4, 8).toString("latin1")).toBe("ftyp");
  });

  it("gives each result video a signed JPEG poster of the video's size", async () => {
    const media = taskA.result.media[0];
    expect(media.poster_url).toMatch(/\/media\/results\/task_\w+\/video\.jpg\?/);
    const res = await fetch(media.poster_url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const size = jpegSize(Buffer.from(await res.arrayBuffer()));
    expect(size).toEqual({ width: media.width, height: media.height });
    // Signed like the video: a tampered signature is refused.
    const tampered = new URL(media.poster_url);
    tampered.searchParams.set("signature", `${tampered.searchParams.get("signature")}A`);
    expect((await fetch(tampered)).status).toBe(403);
  });

  it("serves bytes=0-99 as 206 with the first 100 bytes", async () => {
    const res = await fetch(urlA, { headers: { range: "bytes=0-99" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 0-99/${full.length}`);
    expect(res.headers.get("content-length")).toBe("100");
    expect(res.headers.get("content-type")).toBe("video/mp4");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(100);
    expect(bytes.equals(full.subarray(0, 100))).toBe(true);
  });

  it("serves a suffix range bytes=-10 (the last 10 bytes)", async () => {
    const res = await fetch(urlA, { headers: { range: "bytes=-10" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes ${full.length - 10}-${full.length - 1}/${full.length}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(full.subarray(full.length - 10))).toBe(true);
  });

  it("serves an open range bytes=100- (everything from byte 100)", async () => {
    const res = await fetch(urlA, { headers: { range: "bytes=100-" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 100-${full.length - 1}/${full.length}`);
    expect(res.headers.get("content-length")).toBe(String(full.length - 100));
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(full.subarray(100))).toBe(true);
  });

  it("clamps a range end beyond the file and a suffix longer than the file", async () => {
    const res = await fetch(urlA, { headers: { range: `bytes=10-${full.length + 1000}` } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 10-${full.length - 1}/${full.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(full.subarray(10))).toBe(true);
    const suffix = await fetch(urlA, { headers: { range: `bytes=-${full.length + 1000}` } });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get("content-range")).toBe(`bytes 0-${full.length - 1}/${full.length}`);
    expect(Buffer.from(await suffix.arrayBuffer()).equals(full)).toBe(true);
  });

  it("answers an unsatisfiable range with 416, Content-Range bytes */size and the error envelope", async () => {
    for (const range of [`bytes=${full.length}-`, `bytes=${full.length + 100}-${full.length + 200}`, "bytes=-0"]) {
      const res = await fetch(urlA, { headers: { range } });
      expect(res.status, range).toBe(416);
      expect(res.headers.get("content-range"), range).toBe(`bytes */${full.length}`);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: { requestId: string } };
      expect(body).toEqual({
        error: {
          code: "range_not_satisfiable",
          message: expect.any(String),
          requestId: expect.stringMatching(/^req_/),
        },
      });
      expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
    }
  });

  it("answers HEAD with the headers and no body, for whole files and ranges", async () => {
    const res = await fetch(urlA, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe(String(full.length));
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const ranged = await fetch(urlA, { method: "HEAD", headers: { range: "bytes=0-99" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 0-99/${full.length}`);
    expect(ranged.headers.get("content-length")).toBe("100");
    // Replace the signature's first character with a different one (a fixed "x" would be a no-op
    // for the one signature in 64 that starts with it).
    const tampered = pathAndQuery(urlA).replace(
      /signature=(.)/,
      (_m, c: string) => `signature=${c === "x" ? "y" : "x"}`,
    );
    const bad = await rawRequest(t.url, tampered, { method: "HEAD" });
    expect(bad.status).toBe(403);
    expect(bad.body.length).toBe(0);
  });

  it("rejects a tampered signature with 403 signature_invalid", async () => {
    const u = new URL(urlA);
    const sig = u.searchParams.get("signature") as string;
    const flipped = `${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`;
    u.searchParams.set("signature", flipped);
    await expectSignatureInvalid(await fetch(u), "flipped first char");
    u.searchParams.set("signature", `${sig}A`);
    await expectSignatureInvalid(await fetch(u), "extra char");
    u.searchParams.set("signature", sig.slice(0, -1));
    await expectSignatureInvalid(await fetch(u), "truncated");
    u.searchParams.set("signature", "");
    await expectSignatureInvalid(await fetch(u), "empty");
  });

  it("rejects another object's path with this link's signature", async () => {
    const a = new URL(urlA);
    const b = new URL(urlB);
    expect(a.pathname).not.toBe(b.pathname);
    await expectSignatureInvalid(await fetch(`${t.url}${b.pathname}${a.search}`), "B path, A signature");
    await expectSignatureInvalid(await fetch(`${t.url}${a.pathname}${b.search}`), "A path, B signature");
    // Same object, a different file name in its directory.
    const sibling = a.pathname.replace(/video\.mp4$/, "other.mp4");
    await expectSignatureInvalid(await fetch(`${t.url}${sibling}${a.search}`), "sibling path");
    // Case changes and trailing slashes are different paths too.
    await expectSignatureInvalid(
      await fetch(`${t.url}${a.pathname.replace("video.mp4", "VIDEO.MP4")}${a.search}`),
      "upper case path",
    );
    await expectSignatureInvalid(await fetch(`${t.url}${a.pathname}/${a.search}`), "trailing slash");
  });

  it("rejects a missing or malformed signature or expiry", async () => {
    const u = new URL(urlA);
    const expires = u.searchParams.get("expires") as string;
    const sig = u.searchParams.get("signature") as string;
    await expectSignatureInvalid(await fetch(`${t.url}${u.pathname}`), "no query");
    await expectSignatureInvalid(await fetch(`${t.url}${u.pathname}?expires=${expires}`), "no signature");
    await expectSignatureInvalid(await fetch(`${t.url}${u.pathname}?signature=${sig}`), "no expires");
    await expectSignatureInvalid(
      await fetch(`${t.url}${u.pathname}?expires=${expires}x&signature=${sig}`),
      "malformed expires",
    );
    await expectSignatureInvalid(
      await fetch(`${t.url}${u.pathname}?expires=${Number(expires) + 3600}&signature=${sig}`),
      "extended expires",
    );
    await expectSignatureInvalid(
      await fetch(`${t.url}${u.pathname}?expires=${Number(expires) - 1}&signature=${sig}`),
      "shortened expires",
    );
  });

  it("rejects a link whose expiry is in the past, signed or not", async () => {
    const key = new URL(urlA).pathname.slice("/media/".length);
    const past = new Date(clock.now().getTime() - 10_000);
    // Correctly signed by the server's own secret, but expired.
    const expiredSigned = signer.signMediaUrl(key, past);
    await expectSignatureInvalid(await fetch(expiredSigned), "signed, expired 10 s ago");
    // A forged one with a past expiry.
    const forged = new URL(expiredSigned);
    forged.searchParams.set("signature", "Zm9yZ2VkLXNpZ25hdHVyZS1mb3JnZWQtc2lnbmF0dXJl");
    await expectSignatureInvalid(await fetch(forged), "forged, expired");
    // Sanity: the same signer produces the URL the API handed out, so the secret is the server's.
    expect(signer.signMediaUrl(key, new Date(taskA.result.expires_at))).toBe(urlA);
  });

  it("answers 404 for a correctly signed link to an object that does not exist", async () => {
    for (const key of [
      "results/task_doesnotexist/video.mp4",
      new URL(urlA).pathname.slice(7).replace(/\/[^/]+$/, ""),
    ]) {
      const res = await fetch(signer.signMediaUrl(key, new Date(Date.now() + 3600_000)));
      expect(res.status, key).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
  });

  it("never serves files outside storage through path traversal", async () => {
    const original = new URL(urlA);
    const future = Math.floor(Date.now() / 1000) + 3600;
    const paths = [
      "/media/../outside.txt",
      "/media/../../outside.txt",
      "/media/results/../../outside.txt",
      "/media/%2e%2e/outside.txt",
      "/media/%2E%2E/%2E%2E/framegate.db",
      "/media/..%2Foutside.txt",
      "/media/..%2F..%2Foutside.txt",
      "/media/results%2F..%2F..%2Foutside.txt",
      "/media/results/..%2F..%2Foutside.txt",
      "/media/..%252Foutside.txt",
      "/media/..%5Coutside.txt",
      "/media/%2F..%2Foutside.txt",
      `/media/${encodeURIComponent(join(t.dataDir, "outside.txt"))}`,
      "/media/./../outside.txt",
      "/media/results/.%2F..%2F..%2Ffoo/../../outside.txt",
    ];
    for (const path of paths) {
      // With a stolen signature, with no signature, and even with a valid signature over the
      // path as sent, as decoded and as normalized (as if a signed URL for it existed).
      const variants = new Set([path, decodeURISafe(path), new URL(path, "http://x").pathname]);
      const attempts = [`${path}${original.search}`, path];
      for (const signedPath of variants) {
        if (signedPath.startsWith("/media/")) attempts.push(`${path}?${signedQuery(signer, signedPath, future)}`);
      }
      for (const attempt of attempts) {
        const res = await rawRequest(t.url, attempt);
        const text = res.body.toString("latin1");
        expect(res.status, `${attempt}: ${text}`).not.toBe(200);
        expect(res.status, attempt).not.toBe(206);
        expect([400, 403, 404], `${attempt}: ${res.status}`).toContain(res.status);
        expect(text).not.toContain(SENTINEL);
        expect(text).not.toContain("SQLite format");
        if (res.body.length > 0)
          expect(JSON.parse(text).error.code).toMatch(/^(signature_invalid|not_found|validation_failed)$/);
      }
    }
  });

  // Runs last: moves the server's clock past the links' expiry.
  it("rejects a link once its expires_at has passed", async () => {
    const expiresAt = Date.parse(taskA.result.expires_at);
    clock.advance(expiresAt - clock.now().getTime() - 5_000);
    expect((await fetch(urlA, { method: "HEAD" })).status).toBe(200); // 5 s before expiry
    clock.advance(6_000);
    await expectSignatureInvalid(await fetch(urlA), "1 s after expires_at");
    await expectSignatureInvalid(await fetch(urlA, { headers: { range: "bytes=0-99" } }), "ranged, after expiry");
    await expectSignatureInvalid(await fetch(urlB), "B after expiry");
  });

  // Runs after the clock moved past expiry: housekeeping deletes the media, keeps the record.
  it("deletes result media once their retention has passed, and only once", async () => {
    const keyA = `results/${taskA.id}/video.mp4`;
    const posterA = `results/${taskA.id}/video.jpg`;
    expect(await t.server.storage.stat(keyA)).toBeDefined();
    expect(await t.server.storage.stat(posterA)).toBeDefined();
    const first = await t.server.runMaintenance();
    expect(first.resultsPurged).toBeGreaterThanOrEqual(2);
    expect(await t.server.storage.stat(keyA)).toBeUndefined();
    expect(await t.server.storage.stat(posterA)).toBeUndefined();
    expect((await t.server.runMaintenance()).resultsPurged).toBe(0);
    const after = await t.request(`/api/v1/generations/${taskA.id}`, { key });
    expect(after.body.status).toBe("succeeded");
    expect(after.body.result.media[0].sha256).toBe(taskA.result.media[0].sha256);
  });
});

/** The query the server's signer produces for this exact path (which starts with /media/). */
function signedQuery(signer: UrlSigner, path: string, expires: number): string {
  return new URL(signer.signMediaUrl(path.slice("/media/".length), new Date(expires * 1000))).search.slice(1);
}

function decodeURISafe(value: string): string {
  try {
    return decodeURI(value);
  } catch {
    return value;
  }
}
