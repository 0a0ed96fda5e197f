/** The file management routes of the OpenAPI document (list and delete; upload and get are in openapi.ts). */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { FileDeletionSchema, FileListSchema } from "./file-schemas.js";
import { errors, LIST_QUERY_RULES, pageQuery } from "./openapi-common.js";

const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

export function registerFileManagementPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  registry.registerPath({
    method: "get",
    path: "/api/v1/files",
    operationId: "listFiles",
    tags: ["Files"],
    summary: "List the account's files, newest first",
    description: `Deleted and expired-and-collected files are not listed. ${LIST_QUERY_RULES} Scope files:read.`,
    security,
    request: {
      query: z.object({ ...pageQuery, kind: z.enum(["image", "video", "audio"]).optional() }),
    },
    responses: {
      200: { description: "A page of files", content: json(FileListSchema) },
      ...errors("BadRequest"),
    },
  });
  registry.registerPath({
    method: "delete",
    path: "/api/v1/files/{id}",
    operationId: "deleteFile",
    tags: ["Files"],
    summary: "Delete a file",
    description:
      "The file stops being listed and usable by new tasks at once, and frees its quota. Its bytes are removed now (200), or, when queued or processing tasks still use it, once the last of them ends (202). Deleting a deleted file is 404. Scope files:create.",
    security,
    request: { params: z.object({ id: z.string().meta({ description: "File id (file_…)" }) }) },
    responses: {
      200: { description: "Deleted; its bytes are removed", content: json(FileDeletionSchema) },
      202: {
        description: "Deleted; its bytes are removed when the tasks that use it end",
        content: json(FileDeletionSchema),
      },
      ...errors("NotFound"),
    },
  });
}
