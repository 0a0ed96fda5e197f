/** File management in the OpenAPI document: list and delete, their parameters, answers and schemas. */
import { describe, expect, it } from "vitest";
import { FileDeletionSchema } from "./file-schemas.js";
import { buildOpenApiDocument } from "./openapi.js";

// biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
const doc = buildOpenApiDocument() as any;

describe("file management in the OpenAPI document", () => {
  it("lists files with the common page parameters and a kind filter", () => {
    const list = doc.paths["/api/v1/files"].get;
    expect(list.security).toEqual([{ bearerAuth: [] }]);
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(["limit", "starting_after", "kind"]);
    const kind = list.parameters.find((p: { name: string }) => p.name === "kind");
    expect(kind.schema.enum).toEqual(["image", "video", "audio"]);
    expect(Object.keys(list.responses)).toEqual(["200", "400", "401", "403", "429", "500", "503"]);
    expect(list.responses["200"].content["application/json"].schema.$ref).toBe("#/components/schemas/FileList");
    // Upload stays where it was.
    expect(doc.paths["/api/v1/files"].post.summary).toMatch(/Upload/);
  });

  it("deletes a file: 200 when its bytes are gone, 202 while tasks still use it, 404 otherwise", () => {
    const del = doc.paths["/api/v1/files/{id}"].delete;
    expect(del.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(del.responses)).toEqual(["200", "202", "401", "403", "404", "429", "500", "503"]);
    for (const status of ["200", "202"]) {
      expect(del.responses[status].content["application/json"].schema.$ref).toBe("#/components/schemas/FileDeletion");
    }
    expect(doc.components.schemas.FileDeletion.properties.storage.enum).toEqual(["removed", "pending_removal"]);
    expect(
      FileDeletionSchema.safeParse({
        id: "file_1",
        object: "file",
        deleted: true,
        storage: "removed",
        pending_tasks: [],
      }).success,
    ).toBe(true);
    expect(
      FileDeletionSchema.safeParse({
        id: "file_1",
        object: "file",
        deleted: false,
        storage: "removed",
        pending_tasks: [],
      }).success,
    ).toBe(false);
  });
});
