/**
 * The OpenAPI document: valid OpenAPI 3.1 according to an independent validator, complete
 * (every public path), and derived from the catalog (params, options, model ids).
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { CATALOG, KLING_2_6, type ModelEntry } from "./catalog.js";
import { buildOpenApiDocument } from "./openapi.js";
import { ModelListSchema, TaskSchema } from "./schemas.js";

// biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
type Json = any;

async function validate(doc: Record<string, unknown>) {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc));
  return { result, validator };
}

/** Every "$ref" value anywhere in the document. */
function refs(node: Json, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refs(item, out);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolve(doc: Json, ref: string): Json {
  expect(ref.startsWith("#/")).toBe(true);
  return ref
    .slice(2)
    .split("/")
    .reduce((node, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

function schemaOf(doc: Json, schema: Json): Json {
  return schema?.$ref ? resolve(doc, schema.$ref) : schema;
}

/** A response, with a reference to components/responses followed. */
const responseOf = schemaOf;

/** The alternative of a select param's schema that lists its string options. */
function stringForm(schema: Json): Json {
  return schema.anyOf ? schema.anyOf.find((s: Json) => s.type === "string") : schema;
}

const TASK_FIELDS = [
  "id",
  "object",
  "status",
  "model",
  "reserved_credits",
  "final_credits",
  "created_at",
  "updated_at",
  "result",
  "error",
  "client_request_id",
  "params",
  "started_at",
  "completed_at",
  "references",
];

describe("buildOpenApiDocument", () => {
  const doc: Json = buildOpenApiDocument();

  it("is a valid OpenAPI 3.1 document (independent validator)", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const { result, validator } = await validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    // Every reference resolves.
    expect(() => validator.resolveRefs()).not.toThrow();
    for (const ref of refs(doc)) expect(resolve(doc, ref), ref).toBeDefined();
  });

  it("is checked by a validator that does reject broken documents", async () => {
    const broken: Json = structuredClone(doc);
    delete broken.info;
    expect((await validate(broken)).result.valid).toBe(false);
    const noDescription: Json = structuredClone(doc);
    delete noDescription.paths["/api/v1/credits"].get.responses["200"].description;
    expect((await validate(noDescription)).result.valid).toBe(false);
  });

  it("stays valid after a JSON round trip and with a server URL", async () => {
    const served = JSON.parse(JSON.stringify(buildOpenApiDocument({ serverUrl: "https://api.example.com" })));
    expect(served.servers).toEqual([{ url: "https://api.example.com" }]);
    const { result } = await validate(served);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(buildOpenApiDocument({ version: "9.9.9" }).info).toMatchObject({ version: "9.9.9" });
  });

  it("describes every public path and method", () => {
    const expected: Record<string, string[]> = {
      "/api/v1/models": ["get"],
      "/api/v1/openapi.json": ["get"],
      "/api/v1/generations": ["get", "post"],
      "/api/v1/generations/{id}": ["get"],
      "/api/v1/credits": ["get"],
      "/api/v1/files": ["post"],
      "/api/v1/files/{id}": ["get"],
      "/api/v1/webhooks": ["get", "post"],
      "/api/v1/webhooks/{id}": ["get", "patch", "delete"],
      "/api/v1/webhooks/{id}/rotate-secret": ["post"],
      "/api/v1/webhooks/{id}/test": ["post"],
      "/api/v1/webhooks/{id}/deliveries": ["get"],
      "/api/v1/webhook-events": ["get"],
      "/api/v1/webhook-events/{id}/redeliver": ["post"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(doc.paths[path], path).toBeDefined();
      for (const method of methods) expect(doc.paths[path][method], `${method} ${path}`).toBeDefined();
    }
    // The keyless routes need no key; the rest use the bearer scheme.
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/api/v1/models"].get.security).toEqual([]);
    expect(doc.paths["/api/v1/openapi.json"].get.security).toEqual([]);
    for (const [path, methods] of Object.entries(expected)) {
      if (path === "/api/v1/models" || path === "/api/v1/openapi.json") continue;
      for (const method of methods) {
        expect(doc.paths[path][method].security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
      }
    }
    for (const [path, method] of [
      ["/api/v1/generations", "post"],
      ["/api/v1/generations", "get"],
      ["/api/v1/generations/{id}", "get"],
      ["/api/v1/credits", "get"],
    ] as const) {
      expect(doc.paths[path][method].security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
    }
    const idParam = doc.paths["/api/v1/generations/{id}"].get.parameters.find((p: Json) => p.name === "id");
    expect(idParam).toMatchObject({ in: "path", required: true });
  });

  it("documents create as 202 with Location, a task body and the error envelope", () => {
    const post = doc.paths["/api/v1/generations"].post;
    expect(post.responses["202"].headers.Location).toBeDefined();
    const task = schemaOf(doc, post.responses["202"].content["application/json"].schema);
    expect(Object.keys(task.properties).sort()).toEqual([...TASK_FIELDS].sort());
    expect([...task.required].sort()).toEqual([...TASK_FIELDS].sort());
    for (const status of ["400", "401", "402", "409", "429", "500", "503"]) {
      const error = schemaOf(doc, responseOf(doc, post.responses[status]).content["application/json"].schema);
      expect(error.properties.error.required, status).toEqual(expect.arrayContaining(["code", "message", "requestId"]));
    }
    const idempotency = post.parameters.find((p: Json) => p.name === "Idempotency-Key");
    expect(idempotency).toMatchObject({ in: "header", required: false, schema: { type: "string", maxLength: 255 } });
    expect(
      schemaOf(
        doc,
        responseOf(doc, doc.paths["/api/v1/generations/{id}"].get.responses["404"]).content["application/json"].schema,
      ),
    ).toBeDefined();
  });

  it("documents quota_exceeded (403) where an account quota can refuse: webhook create, uploads, creates", () => {
    const quotaRoutes = [
      ["/api/v1/webhooks", "post"],
      ["/api/v1/files", "post"],
      // Reference URLs are fetched and stored as the account's files.
      ["/api/v1/generations", "post"],
    ] as const;
    for (const [path, method] of quotaRoutes) {
      const forbidden = responseOf(doc, doc.paths[path][method].responses["403"]);
      expect(forbidden.description, `${method} ${path}`).toContain("quota_exceeded");
      expect(forbidden.description).toContain("api_scope_denied");
      expect(schemaOf(doc, forbidden.content["application/json"].schema)).toBe(doc.components.schemas.Error);
    }
    expect(doc.components.schemas.ErrorCode.enum).toContain("quota_exceeded");
    // Reads never add to what a quota counts.
    const readForbidden = (path: string) => responseOf(doc, doc.paths[path].get.responses["403"]).description;
    expect(readForbidden("/api/v1/webhooks")).not.toContain("quota_exceeded");
    expect(readForbidden("/api/v1/files/{id}")).not.toContain("quota_exceeded");
  });

  it("derives GenerationRequest from the catalog: model ids, params and their options", () => {
    const post = doc.paths["/api/v1/generations"].post;
    expect(post.requestBody.required).toBe(true);
    const request = schemaOf(doc, post.requestBody.content["application/json"].schema);
    expect(request.additionalProperties).toBe(false);
    expect(Object.keys(request.properties).sort()).toEqual(["client_request_id", "model", "params", "prompt"]);
    expect([...request.required].sort()).toEqual(["model", "prompt"]);
    expect(request.properties.model.enum).toEqual(CATALOG.map((m) => m.id));
    expect(request.properties.client_request_id.maxLength).toBe(128);

    const params = schemaOf(doc, request.properties.params);
    expect(params.additionalProperties).toBe(false);
    for (const param of KLING_2_6.params) {
      const prop = params.properties[param.key];
      expect(prop, param.key).toBeDefined();
      expect(stringForm(prop).enum).toEqual(param.options);
      expect(prop.default).toEqual(param.default);
    }
    expect(Object.keys(params.properties).sort()).toEqual(
      [...KLING_2_6.params.map((p) => p.key), "referenceMediaItems"].sort(),
    );
    expect(params.properties.referenceMediaItems.maxItems).toBe(KLING_2_6.reference_media?.max_items);
    expect(params.required ?? []).toEqual([]);
  });

  it("follows a different catalog (it is data, not code)", async () => {
    const other: ModelEntry = {
      ...KLING_2_6,
      id: "other-model",
      params: [
        { ...(KLING_2_6.params[0] as ModelEntry["params"][number]), options: ["5", "10", "15"] },
        {
          key: "cfg_scale",
          type: "number",
          required: false,
          default: 0.5,
          options: null,
          min: 0,
          max: 1,
          step: 0.1,
          description: "CFG",
        },
      ],
      reference_media: { ...(KLING_2_6.reference_media as NonNullable<ModelEntry["reference_media"]>), max_items: 3 },
    };
    const custom: Json = buildOpenApiDocument({ models: [other] });
    const { result } = await validate(custom);
    expect(result.errors).toBeUndefined();
    const request = schemaOf(
      custom,
      custom.paths["/api/v1/generations"].post.requestBody.content["application/json"].schema,
    );
    expect(request.properties.model.enum).toEqual(["other-model"]);
    const params = schemaOf(custom, request.properties.params);
    expect(stringForm(params.properties.duration).enum).toEqual(["5", "10", "15"]);
    expect(params.properties.cfg_scale).toMatchObject({ type: "number", minimum: 0, maximum: 1, default: 0.5 });
    expect(params.properties.sound).toBeUndefined();
    expect(params.properties.referenceMediaItems.maxItems).toBe(3);
  });

  it("documents the task and model list with the same schemas the contract exports", () => {
    const schemas = doc.components.schemas;
    const model = schemas.Model;
    expect(Object.keys(model.properties).sort()).toEqual(Object.keys(ModelListSchema.shape.data.element.shape).sort());
    expect(Object.keys(schemas.Generation.properties).sort()).toEqual(Object.keys(TaskSchema.shape).sort());
    expect(schemas.GenerationError.properties.reason.enum).toEqual([
      "provider_error",
      "content_rejected",
      "timeout",
      "invalid_input",
      "canceled",
    ]);
    expect(schemas.Media.required).toEqual(
      expect.arrayContaining([
        "url",
        "poster_url",
        "mime_type",
        "width",
        "height",
        "duration_seconds",
        "has_audio",
        "size_bytes",
        "sha256",
      ]),
    );
    expect(schemas.GenerationResult.required).toEqual(
      expect.arrayContaining(["primary_url", "urls", "media", "expires_at"]),
    );
  });
});

describe("contract zod schemas", () => {
  it("parse the catalog as a model list", () => {
    const list = { object: "list", data: CATALOG };
    expect(ModelListSchema.parse(JSON.parse(JSON.stringify(list)))).toEqual(list);
  });

  it("parse queued, succeeded and failed task objects and reject malformed ones", () => {
    const base = {
      id: "task_abc",
      object: "generation",
      status: "queued",
      model: "kling-2-6",
      reserved_credits: 55,
      final_credits: 0,
      created_at: "2026-05-11T00:00:00.000Z",
      updated_at: "2026-05-11T00:00:00.000Z",
      result: null,
      error: null,
      client_request_id: null,
      params: { duration: "5", sound: "false", aspect_ratio: "1:1" },
      started_at: null,
      completed_at: null,
      references: [],
    };
    expect(TaskSchema.parse(base)).toEqual(base);
    const url = "http://127.0.0.1:8787/media/results/task_abc/video.mp4?expires=1&signature=x";
    const succeeded = {
      ...base,
      status: "succeeded",
      final_credits: 55,
      result: {
        primary_url: url,
        urls: [url],
        media: [
          {
            url,
            poster_url: null,
            mime_type: "video/mp4",
            width: 160,
            height: 160,
            duration_seconds: 5,
            has_audio: false,
            size_bytes: 1234,
            sha256: "0".repeat(64),
          },
        ],
        expires_at: "2026-06-10T00:00:00.000Z",
      },
    };
    expect(TaskSchema.parse(succeeded)).toEqual(succeeded);
    const failed = { ...base, status: "failed", error: { code: "generation_failed", message: "m", reason: "timeout" } };
    expect(TaskSchema.parse(failed)).toEqual(failed);
    expect(TaskSchema.safeParse({ ...base, status: "done" }).success).toBe(false);
    expect(TaskSchema.safeParse({ ...failed, error: { ...failed.error, reason: "other" } }).success).toBe(false);
    expect(TaskSchema.safeParse({ ...base, object: "task" }).success).toBe(false);
    const { params: _params, ...withoutParams } = base;
    expect(TaskSchema.safeParse(withoutParams).success).toBe(false);
  });
});
