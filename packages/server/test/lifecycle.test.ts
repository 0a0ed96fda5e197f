/**
 * The full life of a generation, for every aspect ratio, duration and sound setting (12 tasks
 * created at once): the create response, the status sequence, credits and ledger, and the video
 * itself, downloaded through its signed URL without a key and checked with mp4box (an
 * independent MP4 parser, not our own probe). Also: /api/v1/models and /api/v1/openapi.json as
 * served, checked against the contract's zod schemas and a real OpenAPI 3.1 validator.
 */
import { createHash } from "node:crypto";
import { CATALOG, ModelListSchema, TaskListSchema, TaskSchema } from "@framegate/contract";
import { Validator } from "@seriousme/openapi-schema-validator";
import { createFile, type Movie, MP4BoxBuffer } from "mp4box";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, TEST_ENV, type TestResponse, type TestServer } from "./harness.js";

const ASPECTS = ["1:1", "16:9", "9:16"] as const;
const DURATIONS = ["5", "10"] as const;
const SOUNDS = ["false", "true"] as const;
const ORDER = ["queued", "processing", "succeeded"] as const;
const PRICE = 55;
const INITIAL_CREDITS = 1000;
const RETENTION_DAYS = 30; // RESULT_RETENTION_DAYS default
const DAY_MS = 24 * 3600 * 1000;

function configuredSize(aspect: (typeof ASPECTS)[number]): { width: number; height: number } {
  const name = { "1:1": "SIM_SIZE_1_1", "16:9": "SIM_SIZE_16_9", "9:16": "SIM_SIZE_9_16" }[aspect];
  const [width, height] = String(TEST_ENV[name]).split("x").map(Number) as [number, number];
  return { width, height };
}

/** Parses an MP4 with mp4box.js. */
function mp4boxInfo(bytes: Buffer): Movie {
  const iso = createFile();
  let info: Movie | undefined;
  let failure: string | undefined;
  iso.onReady = (movie) => {
    info = movie;
  };
  iso.onError = (module, message) => {
    failure = `${module}: ${message}`;
  };
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  iso.appendBuffer(MP4BoxBuffer.fromArrayBuffer(ab, 0));
  iso.flush();
  if (!info) throw new Error(`mp4box could not parse the file${failure ? ` (${failure})` : ""}`);
  return info;
}

interface Case {
  aspect: (typeof ASPECTS)[number];
  duration: (typeof DURATIONS)[number];
  sound: (typeof SOUNDS)[number];
  /** What we send: half the cases use JSON numbers/booleans, which must be normalized. */
  sentParams: Record<string, unknown>;
  clientRequestId: string | null;
  created?: TestResponse;
  history: string[];
  updatedAts: string[];
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  final?: any;
  bytes?: Buffer;
}

const cases: Case[] = [];
ASPECTS.forEach((aspect) => {
  DURATIONS.forEach((duration) => {
    SOUNDS.forEach((sound) => {
      const i = cases.length;
      const loose = i % 2 === 1;
      cases.push({
        aspect,
        duration,
        sound,
        sentParams: {
          aspect_ratio: aspect,
          duration: loose ? Number(duration) : duration,
          sound: loose ? sound === "true" : sound,
        },
        clientRequestId: i === 0 ? null : `lifecycle-${i}`,
        history: [],
        updatedAts: [],
      });
    });
  });
});

const label = (c: Case) => `${c.aspect} ${c.duration}s sound=${c.sound}`;

describe("generation lifecycle (3 aspect ratios × 2 durations × 2 sound values)", () => {
  let t: TestServer;
  let key: string;
  let accountId: string;
  let balanceAfterCreate: unknown;

  beforeAll(async () => {
    // Polling all tasks every 50 ms would trip the default read limit of 600/min.
    t = await startTestServer({ RATE_LIMIT_READ_PER_MIN: "0" });
    ({ key, accountId } = await t.createAccount(INITIAL_CREDITS));

    // All 12 at once.
    await Promise.all(
      cases.map(async (c, i) => {
        c.created = await t.request("/api/v1/generations", {
          key,
          json: {
            model: "kling-2-6",
            prompt: `Lifecycle ${i}: ${label(c)}`,
            params: c.sentParams,
            ...(c.clientRequestId === null ? {} : { client_request_id: c.clientRequestId }),
          },
        });
        if (c.created.status === 202) {
          c.history.push(c.created.body.status);
          c.updatedAts.push(c.created.body.updated_at);
        }
      }),
    );
    // All 12 reserved up front, in the create transactions.
    balanceAfterCreate = (await t.request("/api/v1/credits", { key })).body;
    const byId = new Map(cases.filter((c) => c.created?.status === 202).map((c) => [c.created?.body.id as string, c]));
    if (byId.size !== cases.length) return; // the create test reports what went wrong

    // Watch every status change through the list endpoint (one request sees all tasks).
    const deadline = Date.now() + 50_000;
    for (;;) {
      const list = await t.request("/api/v1/generations?limit=100", { key });
      if (list.status !== 200) throw new Error(`list failed: ${list.status} ${list.text}`);
      for (const task of list.body.data) {
        const c = byId.get(task.id);
        if (!c) continue;
        if (c.history.at(-1) !== task.status) c.history.push(task.status);
        if (c.updatedAts.at(-1) !== task.updated_at) c.updatedAts.push(task.updated_at);
      }
      const terminal = cases.every((c) => c.history.at(-1) === "succeeded" || c.history.at(-1) === "failed");
      if (terminal) break;
      if (Date.now() > deadline) throw new Error(`tasks not terminal: ${cases.map((c) => c.history.at(-1))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const c of cases) {
      const res = await t.request(`/api/v1/generations/${c.created?.body.id}`, { key });
      expect(res.status).toBe(200);
      c.final = res.body;
    }
    // Download every result without an API key.
    await Promise.all(
      cases.map(async (c) => {
        if (c.final?.status !== "succeeded") return;
        const res = await fetch(c.final.result.primary_url);
        if (res.status !== 200) throw new Error(`download of ${label(c)} failed: ${res.status}`);
        expect(res.headers.get("content-type")).toBe("video/mp4");
        c.bytes = Buffer.from(await res.arrayBuffer());
      }),
    );
  });
  afterAll(() => t?.close());

  it("answers each create with 202, a Location and a queued task with normalized params", () => {
    for (const c of cases) {
      const res = c.created as TestResponse;
      expect(res.status, `${label(c)}: ${res.text}`).toBe(202);
      const body = res.body;
      expect(res.headers.get("location")).toBe(`/api/v1/generations/${body.id}`);
      expect(res.headers.get("x-request-id")).toMatch(/^req_/);
      expect(TaskSchema.parse(body)).toEqual(body);
      expect(body).toMatchObject({
        object: "generation",
        status: "queued",
        model: "kling-2-6",
        reserved_credits: PRICE,
        final_credits: 0,
        result: null,
        error: null,
        client_request_id: c.clientRequestId,
        started_at: null,
        completed_at: null,
      });
      expect(body.id).toMatch(/^task_[A-Za-z0-9_-]+$/);
      expect(body.params).toEqual({ aspect_ratio: c.aspect, duration: c.duration, sound: c.sound });
      expect(body.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(body.updated_at).toBe(body.created_at);
    }
    expect(new Set(cases.map((c) => c.created?.body.id)).size).toBe(cases.length);
  });

  it("moves every task queued → processing → succeeded, never backwards", () => {
    for (const c of cases) {
      expect(c.history, label(c)).toEqual([...ORDER]);
      const sorted = [...c.updatedAts].sort();
      expect(c.updatedAts, `${label(c)} updated_at`).toEqual(sorted);
    }
  });

  it("settles 55 credits and sets timestamps on success", () => {
    for (const c of cases) {
      const task = c.final;
      expect(TaskSchema.parse(task)).toEqual(task);
      expect(task).toMatchObject({
        id: c.created?.body.id,
        status: "succeeded",
        reserved_credits: PRICE,
        final_credits: PRICE,
        error: null,
        client_request_id: c.clientRequestId,
        created_at: c.created?.body.created_at,
        params: { aspect_ratio: c.aspect, duration: c.duration, sound: c.sound },
      });
      expect(task.started_at).toEqual(expect.any(String));
      expect(task.completed_at).toEqual(expect.any(String));
      const created = Date.parse(task.created_at);
      const started = Date.parse(task.started_at);
      const completed = Date.parse(task.completed_at);
      expect(started).toBeGreaterThanOrEqual(created);
      expect(completed).toBeGreaterThanOrEqual(started);
      expect(task.updated_at).toBe(task.completed_at);
    }
  });

  it("describes the video in result.media, matching the downloaded bytes", () => {
    for (const c of cases) {
      const { result } = c.final;
      const bytes = c.bytes as Buffer;
      expect(result.urls).toHaveLength(1);
      expect(result.primary_url).toBe(result.urls[0]);
      expect(result.media).toHaveLength(1);
      const media = result.media[0];
      expect(media.url).toBe(result.primary_url);
      expect(media.url.startsWith(`${t.url}/media/`)).toBe(true);
      expect(media).toMatchObject({
        mime_type: "video/mp4",
        ...configuredSize(c.aspect),
        has_audio: c.sound === "true",
        size_bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
      expect(Math.abs(media.duration_seconds - Number(c.duration)), label(c)).toBeLessThanOrEqual(0.15);
    }
  });

  it("serves real MP4s with the requested size, duration and audio (checked with mp4box)", () => {
    for (const c of cases) {
      const info = mp4boxInfo(c.bytes as Buffer);
      const want = configuredSize(c.aspect);
      expect(info.hasMoov).toBe(true);
      expect(info.videoTracks, label(c)).toHaveLength(1);
      const video = info.videoTracks[0];
      expect(video?.codec).toMatch(/^avc1/);
      expect(video?.video).toEqual(want);
      expect(Math.abs(info.duration / info.timescale - Number(c.duration)), label(c)).toBeLessThanOrEqual(0.15);
      if (video) {
        expect(Math.abs(video.duration / video.timescale - Number(c.duration))).toBeLessThanOrEqual(0.15);
      }
      const audioTracks = info.tracks.filter((tr) => tr.type === "audio" || tr.audio !== undefined);
      if (c.sound === "true") {
        expect(info.audioTracks, label(c)).toHaveLength(1);
        expect(audioTracks).toHaveLength(1);
        expect(info.audioTracks[0]?.codec).toMatch(/^mp4a/);
      } else {
        expect(info.audioTracks, label(c)).toHaveLength(0);
        expect(audioTracks).toHaveLength(0);
      }
      expect(info.tracks).toHaveLength(c.sound === "true" ? 2 : 1);
    }
  });

  it("keeps results for RESULT_RETENTION_DAYS and signs them until then", () => {
    for (const c of cases) {
      const { result, completed_at } = c.final;
      const expiresAt = Date.parse(result.expires_at);
      const expected = Date.parse(completed_at) + RETENTION_DAYS * DAY_MS;
      expect(Math.abs(expiresAt - expected), label(c)).toBeLessThanOrEqual(60_000);
      expect(result.expires_at).toMatch(/\.\d{3}Z$/);
      const url = new URL(result.primary_url);
      expect(Number(url.searchParams.get("expires"))).toBe(Math.floor(expiresAt / 1000));
      expect(url.searchParams.get("signature")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    }
  });

  it("returns the same result URL on every read (stable signature)", async () => {
    const list = await t.request("/api/v1/generations?limit=100", { key });
    expect(list.status).toBe(200);
    expect(TaskListSchema.parse(list.body)).toEqual(list.body);
    for (const c of cases) {
      const again = await t.request(`/api/v1/generations/${c.final.id}`, { key });
      const third = await t.request(`/api/v1/generations/${c.final.id}`, { key });
      expect(again.body.result).toEqual(c.final.result);
      expect(third.body.result.primary_url).toBe(c.final.result.primary_url);
      const listed = list.body.data.find((task: { id: string }) => task.id === c.final.id);
      expect(listed).toEqual(c.final);
    }
    // Every task got its own object.
    expect(new Set(cases.map((c) => new URL(c.final.result.primary_url).pathname)).size).toBe(cases.length);
  });

  it("charges exactly 12 × 55 credits and keeps the ledger invariant", async () => {
    expect(balanceAfterCreate).toEqual({ current_credits: INITIAL_CREDITS - cases.length * PRICE });
    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.status).toBe(200);
    expect(credits.body).toEqual({ current_credits: INITIAL_CREDITS - cases.length * PRICE });
    const account = await t.admin(`/admin/v1/accounts/${accountId}`);
    expect(account.status).toBe(200);
    expect(account.body.credits).toBe(INITIAL_CREDITS - cases.length * PRICE);
    expect(account.body.credits).toBe(account.body.ledger.ledger_sum);
    expect(account.body.ledger).toMatchObject({
      balance: account.body.credits,
      granted: INITIAL_CREDITS,
      reserved: cases.length * PRICE,
      refunded: 0,
    });
  });
});

describe("public documents as served", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ WORKER_CONCURRENCY: "0" });
  });
  afterAll(() => t?.close());

  it("GET /api/v1/models lists kling-2-6 with every Rivya field, without a key", async () => {
    const res = await t.request("/api/v1/models");
    expect(res.status).toBe(200);
    expect(ModelListSchema.parse(res.body)).toEqual(res.body);
    expect(res.body.object).toBe("list");
    expect(res.body.data).toHaveLength(1);
    const entry = res.body.data[0];
    expect(Object.keys(entry).sort()).toEqual(
      [
        "id",
        "display_name",
        "category",
        "runtime",
        "base_credits",
        "billing_type",
        "supported_modes",
        "max_prompt_length",
        "reference_media",
        "params",
        "api_status",
        "api_input_status",
        "supported_api_inputs",
        "requires_files_api",
        "requires_upload_for_modes",
        "url_input_supported",
        "file_kinds",
        "chat_capabilities",
        "notices",
      ].sort(),
    );
    for (const param of entry.params) {
      expect(Object.keys(param).sort()).toEqual(
        ["key", "type", "required", "default", "options", "min", "max", "step", "description"].sort(),
      );
    }
    expect(Object.keys(entry.reference_media).sort()).toEqual(["kinds", "limits", "max_items"]);
    for (const limit of entry.reference_media.limits) {
      // Rivya's three fields, plus the optional model constraints Framegate adds.
      expect(Object.keys(limit)).toEqual(expect.arrayContaining(["kind", "max_bytes", "mime_types"]));
      for (const key of Object.keys(limit)) {
        expect(["kind", "max_bytes", "mime_types", "min_side_px", "min_aspect_ratio", "max_aspect_ratio"]).toContain(
          key,
        );
      }
    }
    // The served entry is the catalog's, plus the simulator notice (api-contract §10).
    const { notices, ...rest } = entry;
    const { notices: catalogNotices, ...catalogRest } = CATALOG[0] as (typeof CATALOG)[number];
    expect(rest).toEqual(JSON.parse(JSON.stringify(catalogRest)));
    expect(notices.slice(0, catalogNotices.length)).toEqual(catalogNotices);
    expect(notices.some((n: string) => /simulat/i.test(n))).toBe(true);
  });

  it("GET /api/v1/openapi.json is a valid OpenAPI 3.1 document, without a key", async () => {
    const res = await t.request("/api/v1/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(doc.servers).toEqual([{ url: t.url }]);
    for (const path of [
      "/api/v1/models",
      "/api/v1/openapi.json",
      "/api/v1/generations",
      "/api/v1/generations/{id}",
      "/api/v1/credits",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
