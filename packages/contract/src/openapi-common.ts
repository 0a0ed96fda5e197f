/**
 * Pieces shared by the OpenAPI builders: the reusable headers and error responses
 * (components/headers, components/responses), and the pass that adds to every operation what
 * the server's middleware adds to every answer (request id, rate limit fields, 429, 500, 503).
 */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { ErrorEnvelopeSchema } from "./schemas.js";

const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });
const responseRef = (name: string) => ({ $ref: `#/components/responses/${name}` });

/** A header value that is a whole number of seconds. */
const seconds = { type: "integer" as const, minimum: 0 };

/** The reusable response headers, by the name they are sent with. */
export const HEADERS = {
  "X-Request-Id": {
    description:
      "The request's id (`req_…`), on every response; an error body carries the same value in `error.requestId`.",
    required: true,
    schema: { type: "string" as const, pattern: "^req_[A-Za-z0-9]+$", example: "req_3fQe9xv1Kp2Lm8NwA7sT" },
  },
  "RateLimit-Policy": {
    description:
      'IETF RateLimit-Policy: the budget that applies, `"<bucket>";q=<requests>;w=60` (buckets create, upload, read, write). Keyed requests count per API key, keyless ones and answers given before a request is identified (unknown path, wrong method, public API off: these spend nothing) per client address. Absent when the operator turned that budget off (0).',
    schema: { type: "string" as const, example: '"read";q=600;w=60' },
  },
  RateLimit: {
    description:
      'IETF RateLimit: what is left of the budget, `"<bucket>";r=<remaining>;t=<seconds until it refills>`. Absent when the budget is off.',
    schema: { type: "string" as const, example: '"read";r=599;t=60' },
  },
  "Retry-After": {
    description: "Seconds to wait before trying again.",
    schema: seconds,
  },
  Allow: {
    description: "The methods the path serves, comma-separated.",
    required: true,
    schema: { type: "string" as const, example: "GET, POST" },
  },
  Location: {
    description: "The task's URL (`/api/v1/generations/{id}`).",
    required: true,
    schema: { type: "string" as const, example: "/api/v1/generations/task_8Xk2qLw9vR4mT7bN1cZp" },
  },
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key and body.",
    schema: { type: "string" as const, enum: ["true"] },
  },
  "Preference-Applied": {
    description: "`wait=N` (N after clamping) when the answer was held for `Prefer: wait`; absent otherwise.",
    schema: { type: "string" as const, pattern: "^wait=\\d+$", example: "wait=30" },
  },
};

export type HeaderName = keyof typeof HEADERS;

/** `{ name: $ref }` for response headers taken from components/headers. */
export function headers(...names: HeaderName[]) {
  return Object.fromEntries(names.map((name) => [name, headerRef(name)]));
}

const RATE_LIMIT = ["RateLimit-Policy", "RateLimit"] as const;
/** What every response may carry (the limiter's fields are absent where a budget is off). */
const EVERY_RESPONSE: HeaderName[] = ["X-Request-Id", ...RATE_LIMIT];

const json = { "application/json": { schema: ErrorEnvelopeSchema } };
/** Components are written as given (not converted from zod): they point at the Error schema. */
const jsonRef = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };

/**
 * The reusable error responses: name → status, description and the headers beyond
 * EVERY_RESPONSE. A route whose refusal needs its own words documents it inline instead.
 */
const ERROR_RESPONSES = {
  BadRequest: {
    status: 400,
    description: "validation_failed: the body, query or a header is invalid (error.details says where)",
  },
  Unauthorized: { status: 401, description: "api_key_missing, api_key_invalid, api_key_revoked or api_key_expired" },
  Forbidden: {
    status: 403,
    description:
      "api_scope_denied: the key lacks the route's scope; or forbidden: a state-changing request signed in by the web console's session cookie failed the Origin check",
  },
  ForbiddenOrQuota: {
    status: 403,
    description:
      "api_scope_denied, or quota_exceeded: the account reached a quota (the message names it; delete something or ask the operator to raise it); or forbidden: a request signed in by the web console's session cookie failed the Origin check",
  },
  NotFound: { status: 404, description: "not_found: missing, or another account's (never said which)" },
  MethodNotAllowed: {
    status: 405,
    description:
      "method_not_allowed: the path exists but not with this method. Sent for any method a path does not list; Allow names the ones it does.",
    headers: ["Allow"] as HeaderName[],
  },
  PayloadTooLarge: { status: 413, description: "payload_too_large: the JSON body is above 64 KiB" },
  TooManyRequests: {
    status: 429,
    description: "rate_limited: the budget in RateLimit-Policy is spent; retry after Retry-After seconds",
    headers: ["Retry-After"] as HeaderName[],
  },
  InternalError: {
    status: 500,
    description: "internal_error: an unexpected fault; quote error.requestId to the operator",
  },
  ServiceUnavailable: {
    status: 503,
    description:
      "public_api_disabled: the operator switched the public API off; or service_unavailable where the operation says so (then with Retry-After)",
    headers: ["Retry-After"] as HeaderName[],
  },
} satisfies Record<string, { status: number; description: string; headers?: HeaderName[] }>;

export type ErrorResponseName = keyof typeof ERROR_RESPONSES;

/** Registers components/headers and components/responses; call once per document. */
export function registerCommonComponents(registry: OpenAPIRegistry): void {
  for (const [name, header] of Object.entries(HEADERS)) registry.registerComponent("headers", name, header);
  for (const [name, response] of Object.entries(ERROR_RESPONSES) as [
    string,
    { description: string; headers?: HeaderName[] },
  ][]) {
    registry.registerComponent("responses", name, {
      description: response.description,
      headers: headers(...EVERY_RESPONSE, ...(response.headers ?? [])),
      content: jsonRef,
    });
  }
}

/** `{ "<status>": $ref }` for the named reusable error responses. */
export function errors(...names: ErrorResponseName[]) {
  return Object.fromEntries(names.map((name) => [String(ERROR_RESPONSES[name].status), responseRef(name)]));
}

/** An inline error response, for a refusal a route describes in its own words. */
export function errorResponse(description: string, extraHeaders: HeaderName[] = []) {
  return { description, headers: headers(...extraHeaders), content: json };
}

/** The query parameters every list route takes (server: http/pagination.ts). */
export const pageQuery = {
  limit: z.int().min(1).max(100).optional().meta({ default: 20, description: "Page size." }),
  starting_after: z
    .string()
    .regex(/^[A-Za-z0-9_]{1,64}$/)
    .optional()
    .meta({ description: "The id of the last item of the previous page: the page after it." }),
};

/** How a list route answers a query it cannot use. */
export const LIST_QUERY_RULES =
  "An unknown query parameter, or a value out of range (for example `limit=abc` or an unknown filter value), is 400 validation_failed.";

// biome-ignore lint/suspicious/noExplicitAny: walking the generated JSON document
type Json = any;
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/**
 * Adds what the server adds to every answer, rather than repeating it on each route:
 * X-Request-Id and the RateLimit fields on every inline response; 429, 500 and 503
 * public_api_disabled on every public API operation; 401 and 403 on every keyed one; 500 on the
 * operator's. Routes keep whatever they documented themselves for a status.
 */
export function completeOperations(document: Json): void {
  for (const [path, item] of Object.entries<Json>(document.paths ?? {})) {
    const publicApi = path.startsWith("/api/v1/");
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const keyed = (operation.security ?? document.security ?? []).length > 0;
      const implied: ErrorResponseName[] = [
        ...(keyed ? (["Unauthorized"] as const) : []),
        // Scopes belong to API keys; the operator's token has none.
        ...(keyed && publicApi ? (["Forbidden"] as const) : []),
        ...(publicApi ? (["TooManyRequests", "ServiceUnavailable"] as const) : []),
        "InternalError",
      ];
      operation.responses = { ...errors(...implied), ...operation.responses };
      for (const response of Object.values<Json>(operation.responses)) {
        if (response.$ref) continue;
        response.headers = { ...headers(...EVERY_RESPONSE), ...response.headers };
      }
      operation.responses = sortedByStatus(operation.responses);
    }
  }
}

function sortedByStatus(responses: Record<string, Json>): Record<string, Json> {
  return Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
}
