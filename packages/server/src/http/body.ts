import type { Context } from "hono";
import { ApiError } from "../errors.js";

export const MAX_JSON_BODY_BYTES = 64 * 1024;

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
  const body = c.req.raw.body;
  if (!body) throw emptyBody();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_JSON_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (total === 0) throw emptyBody();
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
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
