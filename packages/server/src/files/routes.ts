import { FILE_KINDS, type FileKind, findModel, MAX_UPLOAD_BYTES, uploadLimit } from "@framegate/contract";
import type { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { authOf, requireScope } from "../http/auth.js";
import type { AppEnv } from "../http/context.js";
import { parseListQuery } from "../http/pagination.js";
import { parseMultipart } from "./multipart.js";
import type { FileService, ReceivedUpload } from "./service.js";

const FIELDS = ["kind", "model", "client_request_id"] as const;
const FileKindSchema = z.enum(FILE_KINDS as [FileKind, ...FileKind[]]);

function invalid(path: string, issue: string) {
  return new ApiError("validation_failed", `Invalid upload: ${path} ${issue}.`, { details: [{ path, issue }] });
}

function parseKind(value: string | undefined): FileKind {
  if (value === undefined) throw invalid("kind", "is required (image, video or audio)");
  if (!(FILE_KINDS as readonly string[]).includes(value)) throw invalid("kind", "must be image, video or audio");
  return value as FileKind;
}

function parseModel(value: string | undefined) {
  if (value === undefined) return undefined;
  const model = findModel(value);
  if (!model) throw invalid("model", `is unknown ("${value.slice(0, 64)}"); see GET /api/v1/models`);
  return model;
}

/** The tightest size cap known when the file part starts: the policy's if kind/model came first. */
function capFor(fields: Record<string, string>): number {
  try {
    const kind = parseKind(fields.kind);
    return uploadLimit(kind, parseModel(fields.model))?.max_bytes ?? MAX_UPLOAD_BYTES;
  } catch {
    return MAX_UPLOAD_BYTES;
  }
}

export function mountFileRoutes(app: Hono<AppEnv>, deps: { files: FileService }) {
  const { files } = deps;

  app.post("/api/v1/files", requireScope("files:create"), async (c) => {
    const { accountId } = authOf(c);
    // A full account is refused before its upload is read.
    await files.assertRoomForAnotherFile(accountId);
    let received: ReceivedUpload | undefined;
    try {
      const { fields, file } = await parseMultipart(c.req.raw, FIELDS, async (stream, early) => {
        received = await files.receive(stream, capFor(early));
        return received;
      });
      if (!file) throw invalid("file", "is required (a multipart part named file)");
      const kind = parseKind(fields.kind);
      const model = parseModel(fields.model);
      const clientRequestId = fields.client_request_id ?? null;
      if (clientRequestId !== null && clientRequestId.length > 128) {
        throw invalid("client_request_id", "must be at most 128 characters");
      }
      const name = file.filename ? file.filename.slice(0, 255) : null;
      const upload = received as ReceivedUpload;
      received = undefined; // accept() owns it now: it stores or discards it
      const object = await files.accept(accountId, upload, { kind, model, name, clientRequestId });
      return c.json(object, 201);
    } finally {
      if (received) await files.discard(received);
    }
  });

  app.get("/api/v1/files", requireScope("files:read"), async (c) => {
    const { accountId } = authOf(c);
    const query = parseListQuery(c, {
      kind: { schema: FileKindSchema, issue: "must be one of image, video, audio" },
    });
    const page = await files.list(accountId, {
      limit: query.limit,
      ...(query.startingAfter ? { startingAfter: query.startingAfter } : {}),
      ...(query.filters.kind ? { kind: query.filters.kind as FileKind } : {}),
    });
    return c.json({ object: "list", ...page });
  });

  app.get("/api/v1/files/:id", requireScope("files:read"), async (c) => {
    const { accountId } = authOf(c);
    return c.json(await files.get(accountId, c.req.param("id")));
  });

  // files:create is the files write scope: whoever may upload may delete (keys keep Rivya's scope set).
  app.delete("/api/v1/files/:id", requireScope("files:create"), async (c) => {
    const { accountId } = authOf(c);
    const outcome = await files.delete(accountId, c.req.param("id"));
    return c.json(outcome.body, outcome.status);
  });
}
