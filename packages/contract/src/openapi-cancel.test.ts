/** The cancel route in the OpenAPI document: its responses, security, and examples that match their schemas. */
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS } from "./errors.js";
import { buildOpenApiDocument } from "./openapi.js";
import { canceledTaskExample, notCancelableExample } from "./openapi-cancel.js";
import { ErrorEnvelopeSchema, TaskSchema } from "./schemas.js";

describe("POST /api/v1/generations/{id}/cancel in the OpenAPI document", () => {
  // biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
  const doc = buildOpenApiDocument() as any;
  const operation = doc.paths["/api/v1/generations/{id}/cancel"]?.post;

  it("is documented with every answer it gives, behind the API key", () => {
    expect(operation).toBeDefined();
    expect(Object.keys(operation.responses).sort()).toEqual(["200", "401", "403", "404", "409", "429", "500", "503"]);
    expect(operation.security).toEqual([{ bearerAuth: [] }]);
    expect(operation.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(["path:id"]);
    expect(operation.description).toMatch(/generations:create/);
    expect(operation.responses["409"].description).toMatch(/not_cancelable/);
  });

  it("gives examples that the schemas accept", () => {
    expect(TaskSchema.safeParse(canceledTaskExample).success).toBe(true);
    expect(ErrorEnvelopeSchema.safeParse(notCancelableExample).success).toBe(true);
    expect(operation.responses["200"].content["application/json"].example).toEqual(canceledTaskExample);
  });

  it("has the error code and the failure reason it answers with", () => {
    expect(ERROR_STATUS.not_cancelable).toBe(409);
    const reasons = doc.components.schemas.GenerationError.properties.reason.enum;
    expect(reasons).toContain("canceled");
  });

  it("keeps the document valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });
});
