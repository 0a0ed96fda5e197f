/** The usage history in the OpenAPI document: its paths, security, and examples that match their schemas. */
import { describe, expect, it } from "vitest";
import { buildOpenApiDocument } from "./openapi.js";
import { LedgerEntryListSchema, UsageCountsSchema, UsageSchema } from "./usage-schemas.js";

// biome-ignore lint/suspicious/noExplicitAny: walking a JSON document
const doc = buildOpenApiDocument() as any;

describe("usage history in the OpenAPI document", () => {
  it("has the ledger and usage routes with the API key, and the operator report with the admin token", () => {
    for (const path of ["/api/v1/credits/ledger", "/api/v1/usage"]) {
      expect(doc.paths[path].get.security, path).toEqual([{ bearerAuth: [] }]);
      expect(Object.keys(doc.paths[path].get.responses)).toEqual(["200", "400", "401", "403", "429", "500", "503"]);
    }
    expect(doc.paths["/admin/v1/usage"].get.security).toEqual([{ adminToken: [] }]);
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: "http", scheme: "bearer" });
    const ledgerQuery = doc.paths["/api/v1/credits/ledger"].get.parameters.map((p: { name: string }) => p.name);
    expect(ledgerQuery).toEqual(["limit", "starting_after", "type", "created_after", "created_before"]);
    const usageQuery = doc.paths["/api/v1/usage"].get.parameters.map((p: { name: string }) => p.name);
    expect(usageQuery).toEqual(["granularity", "start", "end"]);
  });

  it("gives examples that the schemas accept", () => {
    const ledger = doc.paths["/api/v1/credits/ledger"].get.responses["200"].content["application/json"];
    expect(LedgerEntryListSchema.safeParse(ledger.example).success).toBe(true);
    const usage = doc.paths["/api/v1/usage"].get.responses["200"].content["application/json"];
    expect(UsageSchema.safeParse(usage.example).success).toBe(true);
    expect(UsageCountsSchema.strict().safeParse(usage.example.totals).success).toBe(true);
    expect(doc.components.schemas.LedgerEntry.properties.type.enum).toEqual(["grant", "reserve", "release", "refund"]);
  });
});
