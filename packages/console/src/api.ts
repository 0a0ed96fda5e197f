/**
 * The console's two ways to the server, both same-origin and cookie-authenticated:
 * - the public API through @framegate/sdk, built without an API key (its cookie mode: no
 *   Authorization header; the browser sends the HttpOnly session cookie);
 * - the session endpoints (/console/api/session), which are the console's own and not part of
 *   the public API, through a small fetch wrapper that reads the same error envelope.
 * The key or token typed at sign-in is posted once and never kept (no storage, no state).
 */
import { Framegate } from "@framegate/sdk";
import { PREFIX } from "./prefix.js";

export const client = new Framegate({ baseUrl: `${window.location.origin}${PREFIX}`, maxRetries: 1 });

export interface Session {
  kind: "customer" | "operator";
  account_id: string | null;
  key_id: string | null;
  scopes: string[];
  expires_at: string;
}

/**
 * An error answered by the console's own endpoints (the session routes, and /admin/v1 for the
 * operator pages), with the envelope's code and message.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/**
 * A same-origin JSON request with the session cookie; an answer other than 2xx throws HttpError
 * with the envelope's code and message (or the status line when the body is not the envelope).
 */
export async function sameOriginFetch(method: string, url: string, body?: unknown): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers:
        body === undefined
          ? { accept: "application/json" }
          : { accept: "application/json", "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
  } catch {
    throw new HttpError(0, "connection_error", "Could not reach the server. Check your connection and retry.");
  }
  if (response.ok) return response;
  let code = "http_error";
  let message = `The server answered ${response.status}.`;
  try {
    const envelope = (await response.json()) as { error?: { code?: string; message?: string } };
    code = envelope.error?.code ?? code;
    message = envelope.error?.message ?? message;
  } catch {
    // Not the envelope (a proxy's page, say): keep the status line.
  }
  const retryAfter = Number(response.headers.get("retry-after"));
  throw new HttpError(response.status, code, message, Number.isFinite(retryAfter) ? retryAfter : undefined);
}

const SESSION_PATH = `${PREFIX}/console/api/session`;

const call = (method: string, body?: unknown) => sameOriginFetch(method, SESSION_PATH, body);

/**
 * The current session, or null when there is none: the endpoint answers 200 with JSON null for
 * that (no cookie, or one that is no longer live), so a signed-out visit logs no error.
 */
export async function fetchSession(): Promise<Session | null> {
  return (await (await call("GET")).json()) as Session | null;
}

export async function signIn(credential: { api_key: string } | { admin_token: string }): Promise<Session> {
  return (await (await call("POST", credential)).json()) as Session;
}

export async function signOut(): Promise<void> {
  await call("DELETE");
}

/** A readable message for any error the SDK or the session calls throw. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong.";
}
