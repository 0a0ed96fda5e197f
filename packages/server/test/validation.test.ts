/**
 * POST /api/v1/generations validation over real HTTP (api-contract §1, §2, §4, §5): every
 * rejected body is a 400 validation_failed envelope that names the offending path, and nothing
 * is created or charged.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestResponse, type TestServer } from "./harness.js";

const GENERATIONS = "/api/v1/generations";
const MODEL = "kling-2-6";
const STARTING_CREDITS = 1000;

interface RejectCase {
  name: string;
  /** JSON value to send (serialized by the harness with Content-Type: application/json). */
  json?: unknown;
  /** Raw body to send instead of `json`. */
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Expected `error.details[].path` (at least one detail must have it). */
  path: string;
  /** Optional pattern the matching detail's issue (or the message) must satisfy. */
  issue?: RegExp;
}

const ok = { model: MODEL, prompt: "a red fox in the snow" };
const item = { url: "https://example.com/cat.png", kind: "image" };
// 1000 emoji: each one code point but two UTF-16 code units.
const EMOJI = "\u{1F98A}";

const rejectCases: RejectCase[] = [
  // Body shape
  { name: "body is an array", json: [ok], path: "", issue: /JSON object/ },
  { name: "body is a string", json: "make a video", path: "", issue: /JSON object/ },
  { name: "body is null", json: null, path: "", issue: /JSON object/ },
  { name: "body is a number", json: 42, path: "", issue: /JSON object/ },
  { name: "empty body", body: "", path: "", issue: /empty/ },
  { name: "malformed JSON", body: '{"model": "kling-2-6", "prompt": ', path: "" },
  {
    name: "invalid UTF-8 bytes",
    body: Buffer.from('{"model":"kling-2-6","prompt":"a \xff\xfe b"}', "latin1"),
    path: "",
    issue: /UTF-8/,
  },
  { name: "deeply nested arrays", body: `${"[".repeat(30_000)}${"]".repeat(30_000)}`, path: "" },
  { name: "trailing garbage after JSON", body: `${JSON.stringify(ok)} x`, path: "" },
  {
    name: "non-JSON content type",
    body: JSON.stringify(ok),
    headers: { "content-type": "text/plain" },
    path: "",
    issue: /Content-Type/,
  },
  {
    name: "form content type",
    body: "model=kling-2-6&prompt=hi",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    path: "",
    issue: /Content-Type/,
  },
  // Top-level fields
  { name: "unknown top-level field", json: { ...ok, foo: 1 }, path: "foo", issue: /unknown field/ },
  {
    name: "top-level files field",
    json: { ...ok, files: [item] },
    path: "files",
    issue: /referenceMediaItems/,
  },
  { name: "top-level __proto__ field", body: `{"model":"${MODEL}","prompt":"x","__proto__":{}}`, path: "__proto__" },
  // Model
  { name: "model missing", json: { prompt: "x" }, path: "model", issue: /required/ },
  { name: "model is a number", json: { model: 26, prompt: "x" }, path: "model" },
  { name: "model is null", json: { model: null, prompt: "x" }, path: "model" },
  { name: "model is empty", json: { model: "", prompt: "x" }, path: "model" },
  { name: "model unknown", json: { model: "kling-9-9", prompt: "x" }, path: "model", issue: /unknown model/ },
  { name: "model wrong case", json: { model: "KLING-2-6", prompt: "x" }, path: "model", issue: /unknown model/ },
  // Prompt
  { name: "prompt missing", json: { model: MODEL }, path: "prompt", issue: /required/ },
  { name: "prompt is a number", json: { model: MODEL, prompt: 5 }, path: "prompt", issue: /string/ },
  { name: "prompt is an array", json: { model: MODEL, prompt: ["x"] }, path: "prompt", issue: /string/ },
  { name: "prompt is empty", json: { model: MODEL, prompt: "" }, path: "prompt", issue: /empty/ },
  { name: "prompt is whitespace only", json: { model: MODEL, prompt: " \t\n\u00a0 " }, path: "prompt", issue: /empty/ },
  { name: "prompt contains NUL", json: { model: MODEL, prompt: "a\u0000b" }, path: "prompt", issue: /NUL/ },
  {
    name: "prompt with a lone surrogate escape",
    body: `{"model":"${MODEL}","prompt":"a \\ud800 b"}`,
    path: "prompt",
    issue: /Unicode/,
  },
  {
    name: "client_request_id with a lone surrogate escape",
    body: `{"model":"${MODEL}","prompt":"x","client_request_id":"\\udfff"}`,
    path: "client_request_id",
    issue: /Unicode/,
  },
  {
    name: "prompt of 1001 code points",
    json: { model: MODEL, prompt: "a".repeat(1001) },
    path: "prompt",
    issue: /1000/,
  },
  {
    name: "prompt of 1001 emoji",
    json: { model: MODEL, prompt: EMOJI.repeat(1001) },
    path: "prompt",
    issue: /got 1001/,
  },
  // Params
  { name: "params is an array", json: { ...ok, params: [] }, path: "params", issue: /object/ },
  { name: "params is a string", json: { ...ok, params: "duration=5" }, path: "params", issue: /object/ },
  { name: "params is a number", json: { ...ok, params: 5 }, path: "params", issue: /object/ },
  { name: "unknown param key", json: { ...ok, params: { fps: 30 } }, path: "params.fps", issue: /unknown parameter/ },
  {
    name: "param key differing in case",
    json: { ...ok, params: { Duration: "5" } },
    path: "params.Duration",
    issue: /unknown parameter/,
  },
  { name: 'duration "7"', json: { ...ok, params: { duration: "7" } }, path: "params.duration", issue: /"5", "10"/ },
  { name: "duration 7", json: { ...ok, params: { duration: 7 } }, path: "params.duration" },
  { name: "duration 5.5", json: { ...ok, params: { duration: 5.5 } }, path: "params.duration" },
  { name: "duration null", json: { ...ok, params: { duration: null } }, path: "params.duration" },
  { name: "duration [5]", json: { ...ok, params: { duration: [5] } }, path: "params.duration" },
  { name: "duration {}", json: { ...ok, params: { duration: {} } }, path: "params.duration" },
  { name: 'duration " 5"', json: { ...ok, params: { duration: " 5" } }, path: "params.duration" },
  { name: 'sound "yes"', json: { ...ok, params: { sound: "yes" } }, path: "params.sound", issue: /"false", "true"/ },
  { name: 'sound "True"', json: { ...ok, params: { sound: "True" } }, path: "params.sound" },
  { name: "sound 1", json: { ...ok, params: { sound: 1 } }, path: "params.sound" },
  {
    name: 'aspect_ratio "4:3"',
    json: { ...ok, params: { aspect_ratio: "4:3" } },
    path: "params.aspect_ratio",
    issue: /"1:1", "16:9", "9:16"/,
  },
  // client_request_id
  { name: "client_request_id is a number", json: { ...ok, client_request_id: 7 }, path: "client_request_id" },
  { name: "client_request_id is an object", json: { ...ok, client_request_id: {} }, path: "client_request_id" },
  {
    name: "client_request_id of 129 chars",
    json: { ...ok, client_request_id: "c".repeat(129) },
    path: "client_request_id",
    issue: /128/,
  },
  // Reference media
  {
    name: "referenceMediaItems is not an array",
    json: { ...ok, params: { referenceMediaItems: item } },
    path: "params.referenceMediaItems",
    issue: /array/,
  },
  {
    name: "referenceMediaItems is a string",
    json: { ...ok, params: { referenceMediaItems: "https://example.com/cat.png" } },
    path: "params.referenceMediaItems",
    issue: /array/,
  },
  {
    name: "two reference items (max 1)",
    json: { ...ok, params: { referenceMediaItems: [item, item] } },
    path: "params.referenceMediaItems",
    issue: /at most 1/,
  },
  {
    name: "reference item is not an object",
    json: { ...ok, params: { referenceMediaItems: ["https://example.com/cat.png"] } },
    path: "params.referenceMediaItems[0]",
    issue: /object/,
  },
  {
    name: "reference item is null",
    json: { ...ok, params: { referenceMediaItems: [null] } },
    path: "params.referenceMediaItems[0]",
    issue: /object/,
  },
  {
    name: "reference item without url",
    json: { ...ok, params: { referenceMediaItems: [{ kind: "image" }] } },
    path: "params.referenceMediaItems[0].url",
    issue: /required/,
  },
  {
    name: "reference item with a relative url",
    json: { ...ok, params: { referenceMediaItems: [{ kind: "image", url: "/cat.png" }] } },
    path: "params.referenceMediaItems[0].url",
  },
  {
    name: 'reference item kind "video"',
    json: { ...ok, params: { referenceMediaItems: [{ ...item, kind: "video" }] } },
    path: "params.referenceMediaItems[0].kind",
    issue: /"image"/,
  },
  {
    name: "reference item without kind",
    json: { ...ok, params: { referenceMediaItems: [{ url: item.url }] } },
    path: "params.referenceMediaItems[0].kind",
  },
  {
    name: "reference item with an unknown field",
    json: { ...ok, params: { referenceMediaItems: [{ ...item, caption: "cat" }] } },
    path: "params.referenceMediaItems[0].caption",
    issue: /unknown field/,
  },
  {
    name: "reference item whose URL this server did not issue",
    json: { ...ok, params: { referenceMediaItems: [item] } },
    path: "params.referenceMediaItems[0].url",
    issue: /Files API/,
  },
  // Idempotency-Key header
  {
    name: "Idempotency-Key of 256 chars",
    json: ok,
    headers: { "idempotency-key": "k".repeat(256) },
    path: "Idempotency-Key",
  },
  {
    name: "Idempotency-Key with non-ASCII characters",
    json: ok,
    headers: { "idempotency-key": "cl\u00e9-1" },
    path: "Idempotency-Key",
  },
  {
    name: "Idempotency-Key with a control character (tab)",
    json: ok,
    headers: { "idempotency-key": "two\twords" },
    path: "Idempotency-Key",
  },
  { name: "empty Idempotency-Key", json: ok, headers: { "idempotency-key": "" }, path: "Idempotency-Key" },
];

function expectValidationFailed(res: TestResponse, path: string, issue?: RegExp) {
  expect(res.status, res.text).toBe(400);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const requestId = res.headers.get("x-request-id");
  expect(requestId).toMatch(/^req_[0-9A-Za-z]+$/);
  expect(res.body.error.code).toBe("validation_failed");
  expect(res.body.error.requestId).toBe(requestId);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(Array.isArray(res.body.error.details), res.text).toBe(true);
  const matching = res.body.error.details.filter((d: { path: string }) => d.path === path);
  expect(matching.length, `no detail with path "${path}" in ${res.text}`).toBeGreaterThan(0);
  for (const d of res.body.error.details) {
    expect(typeof d.issue).toBe("string");
  }
  if (issue) {
    const texts = [...matching.map((d: { issue: string }) => d.issue), res.body.error.message];
    expect(
      texts.some((s) => issue.test(s)),
      `${issue} not in ${res.text}`,
    ).toBe(true);
  }
}

describe("POST /api/v1/generations validation", () => {
  let t: TestServer;
  let acceptKey: string;

  beforeAll(async () => {
    // No worker: accepted tasks stay queued, which is all these tests need. The table sends more
    // requests per key than the default limits allow; rate-limit.test.ts covers those.
    t = await startTestServer({
      WORKER_CONCURRENCY: "0",
      RATE_LIMIT_CREATE_PER_MIN: "0",
      RATE_LIMIT_READ_PER_MIN: "0",
    });
    acceptKey = (await t.createAccount(STARTING_CREDITS)).key;
  });
  afterAll(() => t.close());

  async function expectNothingCreated(key: string) {
    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.status).toBe(200);
    expect(credits.body).toEqual({ current_credits: STARTING_CREDITS });
    const list = await t.request(GENERATIONS, { key });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ object: "list", data: [], has_more: false });
  }

  it.each(rejectCases)("rejects: $name", async (c) => {
    // A fresh account per case, so one case's failure cannot hide or cause another's.
    const rejectKey = (await t.createAccount(STARTING_CREDITS)).key;
    const res =
      c.body === undefined
        ? await t.request(GENERATIONS, { key: rejectKey, json: c.json, headers: c.headers ?? {} })
        : await t.request(GENERATIONS, {
            key: rejectKey,
            method: "POST",
            ...(c.body === "" ? {} : { body: c.body }),
            headers: { "content-type": "application/json", ...(c.headers ?? {}) },
          });
    expectValidationFailed(res, c.path, c.issue);
    expect(res.headers.get("location")).toBeNull();
    await expectNothingCreated(rejectKey);
  });

  it("reports every issue in one response", async () => {
    const rejectKey = (await t.createAccount(STARTING_CREDITS)).key;
    const res = await t.request(GENERATIONS, {
      key: rejectKey,
      json: { model: MODEL, prompt: "", params: { duration: "7", sound: "yes", extra: 1 }, files: [] },
    });
    expectValidationFailed(res, "prompt");
    const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(["files", "params.duration", "params.extra", "params.sound", "prompt"]);
    expect(res.body.error.message).toMatch(/and 4 more issues/);
    await expectNothingCreated(rejectKey);
  });

  it("answers a body of 6,000 unknown keys with a small error: 20 details and a count of the rest", async () => {
    const rejectKey = (await t.createAccount(STARTING_CREDITS)).key;
    const keys = Array.from({ length: 6000 }, (_, i) => `k${String(i).padStart(4, "0")}`);
    const body = JSON.stringify({ ...ok, ...Object.fromEntries(keys.map((k) => [k, 0])) });
    expect(body.length).toBeLessThanOrEqual(64 * 1024);
    const res = await t.request(GENERATIONS, {
      key: rejectKey,
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    expectValidationFailed(res, "k0000", /unknown field/);
    const details = res.body.error.details as { path: string; issue: string }[];
    expect(details).toHaveLength(21);
    expect(details.slice(0, 20).map((d) => d.path)).toEqual(keys.slice(0, 20));
    expect(details[20]).toEqual({ path: "", issue: "5980 more issues not shown" });
    expect(res.body.error.message).toMatch(/and 5999 more issues/);
    expect(Buffer.byteLength(res.text)).toBeLessThan(8 * 1024);
    await expectNothingCreated(rejectKey);
  });

  it("clips a single enormous unknown key in the details and the message", async () => {
    const rejectKey = (await t.createAccount(STARTING_CREDITS)).key;
    const longKey = "x".repeat(60_000);
    const res = await t.request(GENERATIONS, { key: rejectKey, json: { ...ok, [longKey]: 1 } });
    expect(res.status, res.text.slice(0, 500)).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    const [detail] = res.body.error.details as { path: string; issue: string }[];
    expect(detail?.path.startsWith("xxxx")).toBe(true);
    expect(detail?.path.endsWith("…")).toBe(true);
    expect(detail?.issue).toMatch(/unknown field/);
    expect(Buffer.byteLength(res.text)).toBeLessThan(4 * 1024);
    await expectNothingCreated(rejectKey);
  });

  it("a rejected Idempotency-Key request stores nothing: a corrected retry with the same key succeeds", async () => {
    const { key } = await t.createAccount(100);
    const idem = { "idempotency-key": "fix-and-retry-1" };
    const bad = await t.request(GENERATIONS, { key, json: { ...ok, params: { duration: "7" } }, headers: idem });
    expectValidationFailed(bad, "params.duration");
    const good = await t.request(GENERATIONS, { key, json: ok, headers: idem });
    expect(good.status, good.text).toBe(202);
    expect(good.headers.get("idempotent-replayed")).toBeNull();
    const credits = await t.request("/api/v1/credits", { key });
    expect(credits.body).toEqual({ current_credits: 45 });
  });

  describe("accepted bodies", () => {
    let expectedBalance = STARTING_CREDITS;

    async function create(json: unknown, headers: Record<string, string> = {}) {
      const res = await t.request(GENERATIONS, { key: acceptKey, json, headers });
      expect(res.status, res.text).toBe(202);
      expect(res.body.object).toBe("generation");
      expect(res.body.id).toMatch(/^task_/);
      expect(res.headers.get("location")).toBe(`${GENERATIONS}/${res.body.id}`);
      expect(res.headers.get("x-request-id")).toMatch(/^req_/);
      expect(res.body.reserved_credits).toBe(55);
      expectedBalance -= 55;
      const credits = await t.request("/api/v1/credits", { key: acceptKey });
      expect(credits.body).toEqual({ current_credits: expectedBalance });
      // What GET returns is what the create response said.
      const got = await t.request(`${GENERATIONS}/${res.body.id}`, { key: acceptKey });
      expect(got.status).toBe(200);
      expect(got.body.params).toEqual(res.body.params);
      expect(got.body.client_request_id).toEqual(res.body.client_request_id);
      return res.body;
    }

    it("applies defaults when params are omitted", async () => {
      const task = await create(ok);
      expect(task.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
      expect(task.client_request_id).toBeNull();
      expect(task.model).toBe(MODEL);
      expect(task.status).toBe("queued");
    });

    it("applies defaults for an empty params object", async () => {
      const task = await create({ ...ok, params: {} });
      expect(task.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
    });

    it("normalizes numbers and booleans to their string options", async () => {
      const task = await create({ ...ok, params: { duration: 10, sound: true } });
      expect(task.params).toEqual({ duration: "10", sound: "true", aspect_ratio: "1:1" });
    });

    it("keeps canonical string values", async () => {
      const task = await create({ ...ok, params: { duration: "10", sound: "false", aspect_ratio: "9:16" } });
      expect(task.params).toEqual({ duration: "10", sound: "false", aspect_ratio: "9:16" });
    });

    it("normalizes sound: false and duration: 5", async () => {
      const task = await create({ ...ok, params: { duration: 5, sound: false, aspect_ratio: "16:9" } });
      expect(task.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "16:9" });
    });

    it("accepts an empty referenceMediaItems list", async () => {
      const task = await create({ ...ok, params: { referenceMediaItems: [] } });
      expect(task.params).toEqual({ duration: "5", sound: "false", aspect_ratio: "1:1" });
    });

    it("echoes client_request_id", async () => {
      const task = await create({ ...ok, client_request_id: "order-42" });
      expect(task.client_request_id).toBe("order-42");
    });

    it("accepts a client_request_id of 128 chars", async () => {
      const id = "c".repeat(128);
      const task = await create({ ...ok, client_request_id: id });
      expect(task.client_request_id).toBe(id);
    });

    it("accepts a prompt of 1000 code points", async () => {
      await create({ model: MODEL, prompt: "a".repeat(1000) });
    });

    it("accepts 1000 emoji (1000 code points, 2000 UTF-16 units)", async () => {
      const prompt = EMOJI.repeat(1000);
      expect(prompt.length).toBe(2000);
      await create({ model: MODEL, prompt });
    });

    it("accepts a JSON content type with a charset", async () => {
      const res = await t.request(GENERATIONS, {
        key: acceptKey,
        method: "POST",
        body: JSON.stringify(ok),
        headers: { "content-type": "application/json; charset=utf-8" },
      });
      expect(res.status, res.text).toBe(202);
      expectedBalance -= 55;
    });

    it("accepts an Idempotency-Key of 255 printable ASCII chars", async () => {
      const key = `${"!~".repeat(127)}k`;
      expect(key.length).toBe(255);
      await create(ok, { "idempotency-key": key });
    });
  });
});
