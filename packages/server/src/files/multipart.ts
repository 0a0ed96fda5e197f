/**
 * Streaming multipart/form-data parsing with busboy. The single `file` part is handed to
 * `onFile` as a stream as soon as it starts (fields sent before it are already known), so the
 * upload flows straight into storage; fields after it are collected too. Whatever `onFile`
 * stored must be cleaned up by the caller when this throws.
 */
import { Readable } from "node:stream";
import busboy from "busboy";
import { ApiError } from "../errors.js";

export interface MultipartResult<T> {
  fields: Record<string, string>;
  file: { value: T; filename: string | undefined } | undefined;
}

const FIELD_MAX_BYTES = 1024;

function invalid(message: string, path = "") {
  return new ApiError("validation_failed", message, { details: [{ path, issue: message }] });
}

export async function parseMultipart<T>(
  request: Request,
  allowedFields: readonly string[],
  onFile: (stream: Readable, fieldsSoFar: Record<string, string>) => Promise<T>,
): Promise<MultipartResult<T>> {
  const contentType = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType)) {
    throw invalid("Uploads must be multipart/form-data with a `file` part.", "Content-Type");
  }
  if (!request.body) throw invalid("The request body is empty.", "file");

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      // busboy reports partsLimit on reaching the limit, not on exceeding it: every allowed field
      // plus the file is allowed + 1 parts, so the limit sits one above.
      limits: { files: 1, fields: allowedFields.length, fieldSize: FIELD_MAX_BYTES, parts: allowedFields.length + 2 },
    });
  } catch (error) {
    throw invalid(`Malformed multipart request: ${(error as Error).message}.`, "Content-Type");
  }

  const input = Readable.fromWeb(request.body as import("node:stream/web").ReadableStream);
  const fields: Record<string, string> = {};
  let file: MultipartResult<T>["file"];
  let fileWork: Promise<T> | undefined;
  let fileStream: Readable | undefined;
  let problem: ApiError | undefined;
  const fail = (error: ApiError) => {
    problem ??= error;
  };

  const parsed = new Promise<void>((resolve, reject) => {
    parser.on("field", (name, value, info) => {
      if (!allowedFields.includes(name)) return fail(invalid(`Unknown form field "${name.slice(0, 64)}".`, name));
      if (info.valueTruncated) return fail(invalid(`The ${name} field is too long.`, name));
      if (name in fields) return fail(invalid(`The ${name} field was sent twice.`, name));
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== "file" || fileWork) {
        stream.resume();
        return fail(
          invalid(name === "file" ? "Send exactly one file." : `Unexpected file part "${name.slice(0, 64)}".`, name),
        );
      }
      fileStream = stream;
      fileWork = onFile(stream, { ...fields });
      // Keep the promise observed; its outcome is read after parsing.
      fileWork.then(
        (value) => {
          file = { value, filename: info.filename };
        },
        () => {},
      );
      // A rejected file (too large) must stop the whole request, not wait for the rest of it.
      fileWork.catch((error) => {
        stream.resume();
        reject(error);
      });
    });
    parser.on("partsLimit", () => fail(invalid("Too many form parts.")));
    parser.on("filesLimit", () => fail(invalid("Send exactly one file.", "file")));
    parser.on("fieldsLimit", () => fail(invalid("Too many form fields.")));
    parser.on("error", (error) => reject(invalid(`Malformed multipart body: ${(error as Error).message}.`)));
    parser.on("close", () => resolve());
    input.on("error", (error) => reject(error));
  });

  try {
    input.pipe(parser);
    await parsed;
    if (fileWork) await fileWork;
  } catch (error) {
    input.unpipe(parser);
    input.destroy();
    // Stop a file still being written, so its partial object is removed now.
    fileStream?.destroy(error instanceof Error ? error : new Error(String(error)));
    await fileWork?.catch(() => {});
    throw error;
  }
  if (problem) throw problem;
  return { fields, file };
}
