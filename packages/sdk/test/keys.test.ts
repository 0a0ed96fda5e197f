import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationError, Framegate, NotFoundError, PermissionDeniedError, ValidationError } from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe("client.keys", () => {
  it("creates a key (secret once), lists it without the secret, and revokes it", async () => {
    const { client } = await clientFor(t, 0);
    const created = await client.keys.create({ name: "ci", scopes: ["credits:read"] });
    expect(created).toMatchObject({ object: "api_key", name: "ci", scopes: ["credits:read"], revoked_at: null });
    expect(created.key).toMatch(/^rvya_sk_/);

    const listed = [];
    for await (const key of client.keys.list({ limit: 1 })) listed.push(key);
    expect(listed.map((k) => k.id)).toContain(created.id);
    expect(JSON.stringify(listed)).not.toContain(created.key);

    const ci = new Framegate({ apiKey: created.key, baseUrl: t.url });
    expect((await ci.credits.retrieve()).current_credits).toBe(0);
    await expect(ci.keys.list()).rejects.toBeInstanceOf(PermissionDeniedError);

    const revoked = await client.keys.revoke(created.id);
    expect(revoked.revoked_at).toEqual(expect.any(String));
    await expect(ci.credits.retrieve()).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("maps refusals to typed errors", async () => {
    const { client } = await clientFor(t, 0, { scopes: ["keys:manage", "credits:read"] });
    await expect(client.keys.create({ scopes: ["files:read"] })).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(client.keys.create({ expires_at: "2020-01-01T00:00:00Z" })).rejects.toBeInstanceOf(ValidationError);
    await expect(client.keys.revoke("key_nope")).rejects.toBeInstanceOf(NotFoundError);
  });
});
