/** Live status in the OpenAPI document: the SSE route, and Prefer / Preference-Applied on GET and create. */
import { describe, expect, it } from "vitest";
import { buildOpenApiDocument } from "./openapi.js";

// biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
const doc = buildOpenApiDocument() as any;
// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI parameter object
const param = (op: { parameters?: any[] }, name: string): any => op.parameters?.find((p) => p.name === name);

describe("live status in the OpenAPI document", () => {
  it("documents the events route as text/event-stream with Last-Event-ID, its 204 and its refusals", () => {
    const events = doc.paths["/api/v1/generations/{id}/events"].get;
    expect(events.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(events.responses["200"].content)).toEqual(["text/event-stream"]);
    expect(events.description).toMatch(/Last-Event-ID/);
    expect(events.description).toMatch(/15 s/);
    expect(param(events, "Last-Event-ID")).toMatchObject({ in: "header", required: false });
    expect(param(events, "id")).toMatchObject({ in: "path", required: true });
    expect(Object.keys(events.responses).sort()).toEqual(["200", "204", "401", "403", "404", "429", "500", "503"]);
    expect(events.responses["429"].content["application/json"].schema).toBeDefined();
  });

  it("adds Prefer to GET and create, and Preference-Applied to their answers", () => {
    const get = doc.paths["/api/v1/generations/{id}"].get;
    const post = doc.paths["/api/v1/generations"].post;
    for (const op of [get, post]) {
      expect(param(op, "Prefer")).toMatchObject({ in: "header", required: false });
      expect(param(op, "Prefer").description).toMatch(/wait=N/);
    }
    expect(get.responses["200"].headers["Preference-Applied"]).toBeDefined();
    expect(post.responses["202"].headers["Preference-Applied"]).toBeDefined();
    expect(post.responses["202"].headers.Location).toBeDefined();
  });
});
