/**
 * The OpenAPI document is complete: operation ids for code generators, the security of each
 * route, the statuses and headers the server's middleware adds to every answer, constraints as
 * schema keywords, the top-level webhooks, and an error code clients must treat as open. The
 * request schema is checked against the server's validator on the same bodies, both ways.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { CATALOG, KLING_2_6, type ModelEntry } from "./catalog.js";
import { ERROR_STATUS } from "./errors.js";
import { buildOpenApiDocument } from "./openapi.js";
import { validateGenerationRequest } from "./validate.js";
import { WEBHOOK_EVENT_TYPES } from "./webhook-schemas.js";

// biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
type Json = any;

const doc: Json = buildOpenApiDocument();
const METHODS = ["get", "post", "put", "patch", "delete"];

function resolve(node: Json): Json {
  if (typeof node?.$ref !== "string") return node;
  return node.$ref
    .slice(2)
    .split("/")
    .reduce((at: Json, part: string) => at?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

function operations(document: Json = doc): { path: string; method: string; op: Json }[] {
  return Object.entries<Json>(document.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((method) => ({ path, method, op: item[method] })),
  );
}

const op = (method: string, path: string) => doc.paths[path][method];

describe("operation ids", () => {
  it("name every operation, once, as an SDK method would be named", () => {
    const ids = Object.fromEntries(
      operations().map(({ path, method, op }) => [`${method.toUpperCase()} ${path}`, op.operationId]),
    );
    expect(ids).toEqual({
      "GET /api/v1/models": "listModels",
      "GET /api/v1/openapi.json": "getOpenApiDocument",
      "POST /api/v1/generations": "createGeneration",
      "GET /api/v1/generations": "listGenerations",
      "GET /api/v1/generations/{id}": "getGeneration",
      "POST /api/v1/generations/{id}/cancel": "cancelGeneration",
      "GET /api/v1/generations/{id}/events": "streamGenerationEvents",
      "GET /api/v1/credits": "getCredits",
      "GET /api/v1/credits/ledger": "listLedgerEntries",
      "GET /api/v1/usage": "getUsage",
      "GET /admin/v1/usage": "getAdminUsage",
      "POST /api/v1/files": "uploadFile",
      "GET /api/v1/files": "listFiles",
      "GET /api/v1/files/{id}": "getFile",
      "DELETE /api/v1/files/{id}": "deleteFile",
      "POST /api/v1/webhooks": "createWebhookEndpoint",
      "GET /api/v1/webhooks": "listWebhookEndpoints",
      "GET /api/v1/webhooks/{id}": "getWebhookEndpoint",
      "PATCH /api/v1/webhooks/{id}": "updateWebhookEndpoint",
      "DELETE /api/v1/webhooks/{id}": "deleteWebhookEndpoint",
      "POST /api/v1/webhooks/{id}/rotate-secret": "rotateWebhookSecret",
      "POST /api/v1/webhooks/{id}/test": "sendWebhookTestEvent",
      "GET /api/v1/webhooks/{id}/deliveries": "listWebhookDeliveries",
      "GET /api/v1/webhook-events": "listWebhookEvents",
      "POST /api/v1/webhook-events/{id}/redeliver": "redeliverWebhookEvent",
      "GET /api/v1/keys": "listApiKeys",
      "POST /api/v1/keys": "createApiKey",
      "DELETE /api/v1/keys/{id}": "revokeApiKey",
    });
    const all = [...Object.values(ids), ...Object.values<Json>(doc.webhooks).map((w) => w.post.operationId)];
    expect(new Set(all).size).toBe(all.length);
  });
});

describe("security", () => {
  it("defaults to the API key; the keyless routes say so with an empty requirement", () => {
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    const keyless = operations().filter(({ op }) => op.security?.length === 0);
    expect(keyless.map(({ path }) => path).sort()).toEqual(["/api/v1/models", "/api/v1/openapi.json"]);
    for (const { op } of keyless) expect(op.responses["401"]).toBeUndefined();
    expect(op("get", "/admin/v1/usage").security).toEqual([{ adminToken: [] }]);
  });
});

describe("what every answer carries", () => {
  it("X-Request-Id (required) and the RateLimit fields on every response of every operation", () => {
    for (const { path, method, op } of operations()) {
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        const headers = resolve(response).headers;
        const where = `${method} ${path} ${status}`;
        expect(resolve(headers?.["X-Request-Id"]), where).toMatchObject({ required: true });
        expect(resolve(headers?.RateLimit), where).toBeDefined();
        expect(resolve(headers?.["RateLimit-Policy"]), where).toBeDefined();
      }
    }
    // Absent when the operator turns a budget off: documented, not required.
    expect(doc.components.headers.RateLimit.required).toBeUndefined();
  });

  it("429 with Retry-After, 500 internal_error and 503 public_api_disabled on every public operation", () => {
    for (const { path, method, op } of operations()) {
      const where = `${method} ${path}`;
      expect(resolve(op.responses["500"]).description, where).toContain("internal_error");
      if (!path.startsWith("/api/v1/")) continue;
      expect(resolve(resolve(op.responses["429"]).headers["Retry-After"]), where).toBeDefined();
      expect(resolve(op.responses["503"]).description, where).toContain("public_api_disabled");
    }
  });

  it("401 and 403 on every keyed public operation", () => {
    for (const { path, method, op } of operations()) {
      if (!path.startsWith("/api/v1/") || op.security?.length === 0) continue;
      expect(resolve(op.responses["401"]).description, `${method} ${path}`).toContain("api_key_missing");
      expect(resolve(op.responses["403"]).description, `${method} ${path}`).toContain("api_scope_denied");
    }
  });

  it("405 method_not_allowed with Allow, as a reusable response", () => {
    const notAllowed = doc.components.responses.MethodNotAllowed;
    expect(notAllowed.description).toContain("method_not_allowed");
    expect(resolve(notAllowed.headers.Allow)).toMatchObject({ required: true });
    expect(resolve(notAllowed.content["application/json"].schema)).toBe(doc.components.schemas.Error);
  });

  it("the headers of particular answers: Location, Idempotent-Replayed, Preference-Applied, Retry-After", () => {
    const create = op("post", "/api/v1/generations").responses;
    expect(Object.keys(create["202"].headers)).toEqual(
      expect.arrayContaining(["Location", "Idempotent-Replayed", "Preference-Applied"]),
    );
    expect(create["402"].headers["Idempotent-Replayed"]).toBeDefined();
    expect(create["409"].headers["Retry-After"]).toBeDefined();
    expect(op("get", "/api/v1/generations/{id}").responses["200"].headers["Preference-Applied"]).toBeDefined();
    expect(op("post", "/api/v1/generations/{id}/cancel").responses["409"].headers["Retry-After"]).toBeDefined();
    for (const path of ["/api/v1/files", "/api/v1/generations/{id}/cancel", "/api/v1/generations/{id}/events"]) {
      const method = path === "/api/v1/generations/{id}/events" ? "get" : "post";
      expect(resolve(op(method, path).responses["503"]).headers["Retry-After"], path).toBeDefined();
    }
    const stream = op("get", "/api/v1/generations/{id}/events").responses["200"];
    expect(Object.keys(stream.content)).toEqual(["text/event-stream"]);
    expect(stream.headers["X-Accel-Buffering"]).toMatchObject({ required: true });
  });

  it("references every reusable component it defines, but the 405 no operation can name", () => {
    const text = JSON.stringify({ paths: doc.paths, webhooks: doc.webhooks, components: doc.components });
    for (const kind of ["responses", "headers", "schemas"]) {
      for (const name of Object.keys(doc.components[kind])) {
        if (kind === "responses" && name === "MethodNotAllowed") continue;
        expect(text, `${kind}/${name}`).toContain(`"#/components/${kind}/${name}"`);
      }
    }
  });
});

describe("list routes", () => {
  const lists = operations().filter(({ op }) => op.parameters?.some((p: Json) => p.name === "limit"));

  it("take limit (1-100, default 20) and starting_after, and document the 400 of a bad query", () => {
    expect(lists.map(({ path }) => path).sort()).toEqual(
      [
        "/api/v1/credits/ledger",
        "/api/v1/files",
        "/api/v1/generations",
        "/api/v1/keys",
        "/api/v1/webhook-events",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}/deliveries",
      ].sort(),
    );
    for (const { path, op } of lists) {
      const limit = op.parameters.find((p: Json) => p.name === "limit");
      expect(limit.schema, path).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 20 });
      expect(
        op.parameters.find((p: Json) => p.name === "starting_after"),
        path,
      ).toBeDefined();
      expect(resolve(op.responses["400"]).description, path).toContain("validation_failed");
    }
    expect(resolve(op("get", "/api/v1/usage").responses["400"])).toBeDefined();
  });
});

describe("constraints as schema keywords", () => {
  const requestOf = (document: Json) =>
    resolve.call(null, document.paths["/api/v1/generations"].post.requestBody.content["application/json"].schema);

  it("prompt: required, not blank, at most the model's max_prompt_length", () => {
    const prompt = requestOf(doc).properties.prompt;
    expect(prompt).toMatchObject({ type: "string", minLength: 1, maxLength: KLING_2_6.max_prompt_length });
    expect(new RegExp(prompt.pattern, "u").test("   ")).toBe(false);
    expect(new RegExp(prompt.pattern, "u").test(" a ")).toBe(true);
  });

  it("referenceMediaItems.kind lists what the catalog's models accept (images for kling-2-6)", () => {
    const item = doc.components.schemas.ReferenceMediaItem;
    expect(item.properties.kind.enum).toEqual(KLING_2_6.reference_media?.kinds);
    expect(item.properties.kind.enum).toEqual(["image"]);
    const policy = KLING_2_6.reference_media as NonNullable<ModelEntry["reference_media"]>;
    const video: ModelEntry = { ...KLING_2_6, id: "video-model", reference_media: { ...policy, kinds: ["video"] } };
    const other = buildOpenApiDocument({ models: [KLING_2_6, video] }) as Json;
    expect(other.components.schemas.ReferenceMediaItem.properties.kind.enum).toEqual(["image", "video"]);
  });

  it("the upload: a binary file part, the kinds and models, and the rules from the catalog", () => {
    const upload = op("post", "/api/v1/files");
    const multipart = upload.requestBody.content["multipart/form-data"];
    expect(multipart.schema.properties.file).toMatchObject({
      type: "string",
      contentMediaType: "application/octet-stream",
    });
    expect(multipart.encoding.file.contentType).toContain("image/png");
    expect(multipart.schema.properties.kind.enum).toEqual(["image", "video", "audio"]);
    expect(multipart.schema.properties.model.enum).toEqual(CATALOG.map((m) => m.id));
    for (const rule of ["10 MB", "image/jpeg", "image/png", "image/webp", "at least 300 px", "from 0.4 to 2.5"]) {
      expect(upload.description).toContain(rule);
    }
    expect(Object.keys(upload.responses)).toEqual(expect.arrayContaining(["201", "400", "413", "415", "503"]));
  });
});

describe("webhooks", () => {
  it("one entry per event the server sends, signed with Standard Webhooks headers, acknowledged by any 2xx", () => {
    expect(Object.keys(doc.webhooks).sort()).toEqual([...WEBHOOK_EVENT_TYPES, "webhook.test"].sort());
    for (const [type, item] of Object.entries<Json>(doc.webhooks)) {
      const post = item.post;
      const headers = post.parameters.filter((p: Json) => p.in === "header");
      expect(headers.map((h: Json) => [h.name, h.required])).toEqual([
        ["webhook-id", true],
        ["webhook-timestamp", true],
        ["webhook-signature", true],
      ]);
      const body = post.requestBody.content["application/json"].schema;
      expect(body.properties.type.enum ?? [body.properties.type.const]).toEqual([type]);
      expect(body.required).toEqual(expect.arrayContaining(["id", "type", "api_version", "created_at", "data"]));
      if (type !== "webhook.test") expect(body.properties.data.$ref).toBe("#/components/schemas/Generation");
      expect(Object.keys(post.responses)).toEqual(["2XX"]);
    }
  });
});

describe("error codes", () => {
  it("list the known codes and admit codes added later", () => {
    const code = doc.components.schemas.Error.properties.error.properties.code;
    expect(code.anyOf).toEqual([{ $ref: "#/components/schemas/ErrorCode" }, { type: "string" }]);
    expect(code.description).toMatch(/added later/);
    expect(doc.components.schemas.ErrorCode.enum).toEqual(Object.keys(ERROR_STATUS));
  });
});

describe("the request schema and the server's validator agree", () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema({ ...doc, $id: "doc.json" });
  const documentAccepts = ajv.getSchema("doc.json#/components/schemas/GenerationRequest");
  const base = { model: "kling-2-6", prompt: "a red fox in the snow" };
  const withParams = (params: Record<string, unknown>) => ({ ...base, params });

  const bodies: [string, unknown][] = [
    ["no params", base],
    ["string options", withParams({ duration: "10", sound: "true", aspect_ratio: "16:9" })],
    // api-contract §4: a number or boolean whose string form is an option is accepted.
    ["numbers and booleans", withParams({ duration: 5, sound: false })],
    ["10 as a number", withParams({ duration: 10, sound: true })],
    ["an image reference", withParams({ referenceMediaItems: [{ url: "https://h.test/media/f", kind: "image" }] })],
    ["a number that is no option", withParams({ duration: 7 })],
    ["a string that is no option", withParams({ duration: "7" })],
    ["a fraction", withParams({ duration: 5.5 })],
    ["a padded option", withParams({ duration: "05" })],
    ["null", withParams({ duration: null })],
    ["a boolean for a string select", withParams({ aspect_ratio: true })],
    ["a number for a boolean select", withParams({ sound: 0 })],
    ["an unknown param", withParams({ fps: "24" })],
    ["a video reference", withParams({ referenceMediaItems: [{ url: "https://h.test/media/f", kind: "video" }] })],
    ["two references", withParams({ referenceMediaItems: Array(2).fill({ url: "https://h.test/f", kind: "image" }) })],
    ["an empty prompt", { ...base, prompt: "" }],
    ["a blank prompt", { ...base, prompt: " \n\t " }],
    ["a NUL in the prompt", { ...base, prompt: "a\u0000b" }],
    ["the longest prompt", { ...base, prompt: "x".repeat(KLING_2_6.max_prompt_length) }],
    ["a prompt too long", { ...base, prompt: "x".repeat(KLING_2_6.max_prompt_length + 1) }],
    ["no prompt", { model: "kling-2-6" }],
    ["an unknown field", { ...base, files: [] }],
  ];

  it.each(bodies)("%s", (_, body) => {
    const server = validateGenerationRequest(body).ok;
    expect(documentAccepts?.(body), JSON.stringify(ajv.errors ?? documentAccepts?.errors)).toBe(server);
  });

  it("accepts numbers and booleans, and says so in the params' schemas", () => {
    expect(validateGenerationRequest(withParams({ duration: 5, sound: false })).ok).toBe(true);
    const params = resolve(doc.components.schemas.GenerationRequest.properties.params);
    expect(params.properties.duration.anyOf).toEqual(
      expect.arrayContaining([
        { type: "string", enum: ["5", "10"] },
        { type: "number", enum: [5] },
      ]),
    );
    expect(params.properties.sound.anyOf).toEqual(expect.arrayContaining([{ type: "boolean", enum: [false] }]));
    expect(params.properties.duration.default).toBe("5");
  });
});
