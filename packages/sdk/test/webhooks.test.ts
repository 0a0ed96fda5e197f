import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReceivedRequest, WebhookReceiver } from "../../server/test/webhook-receiver.js";
import {
  type Framegate,
  NotFoundError,
  verifyWebhook,
  type WebhookEndpointWithSecret,
  WebhookUrlRejectedError,
  WebhookVerificationError,
} from "../src/index.js";
import { clientFor, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let receiver: WebhookReceiver;

beforeAll(async () => {
  [t, receiver] = await Promise.all([
    startTestServer({ WEBHOOK_ALLOW_INSECURE_URLS: "true", WEBHOOK_RETRY_SCHEDULE_MS: "100,100" }),
    WebhookReceiver.start(),
  ]);
});
afterAll(async () => {
  await t?.close();
  await receiver?.close();
});

async function nextRequest(predicate: (r: ReceivedRequest) => boolean): Promise<ReceivedRequest> {
  await receiver.waitUntil((r) => r.requests.some(predicate), 10_000, "webhook request");
  return receiver.requests.find(predicate) as ReceivedRequest;
}

/** Signs like the server does, for hand-made deliveries (stale timestamps and the like). */
function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

describe("webhook endpoints", () => {
  let client: Framegate;
  let endpoint: WebhookEndpointWithSecret;

  beforeAll(async () => {
    ({ client } = await clientFor(t, 1000));
  });

  it("create returns the endpoint with its signing secret once", async () => {
    endpoint = await client.webhooks.create({
      name: "Production webhook",
      url: receiver.at("/crud"),
      event_types: ["generation.succeeded"],
    });
    expect(endpoint).toMatchObject({
      object: "webhook_endpoint",
      name: "Production webhook",
      url: receiver.at("/crud"),
      event_types: ["generation.succeeded"],
      status: "active",
      failure_count: 0,
      revoked_at: null,
    });
    expect(endpoint.signing_secret).toMatch(/^whsec_/);
    const read = await client.webhooks.retrieve(endpoint.id);
    expect(read.signing_secret).toBeUndefined();
    expect(read.secret_preview).toBe(endpoint.secret_preview);
  });

  it("a rejected URL is a WebhookUrlRejectedError (a ValidationError)", async () => {
    const { client: strict } = await clientFor(t, 0);
    const error = await strict.webhooks.create({ url: "ftp://example.com/x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookUrlRejectedError);
    expect(error).toMatchObject({
      status: 400,
      code: "webhook_url_rejected",
      requestId: expect.stringMatching(/^req_/),
    });
  });

  it("list iterates every endpoint across pages", async () => {
    const more = [];
    for (let i = 0; i < 2; i++) more.push(await client.webhooks.create({ url: receiver.at(`/list-${i}`) }));
    const ids: string[] = [];
    for await (const e of client.webhooks.list({ limit: 2 })) ids.push(e.id);
    expect(ids).toEqual([more[1]?.id, more[0]?.id, endpoint.id]);
    const page = await client.webhooks.list({ limit: 1 });
    expect(page.data).toHaveLength(1);
    expect(page.has_more).toBe(true);
    for (const e of more) await client.webhooks.delete(e.id);
  });

  it("update changes fields and status", async () => {
    const renamed = await client.webhooks.update(endpoint.id, {
      name: "Renamed",
      event_types: ["generation.succeeded", "generation.failed"],
    });
    expect(renamed).toMatchObject({ name: "Renamed", event_types: ["generation.succeeded", "generation.failed"] });
    const disabled = await client.webhooks.update(endpoint.id, { status: "disabled" });
    expect(disabled.status).toBe("disabled");
    expect(disabled.disabled_at).not.toBeNull();
    const enabled = await client.webhooks.update(endpoint.id, { status: "active" });
    expect(enabled).toMatchObject({ status: "active", disabled_at: null });
  });

  it("test sends a signed webhook.test event that verify accepts; deliveries, events and redeliver", async () => {
    const event = await client.webhooks.test(endpoint.id);
    expect(event).toMatchObject({ object: "event", type: "webhook.test", api_version: "2026-05-11" });
    const delivered = await nextRequest((r) => r.headers["webhook-id"] === event.id);
    expect(delivered.path).toBe("/crud");

    const verified = await client.webhooks.verify(delivered.body, delivered.headers, endpoint.signing_secret);
    expect(verified).toEqual(event);
    if (verified.type === "webhook.test") expect(verified.data.endpoint_id).toBe(endpoint.id);

    await receiver.waitUntil((r) => r.acknowledged().some((x) => x.headers["webhook-id"] === event.id));
    let deliveries = await client.webhooks.deliveries(endpoint.id);
    for (let i = 0; i < 50 && deliveries.data.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      deliveries = await client.webhooks.deliveries(endpoint.id);
    }
    expect(deliveries.data[0]).toMatchObject({
      object: "webhook_delivery",
      event_id: event.id,
      endpoint_id: endpoint.id,
      event_type: "webhook.test",
      attempt: 1,
      status: "succeeded",
      response_status: 200,
    });
    expect((await client.webhooks.deliveries(endpoint.id, { status: "failed" })).data).toEqual([]);

    const events = [];
    for await (const e of client.webhooks.events({ type: "webhook.test" })) events.push(e);
    expect(events.map((e) => e.id)).toContain(event.id);
    expect((await client.webhooks.events({ type: "generation.failed" })).data).toEqual([]);

    const before = receiver.requests.filter((r) => r.headers["webhook-id"] === event.id).length;
    const redelivery = await client.webhooks.redeliver(event.id);
    expect(redelivery).toEqual({ event_id: event.id, endpoint_ids: [endpoint.id] });
    await receiver.waitUntil((r) => r.requests.filter((x) => x.headers["webhook-id"] === event.id).length > before);
  });

  it("rotateSecret returns a new secret; both verify during the overlap", async () => {
    const rotated = await client.webhooks.rotateSecret(endpoint.id);
    expect(rotated.signing_secret).toMatch(/^whsec_/);
    expect(rotated.signing_secret).not.toBe(endpoint.signing_secret);
    const event = await client.webhooks.test(endpoint.id);
    const delivered = await nextRequest((r) => r.headers["webhook-id"] === event.id);
    expect(delivered.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    await expect(client.webhooks.verify(delivered.body, delivered.headers, rotated.signing_secret)).resolves.toEqual(
      event,
    );
    await expect(client.webhooks.verify(delivered.body, delivered.headers, endpoint.signing_secret)).resolves.toEqual(
      event,
    );
    endpoint = { ...endpoint, signing_secret: rotated.signing_secret };
  });

  it("delete revokes the endpoint; it is then not found", async () => {
    const gone = await client.webhooks.delete(endpoint.id);
    expect(gone.revoked_at).not.toBeNull();
    await expect(client.webhooks.retrieve(endpoint.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.webhooks.deliveries(endpoint.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("webhooks.verify on a real generation delivery", () => {
  let client: Framegate;
  let secret: string;
  let delivered: ReceivedRequest;
  let taskId: string;

  beforeAll(async () => {
    ({ client } = await clientFor(t, 1000));
    const endpoint = await client.webhooks.create({ url: receiver.at("/generation") });
    secret = endpoint.signing_secret;
    const task = await client.generations.createAndWait({ model: "kling-2-6", prompt: "webhook me [sim:delay=0]" });
    taskId = task.id;
    delivered = await nextRequest((r) => r.path === "/generation" && r.body.includes(task.id));
  });

  it("accepts the delivery and returns the typed event", async () => {
    const event = await client.webhooks.verify(delivered.body, delivered.headers, secret);
    expect(event.type).toBe("generation.succeeded");
    if (event.type === "webhook.test") throw new Error("unexpected");
    expect(event.data.id).toBe(taskId);
    expect(event.data.status).toBe("succeeded");
    expect(event.id).toBe(delivered.headers["webhook-id"]);
    // Headers objects and byte bodies work too.
    const bytes = new TextEncoder().encode(delivered.body);
    const headers = new Headers(delivered.headers);
    await expect(verifyWebhook(bytes, headers, secret)).resolves.toEqual(event);
  });

  async function refusal(body: string, headers: Record<string, string>, key: string | string[], now?: number) {
    const error = await verifyWebhook(body, headers, key, now === undefined ? {} : { now }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookVerificationError);
    return (error as WebhookVerificationError).reason;
  }

  it("refuses a tampered body", async () => {
    const tampered = delivered.body.replace('"succeeded"', '"failed"');
    expect(tampered).not.toBe(delivered.body);
    expect(await refusal(tampered, delivered.headers, secret)).toBe("invalid_signature");
    expect(await refusal(`${delivered.body} `, delivered.headers, secret)).toBe("invalid_signature");
  });

  it("refuses the wrong secret, and a malformed one", async () => {
    const wrong = `whsec_${Buffer.from("another secret of 32 bytes......").toString("base64")}`;
    expect(await refusal(delivered.body, delivered.headers, wrong)).toBe("invalid_signature");
    expect(await refusal(delivered.body, delivered.headers, "whsec_!!!")).toBe("invalid_secret");
    // Any one matching secret is enough.
    await expect(verifyWebhook(delivered.body, delivered.headers, [wrong, secret])).resolves.toMatchObject({
      id: delivered.headers["webhook-id"],
    });
  });

  it("refuses stale and future timestamps beyond the tolerance", async () => {
    const ts = Number(delivered.headers["webhook-timestamp"]);
    expect(await refusal(delivered.body, delivered.headers, secret, (ts + 301) * 1000)).toBe("timestamp_too_old");
    expect(await refusal(delivered.body, delivered.headers, secret, (ts - 301) * 1000)).toBe("timestamp_too_new");
    await expect(
      verifyWebhook(delivered.body, delivered.headers, secret, { now: (ts + 299) * 1000 }),
    ).resolves.toBeDefined();
    await expect(
      verifyWebhook(delivered.body, delivered.headers, secret, { now: (ts + 1000) * 1000, toleranceSeconds: 1200 }),
    ).resolves.toBeDefined();

    // Correctly signed, but with an old timestamp: still refused.
    const id = delivered.headers["webhook-id"] as string;
    const old = Math.floor(Date.now() / 1000) - 600;
    const replay = {
      "webhook-id": id,
      "webhook-timestamp": String(old),
      "webhook-signature": sign(secret, id, old, delivered.body),
    };
    expect(await refusal(delivered.body, replay, secret)).toBe("timestamp_too_old");
    const future = Math.floor(Date.now() / 1000) + 600;
    const ahead = {
      ...replay,
      "webhook-timestamp": String(future),
      "webhook-signature": sign(secret, id, future, delivered.body),
    };
    expect(await refusal(delivered.body, ahead, secret)).toBe("timestamp_too_new");
  });

  it("refuses missing headers, a reused signature with another id, and non-v1 schemes", async () => {
    const { "webhook-signature": _dropped, ...noSignature } = delivered.headers;
    expect(await refusal(delivered.body, noSignature, secret)).toBe("missing_headers");
    expect(await refusal(delivered.body, { ...delivered.headers, "webhook-id": "evt_other" }, secret)).toBe(
      "invalid_signature",
    );
    const v2 = (delivered.headers["webhook-signature"] as string).replace(/^v1,/, "v2,");
    expect(await refusal(delivered.body, { ...delivered.headers, "webhook-signature": v2 }, secret)).toBe(
      "invalid_signature",
    );
    expect(await refusal(delivered.body, { ...delivered.headers, "webhook-timestamp": "soon" }, secret)).toBe(
      "invalid_timestamp",
    );
  });
});
