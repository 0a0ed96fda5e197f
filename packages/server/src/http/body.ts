import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import { ApiError } from "../errors.js";

export const MAX_JSON_BODY_BYTES = 64 * 1024;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a JSON body of at most 64 KiB. The limit is enforced while reading, so a client that
 * lies about (or omits) Content-Length cannot make us buffer more.
 */
export async function readJsonBody(c: Context): Promise<unknown> {
  const type = c.req.header("content-type");
  if (type && !/^application\/([\w.+-]*\+)?json\b/i.test(type.trim())) {
    throw new ApiError("validation_failed", "The request body must be JSON (Content-Type: application/json).", {
      details: [{ path: "", issue: `unsupported Content-Type ${type.slice(0, 100)}` }],
    });
  }
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_JSON_BODY_BYTES) throw tooLarge();
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  // Straight from Node's request (the app is only served by node:http): the web-stream adapter
  // in between cost a sixth of a create (issue 13).
  if (!incoming) throw new Error("readJsonBody needs the Node request (served through @hono/node-server)");
  const bytes = await readNodeBody(incoming);
  if (bytes === "too_large") throw tooLarge();
  if (bytes.byteLength === 0) throw emptyBody();
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new ApiError("validation_failed", "The request body is not valid UTF-8.", {
      details: [{ path: "", issue: "invalid UTF-8 byte sequence" }],
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? error.message : "could not parse";
    throw new ApiError("validation_failed", "The request body is not valid JSON.", {
      details: [{ path: "", issue: detail.slice(0, 200) }],
    });
  }
}

/**
 * Reads the body up to the cap. Past it, reading stops (the rest is never buffered) and the
 * request is answered with Connection: close. A client that goes away mid-body rejects with
 * ECONNRESET, which the error handler records as the client's doing (499), not ours.
 */
function readNodeBody(incoming: IncomingMessage): Promise<Buffer | "too_large"> {
  return new Promise((resolve, reject) => {
    if (incoming.destroyed) {
      reject(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const done = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > MAX_JSON_BODY_BYTES) {
        done();
        incoming.pause();
        resolve("too_large");
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    const onClose = () => {
      if (incoming.readableEnded) return;
      done();
      reject(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    };
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
    incoming.on("close", onClose);
  });
}

/**
 * The rest of an oversize body is never read, so the connection cannot carry another request:
 * say so, or a keep-alive client reuses it and its next request fails with a socket error.
 */
function tooLarge() {
  return new ApiError("payload_too_large", `The request body exceeds ${MAX_JSON_BODY_BYTES} bytes.`, {
    headers: { Connection: "close" },
  });
}

function emptyBody() {
  return new ApiError("validation_failed", "The request body is empty; send a JSON object.", {
    details: [{ path: "", issue: "empty body" }],
  });
}
