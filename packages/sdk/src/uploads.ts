/**
 * multipart/form-data bodies for POST /api/v1/files, built by hand so that streams stay streams
 * (FormData would buffer them) and the fields (kind, model, client_request_id) go before the file
 * part, which lets the server cut an oversize upload off at the right limit.
 */

/**
 * What `files.upload` accepts: a Blob/File, bytes (Uint8Array, Buffer, ArrayBuffer), a web
 * ReadableStream, any async iterable of chunks (a Node Readable), or, on Node only, a file path.
 */
export type Uploadable =
  | Blob
  | ArrayBuffer
  | ArrayBufferView
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>
  | string;

export interface PreparedBody {
  value: Blob | ReadableStream<Uint8Array>;
  contentType: string;
  /** Blob-backed bodies can be sent again on a retry; streams cannot. */
  replayable: boolean;
  /** A streaming body (fetch needs `duplex: "half"`). */
  stream: boolean;
}

const encoder = new TextEncoder();

function randomBoundary(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `----framegate-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Escapes a quoted header parameter the way browsers do for form data. */
function quote(value: string): string {
  return value.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

function dispositionFilename(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name)) return `filename="${quote(name)}"`;
  const fallback = name.replace(/[^\x20-\x7e]/g, "_");
  return `filename="${quote(fallback)}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() || "upload";
}

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream | undefined)?.getReader === "function";
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array | string> {
  return typeof (value as AsyncIterable<unknown> | undefined)?.[Symbol.asyncIterator] === "function";
}

function toBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`files.upload: stream chunks must be bytes or strings, got ${typeof chunk}`);
}

/** Node only: a Blob backed by the file at `path` (read lazily, streamed by fetch). */
async function blobFromPath(path: string): Promise<Blob> {
  let fs: { openAsBlob?: (path: string) => Promise<Blob> };
  try {
    fs = (await import("node:fs")) as typeof fs;
  } catch {
    throw new TypeError("files.upload: a file path is only supported on Node.js; pass a Blob, bytes or a stream.");
  }
  if (typeof fs.openAsBlob !== "function") throw new TypeError("files.upload: a file path needs Node.js >= 20.");
  return fs.openAsBlob(path);
}

/** Builds the multipart body: `fields` in order, then the `file` part. */
export async function multipartBody(
  input: Uploadable,
  fields: [string, string][],
  filename: string | undefined,
): Promise<PreparedBody> {
  let source: Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;
  let name = filename;
  if (typeof input === "string") {
    source = await blobFromPath(input);
    name ??= basename(input);
  } else if (input instanceof Blob) {
    source = input;
    name ??= (input as Blob & { name?: unknown }).name ? String((input as Blob & { name: unknown }).name) : undefined;
  } else if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) {
    source = new Blob([toBytes(input) as Uint8Array<ArrayBuffer>]);
  } else if (isReadableStream(input) || isAsyncIterable(input)) {
    source = input;
    const path = (input as { path?: unknown }).path; // a Node fs.ReadStream knows its file
    if (name === undefined && typeof path === "string") name = basename(path);
  } else {
    throw new TypeError("files.upload: unsupported input; pass a Blob, bytes, a stream or a file path.");
  }

  const boundary = randomBoundary();
  let head = "";
  for (const [field, value] of fields) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(field)}"\r\n\r\n${value}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; ${dispositionFilename(name ?? "upload")}\r\n`;
  head += "Content-Type: application/octet-stream\r\n\r\n";
  const tail = `\r\n--${boundary}--\r\n`;
  const contentType = `multipart/form-data; boundary=${boundary}`;

  if (source instanceof Blob) {
    return { value: new Blob([head, source, tail]), contentType, replayable: true, stream: false };
  }
  const iterator = (isReadableStream(source) ? readableToIterable(source) : source)[Symbol.asyncIterator]();
  let stage: "head" | "body" | "done" = "head";
  // Pull-based, so a slow connection slows the source down instead of buffering it in memory.
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === "head") {
        stage = "body";
        controller.enqueue(encoder.encode(head));
        return;
      }
      while (stage === "body") {
        const next = await iterator.next();
        if (next.done) {
          stage = "done";
          controller.enqueue(encoder.encode(tail));
          controller.close();
          return;
        }
        const bytes = toBytes(next.value);
        if (bytes.byteLength > 0) {
          controller.enqueue(bytes);
          return;
        }
      }
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
  return { value: stream, contentType, replayable: false, stream: true };
}

async function* readableToIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
