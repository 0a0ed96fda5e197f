/** The account's API key routes of the OpenAPI document (scope keys:manage). */
import type { OpenAPIRegistry } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { ApiKeyListSchema, ApiKeySchema, CreateApiKeySchema, CreatedApiKeySchema } from "./key-schemas.js";
import { errorResponse, errors, LIST_QUERY_RULES, pageQuery } from "./openapi-common.js";

const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

export function registerKeyPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  const tags = ["Keys"];
  registry.registerPath({
    method: "get",
    path: "/api/v1/keys",
    operationId: "listApiKeys",
    tags,
    summary: "List the account's API keys, newest first",
    description: `Revoked and expired keys are listed too. Secrets are never listed. ${LIST_QUERY_RULES} Scope keys:manage.`,
    security,
    request: { query: z.object(pageQuery) },
    responses: {
      200: { description: "A page of keys", content: json(ApiKeyListSchema) },
      ...errors("BadRequest"),
    },
  });
  registry.registerPath({
    method: "post",
    path: "/api/v1/keys",
    operationId: "createApiKey",
    tags,
    summary: "Create an API key (its secret is returned only here)",
    description:
      "The new key belongs to the caller's account. It can hold only scopes the calling key holds, and expire no later than the calling key. Scope keys:manage.",
    security,
    request: { body: { required: true, content: json(CreateApiKeySchema) } },
    responses: {
      201: { description: "Created; `key` is the secret", content: json(CreatedApiKeySchema) },
      ...errors("BadRequest", "PayloadTooLarge"),
      403: errorResponse(
        "api_scope_denied: the calling key lacks keys:manage, or a scope it asked to grant (the message names it); or forbidden: a request signed in by the web console's session cookie failed the Origin check",
      ),
    },
  });
  registry.registerPath({
    method: "delete",
    path: "/api/v1/keys/{id}",
    operationId: "revokeApiKey",
    tags,
    summary: "Revoke an API key",
    description:
      "The key stops working at once on every server process. Revoking a revoked key answers the same, with its first revocation time. The calling key may revoke itself: this answer is sent, and its next request is 401 api_key_revoked. Scope keys:manage.",
    security,
    request: { params: z.object({ id: z.string().meta({ description: "Key id (key_…)" }) }) },
    responses: {
      200: { description: "Revoked", content: json(ApiKeySchema) },
      ...errors("NotFound"),
    },
  });
}
