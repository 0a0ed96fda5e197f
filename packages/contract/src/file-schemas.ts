/**
 * Wire objects of file management (GET /api/v1/files, DELETE /api/v1/files/{id}), beside the
 * File object itself (schemas.ts).
 */
import { z } from "zod";
import { FileSchema } from "./schemas.js";

export const FileListSchema = z
  .object({ object: z.literal("list"), data: z.array(FileSchema), has_more: z.boolean() })
  .meta({ id: "FileList" });

export const FileDeletionSchema = z
  .object({
    id: z.string().meta({ example: "file_5Jd0aQ1cVb7xYk2LmN3pRs" }),
    object: z.literal("file"),
    deleted: z.literal(true),
    storage: z.enum(["removed", "pending_removal"]).meta({
      description:
        "removed: the bytes are gone. pending_removal: queued or processing tasks still use the file (its bytes are removed once the last of them ends), or the storage could not remove them yet (housekeeping retries).",
    }),
    pending_tasks: z.array(z.string()).meta({
      description:
        "The account's queued or processing tasks that still use the file (up to 20; empty when removed, or when only a storage failure delays the removal).",
    }),
  })
  .meta({ id: "FileDeletion" });

export type FileList = z.infer<typeof FileListSchema>;
export type FileDeletion = z.infer<typeof FileDeletionSchema>;
