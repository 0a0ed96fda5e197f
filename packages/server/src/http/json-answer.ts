import type { Context } from "hono";

const JSON_CONTENT = { "Content-Type": "application/json" } as const;

/**
 * Sends a JSON body that is either ready (a string, sent without an await: the routes that
 * answer polls from store/row-cache.ts) or still being read (a promise).
 */
export function jsonAnswer(c: Context, body: string | Promise<string>): Response | Promise<Response> {
  if (typeof body === "string") return c.body(body, 200, JSON_CONTENT);
  return body.then((json) => c.body(json, 200, JSON_CONTENT));
}
