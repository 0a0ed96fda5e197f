/**
 * Reference images end to end (api-contract §6, README "Reference images"): an uploaded image
 * becomes the first frame of the simulated video; a reference URL that is not this account's
 * live, correctly signed file is refused before anything is charged; expired files are garbage
 * collected unless a queued or processing task still uses them; REFERENCE_URL_FETCH fetches an
 * external URL once through the SSRF guard.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UrlSigner } from "../src/storage/signed-urls.js";
import {
  expectApiError,
  expectColorNear,
  expectNothingStored,
  pollUntil,
  regionColor,
  storageState,
  uploadFile,
} from "./files-helpers.js";
import { hexToRgb, makeBigImage, makeImage, makeVideo } from "./fixtures/media.js";
import { ManualClock, startTestServer, type TestResponse, type TestServer, waitForTask } from "./harness.js";

const KLING = "kling-2-6";
const SIGNING_SECRET = "files-references-test-secret-0123456789abcdef";
const MIN = 60_000;
const DAY_MS = 24 * 3600 * 1000;

// biome-ignore lint/suspicious/noExplicitAny: file / task JSON
type Json = any;

function imageItem(url: string, extra: Record<string, unknown> = {}) {
  return { url, kind: "image", mimeType: "image/png", ...extra };
}

function generate(
  t: { request: TestServer["request"] },
  key: string,
  items: unknown[],
  prompt = "The reference slowly comes to life",
): Promise<TestResponse> {
  return t.request("/api/v1/generations", {
    key,
    json: { model: KLING, prompt, params: { aspect_ratio: "16:9", referenceMediaItems: items } },
  });
}

async function balance(t: TestServer, key: string): Promise<number> {
  const res = await t.request("/api/v1/credits", { key });
  expect(res.status, res.text).toBe(200);
  return res.body.current_credits;
}

async function taskCount(t: TestServer, accountId: string): Promise<number> {
  const row = await t.server.store.db
    .selectFrom("tasks")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("account_id", "=", accountId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function upload(t: TestServer, key: string, path: string, fields: Record<string, string>): Promise<Json> {
  const res = await uploadFile(t, key, path, fields);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/**
 * Sends a generation that must be refused: 400 validation_failed, no credit moved, no task,
 * no file stored. Returns the error for further checks.
 */
async function expectRefused(
  t: TestServer,
  account: { key: string; accountId: string },
  items: unknown[],
  what: string,
  pathPattern?: RegExp,
): Promise<Json> {
  const credits = await balance(t, account.key);
  const tasks = await taskCount(t, account.accountId);
  const stored = await storageState(t);
  const res = await generate(t, account.key, items);
  expectApiError(res, 400, "validation_failed", what);
  if (pathPattern) {
    expect(
      res.body.error.details?.map((d: { path: string }) => d.path),
      `${what}: ${res.text}`,
    ).toContainEqual(expect.stringMatching(pathPattern));
  }
  expect(await balance(t, account.key), `${what}: balance`).toBe(credits);
  expect(await taskCount(t, account.accountId), `${what}: tasks`).toBe(tasks);
  await expectNothingStored(t, stored, what);
  return res.body.error;
}

/** Downloads a task's video and returns the mean colour of the bottom quarter of its first frame. */
async function firstFrameBottom(dir: string, task: Json) {
  const res = await fetch(task.result.primary_url);
  expect(res.status).toBe(200);
  const file = join(dir, `${task.id}.mp4`);
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  return regionColor(dir, file);
}

describe("reference images: end to end", () => {
  let t: TestServer;
  let dir: string;
  let a: { key: string; accountId: string };
  let b: { key: string; accountId: string };
  let signer: UrlSigner;
  const fx: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-files-refs-"));
    t = await startTestServer({
      SIGNING_SECRET,
      RATE_LIMIT_UPLOAD_PER_MIN: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
    signer = new UrlSigner(SIGNING_SECRET, () => t.url);
    a = await t.createAccount(1000);
    b = await t.createAccount(1000);
    const [blue, amber, small, mp4] = await Promise.all([
      makeImage(dir, { format: "png", width: 640, height: 480, color: "#2040e0" }),
      makeImage(dir, { format: "png", width: 480, height: 640, color: "#e0a020" }),
      makeImage(dir, { format: "png", width: 200, height: 200, color: "#20c040" }),
      makeVideo(dir, { format: "mp4", width: 320, height: 240, seconds: 2 }),
    ]);
    Object.assign(fx, { blue, amber, small, mp4 });
  });

  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    { colour: "#2040e0", fixture: "blue", width: 640, height: 480 },
    { colour: "#e0a020", fixture: "amber", width: 480, height: 640 },
  ])("a $colour upload becomes the first frame of the video (16:9)", async (c) => {
    const file = await upload(t, a.key, fx[c.fixture] as string, { kind: "image", model: KLING });
    const before = await balance(t, a.key);
    const res = await generate(t, a.key, [imageItem(file.url, { name: "my reference.png" })]);
    expect(res.status, res.text).toBe(202);
    expect(await balance(t, a.key)).toBe(before - 55);
    const expectedRef = {
      file_id: file.id,
      kind: "image",
      mime_type: "image/png",
      url: file.url,
      name: "my reference.png",
      width: c.width,
      height: c.height,
      duration_seconds: null,
    };
    expect(res.body.references).toEqual([expectedRef]);

    const task = await waitForTask(t, a.key, res.body.id);
    expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
    expect(task.references).toEqual([expectedRef]);
    // The reference URL handed out with the task downloads the uploaded bytes.
    const ref = await fetch(task.references[0].url);
    expect(Buffer.from(await ref.arrayBuffer()).equals(await readFile(fx[c.fixture] as string))).toBe(true);
    expect(task.result.media[0]).toMatchObject({ width: 256, height: 144 });

    const colour = await firstFrameBottom(dir, task);
    console.log(`reference ${c.colour}: first frame bottom quarter = ${JSON.stringify(colour)}`);
    expectColorNear(colour, hexToRgb(c.colour), 25, `first frame vs ${c.colour}`);
  });

  it("a task without a reference does not start from an uploaded colour (the check is meaningful)", async () => {
    const res = await t.request("/api/v1/generations", {
      key: a.key,
      json: { model: KLING, prompt: "No reference here", params: { aspect_ratio: "16:9" } },
    });
    expect(res.status, res.text).toBe(202);
    expect(res.body.references).toEqual([]);
    const task = await waitForTask(t, a.key, res.body.id);
    expect(task.status).toBe("succeeded");
    const colour = await firstFrameBottom(dir, task);
    const far = (hex: string) => {
      const c = hexToRgb(hex);
      return Math.max(Math.abs(colour.r - c.r), Math.abs(colour.g - c.g), Math.abs(colour.b - c.b)) > 25;
    };
    expect(far("#2040e0") && far("#e0a020"), JSON.stringify(colour)).toBe(true);
  });

  describe("refused before anything is charged", () => {
    let blueFile: Json;
    let foreignFile: Json;
    let smallFile: Json;
    let videoFile: Json;

    beforeAll(async () => {
      [blueFile, foreignFile, smallFile, videoFile] = await Promise.all([
        upload(t, a.key, fx.blue as string, { kind: "image", model: KLING }),
        upload(t, b.key, fx.blue as string, { kind: "image", model: KLING }),
        upload(t, a.key, fx.small as string, { kind: "image" }),
        upload(t, a.key, fx.mp4 as string, { kind: "video" }),
      ]);
    });

    it("the control: account A's own file is accepted", async () => {
      const res = await generate(t, a.key, [imageItem(blueFile.url)]);
      expect(res.status, res.text).toBe(202);
    });

    it("another account's file URL is refused exactly like a file that does not exist", async () => {
      const foreign = await expectRefused(t, a, [imageItem(foreignFile.url)], "foreign file", /\.url$/);
      // A correctly signed URL of a file id that does not exist (signed with the server's secret).
      const expires = new Date(Date.parse(foreignFile.expires_at));
      const ghostUrl = signer.signMediaUrl("files/file_ghost0123456789abcdefghij.png", expires);
      const ghost = await expectRefused(t, a, [imageItem(ghostUrl)], "nonexistent file", /\.url$/);
      expect(foreign.message).toBe(ghost.message);
      expect(foreign.details).toEqual(ghost.details);
      expect(JSON.stringify(foreign)).not.toContain(foreignFile.id);
      // Account B may use its own file.
      expect((await generate(t, b.key, [imageItem(foreignFile.url)])).status).toBe(202);
    });

    it("a tampered signature, path or expiry is refused", async () => {
      const url = new URL(blueFile.url);
      const sig = url.searchParams.get("signature") as string;
      const flipped = new URL(url);
      flipped.searchParams.set("signature", `${sig.slice(0, -2)}${sig.endsWith("AA") ? "BB" : "AA"}`);
      await expectRefused(t, a, [imageItem(flipped.toString())], "tampered signature", /\.url$/);

      const otherPath = new URL(url);
      otherPath.pathname = `/media/files/${smallFile.id}.png`;
      await expectRefused(t, a, [imageItem(otherPath.toString())], "signature of another file", /\.url$/);

      const later = new URL(url);
      later.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 3600));
      await expectRefused(t, a, [imageItem(later.toString())], "tampered expiry", /\.url$/);

      const unsigned = new URL(url);
      unsigned.search = "";
      const err = await expectRefused(t, a, [imageItem(unsigned.toString())], "unsigned file URL", /\.url$/);
      expect(err.message).toMatch(/POST \/api\/v1\/files/);
    });

    it("an external URL is refused when REFERENCE_URL_FETCH is off, pointing at the Files API", async () => {
      const err = await expectRefused(
        t,
        a,
        [imageItem("https://images.example.com/product.png")],
        "external URL",
        /\.url$/,
      );
      expect(err.message).toMatch(/upload the file with POST \/api\/v1\/files/);
    });

    it("a result URL of this server is not a file URL", async () => {
      const res = await t.request("/api/v1/generations", {
        key: a.key,
        json: { model: KLING, prompt: "a result to misuse", params: { aspect_ratio: "16:9" } },
      });
      const task = await waitForTask(t, a.key, res.body.id);
      expect(task.status).toBe("succeeded");
      await expectRefused(t, a, [imageItem(task.result.primary_url)], "result URL", /\.url$/);
    });

    it("a mimeType or kind that does not match the file is refused", async () => {
      const err = await expectRefused(
        t,
        a,
        [imageItem(blueFile.url, { mimeType: "image/jpeg" })],
        "mimeType mismatch",
        /\.mimeType$/,
      );
      expect(err.message).toMatch(/image\/png/);
      await expectRefused(t, a, [{ url: blueFile.url, kind: "video" }], "kind video", /\.kind$/);
      await expectRefused(t, a, [{ url: videoFile.url, kind: "video" }], "a video file", /\.kind$/);
      // A video file presented as an image: the stored kind decides.
      await expectRefused(t, a, [{ url: videoFile.url, kind: "image" }], "video file as image", /\.kind$/);
    });

    it("two reference items are refused (kling-2-6 takes one)", async () => {
      const err = await expectRefused(
        t,
        a,
        [imageItem(blueFile.url), imageItem(blueFile.url)],
        "two items",
        /referenceMediaItems$/,
      );
      expect(err.message).toMatch(/at most 1/);
    });

    it("a file uploaded without a model that kling-2-6 cannot use (200x200) is refused at generation time", async () => {
      const err = await expectRefused(t, a, [imageItem(smallFile.url)], "200x200 file", /\.url$/);
      expect(err.message).toMatch(/300 px/);
    });

    it("a durationToken or durationSeconds that the file does not back is refused", async () => {
      // The video's token is valid, but for another file.
      const foreignToken = await expectRefused(
        t,
        a,
        [imageItem(blueFile.url, { durationToken: videoFile.duration_token })],
        "token of another file",
        /\.durationToken$/,
      );
      expect(foreignToken.message).toMatch(/does not belong to this file/);
      const [v, expires, whole, millis, mac] = videoFile.duration_token.split(".");
      const forged = [v, expires, String(Number(whole) + 5), millis, mac].join(".");
      await expectRefused(t, a, [imageItem(blueFile.url, { durationToken: forged })], "forged", /\.durationToken$/);
      await expectRefused(t, a, [imageItem(blueFile.url, { durationToken: "dt1.garbage" })], "malformed token");
      await expectRefused(
        t,
        a,
        [imageItem(blueFile.url, { durationSeconds: 5 })],
        "durationSeconds on an image",
        /\.durationSeconds$/,
      );
    });
  });
});

describe("reference files: expiry and garbage collection", () => {
  let t: TestServer;
  let dir: string;
  const clock = new ManualClock();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-files-gc-"));
    t = await startTestServer({ FILE_RETENTION_DAYS: "1", RATE_LIMIT_READ_PER_MIN: "0" }, undefined, { clock });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("expired files are refused and deleted, except while a processing task uses them", async () => {
    const account = await t.createAccount(1000);
    const { key } = account;
    const png = await makeImage(dir, { format: "png", width: 640, height: 640, color: "#808020" });
    const unused = await upload(t, key, png, { kind: "image", model: KLING });
    const used = await upload(t, key, png, { kind: "image", model: KLING });
    expect(Date.parse(used.expires_at) - Date.parse(used.created_at)).toBe(DAY_MS);
    const rowOf = (id: string) =>
      t.server.store.db.selectFrom("files").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const bytesExist = async (id: string) => (await t.server.storage.stat((await rowOf(id)).storage_key)) !== undefined;

    // Five minutes before expiry the file is still usable: a slow task (10 min) starts with it.
    clock.advance(DAY_MS - 5 * MIN);
    const created = await generate(t, key, [imageItem(used.url)], "slow [sim:delay=600]");
    expect(created.status, created.text).toBe(202);
    expect(
      await pollUntil(
        async () => (await t.request(`/api/v1/generations/${created.body.id}`, { key })).body.status === "processing",
        10_000,
      ),
    ).toBe(true);

    // Past expiry: both URLs are refused (signature expired), nothing charged.
    clock.advance(6 * MIN);
    const refusedUnused = await expectRefused(t, account, [imageItem(unused.url)], "expired URL", /\.url$/);
    expect(refusedUnused.message).toMatch(/expired/);
    await expectRefused(t, account, [imageItem(used.url)], "expired URL of the used file", /\.url$/);
    expect((await fetch(unused.url)).status).toBe(403);

    const report = await t.server.runMaintenance();
    expect(report.filesPurged).toBe(1);
    const gone = await rowOf(unused.id);
    expect(gone.deleted_at).not.toBeNull();
    expect(await bytesExist(unused.id)).toBe(false);
    expectApiError(await t.request(`/api/v1/files/${unused.id}`, { key }), 404, "not_found");
    // The processing task's file is kept.
    expect((await rowOf(used.id)).deleted_at).toBeNull();
    expect(await bytesExist(used.id)).toBe(true);
    expect((await t.request(`/api/v1/files/${used.id}`, { key })).status).toBe(200);

    // The task finishes; the next collection deletes the file.
    clock.advance(10 * MIN);
    const task = await waitForTask(t, key, created.body.id);
    expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
    expect((await t.server.runMaintenance()).filesPurged).toBe(1);
    expect((await rowOf(used.id)).deleted_at).not.toBeNull();
    expect(await bytesExist(used.id)).toBe(false);
    expectApiError(await t.request(`/api/v1/files/${used.id}`, { key }), 404, "not_found");
    // The task still lists the file, without a URL now that it has expired.
    const after = await t.request(`/api/v1/generations/${created.body.id}`, { key });
    expect(after.body.references).toEqual([expect.objectContaining({ file_id: used.id, url: null })]);
    expect((await t.server.runMaintenance()).filesPurged).toBe(0);
  });
});

describe("reference files: a queued task keeps its file", () => {
  it("kept while queued (no workers), deleted once the task is done", async () => {
    const dir = mkdtempSync(join(tmpdir(), "framegate-files-gcq-"));
    const dataDir = join(dir, "data");
    const clock = new ManualClock();
    let t = await startTestServer({ FILE_RETENTION_DAYS: "1", WORKER_CONCURRENCY: "0" }, dataDir, { clock });
    try {
      const { key } = await t.createAccount(1000);
      const png = await makeImage(dir, { format: "png", width: 400, height: 400 });
      const file = await upload(t, key, png, { kind: "image", model: KLING });
      const created = await generate(t, key, [imageItem(file.url)]);
      expect(created.status, created.text).toBe(202);
      clock.advance(2 * DAY_MS);
      expect((await t.server.runMaintenance()).filesPurged).toBe(0);
      expect((await t.request(`/api/v1/generations/${created.body.id}`, { key })).body.status).toBe("queued");
      expect((await t.request(`/api/v1/files/${file.id}`, { key })).status).toBe(200);

      // Restart with workers: the task reaches a terminal state (it may time out, having
      // waited two days), and then nothing holds the file any more.
      await t.close();
      t = await startTestServer({ FILE_RETENTION_DAYS: "1" }, dataDir, { clock });
      const task = await waitForTask(t, key, created.body.id);
      expect(["succeeded", "failed"]).toContain(task.status);
      expect((await t.server.runMaintenance()).filesPurged).toBe(1);
      expect((await t.request(`/api/v1/files/${file.id}`, { key })).status).toBe(404);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Origin {
  url: string;
  hits: Map<string, number>;
  close(): Promise<void>;
}

/** A local origin serving fixed bodies by path, counting requests per path. */
async function startOrigin(routes: Record<string, { type: string; path?: string; body?: string }>): Promise<Origin> {
  const hits = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    const body = route.path ? await readFile(route.path) : Buffer.from(route.body ?? "");
    res.writeHead(200, { "content-type": route.type, "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("REFERENCE_URL_FETCH", () => {
  let dir: string;
  let origin: Origin;
  const totalHits = () => [...origin.hits.values()].reduce((s, n) => s + n, 0);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "framegate-files-fetch-"));
    const [png, big] = await Promise.all([
      makeImage(dir, { format: "png", width: 640, height: 360, color: "#c03060" }),
      makeBigImage(dir, 11 * 1024 * 1024),
    ]);
    origin = await startOrigin({
      "/ref.png": { type: "image/png", path: png },
      "/page.html": { type: "text/html", body: "<!doctype html><html><body>not an image</body></html>" },
      "/big.png": { type: "image/png", path: big },
    });
  });
  afterAll(async () => {
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("with REFERENCE_URL_ALLOW_INSECURE=true", () => {
    let t: TestServer;
    let account: { key: string; accountId: string };
    beforeAll(async () => {
      t = await startTestServer({
        REFERENCE_URL_FETCH: "true",
        REFERENCE_URL_ALLOW_INSECURE: "true",
        RATE_LIMIT_READ_PER_MIN: "0",
      });
      account = await t.createAccount(1000);
    });
    afterAll(() => t?.close());

    it("fetches the URL once, stores it as a file of the account, and the video starts from it", async () => {
      const url = `${origin.url}/ref.png?v=1`;
      const first = await generate(t, account.key, [imageItem(url)]);
      expect(first.status, first.text).toBe(202);
      expect(origin.hits.get("/ref.png")).toBe(1);
      const rows = await t.server.store.db.selectFrom("files").selectAll().where("source_url", "=", url).execute();
      expect(rows).toHaveLength(1);
      const row = rows[0] as (typeof rows)[number];
      expect(row).toMatchObject({
        account_id: account.accountId,
        kind: "image",
        mime_type: "image/png",
        width: 640,
        height: 360,
        name: "ref.png",
        deleted_at: null,
      });
      expect(first.body.references).toEqual([expect.objectContaining({ file_id: row.id, width: 640, height: 360 })]);
      const task = await waitForTask(t, account.key, first.body.id);
      expect(task.status, JSON.stringify(task.error)).toBe("succeeded");
      const colour = await firstFrameBottom(dir, task);
      expectColorNear(colour, hexToRgb("#c03060"), 25, "fetched reference first frame");
      // The stored file is the account's, readable through the Files API.
      const file = await t.request(`/api/v1/files/${row.id}`, { key: account.key });
      expect(file.status).toBe(200);
      expect(file.body.sha256).toBe(row.sha256);

      // Same URL again: the stored copy is used, the origin is not asked again.
      const second = await generate(t, account.key, [imageItem(url)]);
      expect(second.status, second.text).toBe(202);
      expect(second.body.references[0].file_id).toBe(row.id);
      expect(origin.hits.get("/ref.png")).toBe(1);
      expect(
        await t.server.store.db.selectFrom("files").select("id").where("source_url", "=", url).execute(),
      ).toHaveLength(1);
    });

    it("an HTML page is refused, nothing stored or charged", async () => {
      const before = origin.hits.get("/page.html") ?? 0;
      const err = await expectRefused(t, account, [imageItem(`${origin.url}/page.html`)], "html", /\.url$/);
      expect(origin.hits.get("/page.html")).toBe(before + 1);
      expect(err.message).not.toContain("<html");
    });

    it("an 11 MB image is refused as too large, nothing stored or charged", async () => {
      const err = await expectRefused(t, account, [imageItem(`${origin.url}/big.png`)], "11 MB", /\.url$/);
      expect(err.message).toMatch(/larger than allowed|too large|larger than the/i);
    });

    it("a 404 at the origin is refused", async () => {
      await expectRefused(t, account, [imageItem(`${origin.url}/missing.png`)], "404", /\.url$/);
    });

    it("a fetched file counts against the file quota: a full account is refused before the fetch, uncharged", async () => {
      const full = await t.createAccount(1000);
      const quota = await t.admin(`/admin/v1/accounts/${full.accountId}`, { method: "PATCH", json: { max_files: 1 } });
      expect(quota.status, quota.text).toBe(200);
      const first = await generate(t, full.key, [imageItem(`${origin.url}/ref.png?quota=1`)]);
      expect(first.status, first.text).toBe(202);
      await waitForTask(t, full.key, first.body.id);

      const hits = origin.hits.get("/ref.png");
      const credits = await balance(t, full.key);
      const stored = await storageState(t);
      const refused = await generate(t, full.key, [imageItem(`${origin.url}/ref.png?quota=2`)]);
      expectApiError(refused, 403, "quota_exceeded", "fetch over the file quota");
      expect(refused.body.error.message).toContain("limit 1");
      expect(origin.hits.get("/ref.png")).toBe(hits);
      expect(await balance(t, full.key)).toBe(credits);
      expect(await taskCount(t, full.accountId)).toBe(1);
      await expectNothingStored(t, stored, "fetch over the file quota");
    });
  });

  describe("strict (REFERENCE_URL_ALLOW_INSECURE=false)", () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ REFERENCE_URL_FETCH: "true", REFERENCE_URL_ALLOW_INSECURE: "false" });
    });
    afterAll(() => t?.close());

    it("an http://127.0.0.1 URL is refused without a single request reaching it", async () => {
      const account = await t.createAccount(1000);
      const before = totalHits();
      const err = await expectRefused(t, account, [imageItem(`${origin.url}/ref.png?strict`)], "strict", /\.url$/);
      expect(err.message).toMatch(/not allowed/);
      expect(totalHits()).toBe(before);
      // A https URL to a loopback name is refused too, also without a request.
      const host = new URL(origin.url).host;
      await expectRefused(t, account, [imageItem(`https://${host}/ref.png`)], "https loopback", /\.url$/);
      await expectRefused(t, account, [imageItem(`https://localhost:1/ref.png`)], "localhost", /\.url$/);
      expect(totalHits()).toBe(before);
    });
  });
});
