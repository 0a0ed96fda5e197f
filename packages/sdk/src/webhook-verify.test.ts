import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { WebhookVerificationError } from "./errors.js";
import { verifyWebhook } from "./webhook-verify.js";

const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const body = JSON.stringify({ id: "evt_1", object: "event", type: "webhook.test", data: { message: "hi ✓" } });

function signed(at: Date, id = "evt_1", payload = body) {
  const signature = new Webhook(secret).sign(id, at, payload);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

describe("verifyWebhook (cross-checked with the standardwebhooks library)", () => {
  it("accepts what the reference implementation signs, and the reference accepts the same input", async () => {
    const headers = signed(new Date());
    await expect(verifyWebhook(body, headers, secret)).resolves.toMatchObject({ id: "evt_1" });
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ id: "evt_1" });
  });

  it("accepts a secret without the whsec_ prefix and any matching entry of several", async () => {
    const headers = signed(new Date());
    await expect(verifyWebhook(body, headers, secret.slice(6))).resolves.toBeDefined();
    const other = new Webhook(`whsec_${Buffer.from("x".repeat(32)).toString("base64")}`).sign(
      "evt_1",
      new Date(),
      body,
    );
    const both = {
      ...headers,
      "webhook-signature": `${other} v1,bm90LWJhc2U2NA== garbage ${headers["webhook-signature"]}`,
    };
    await expect(verifyWebhook(body, both, secret)).resolves.toBeDefined();
  });

  it("refuses a timestamp just outside the tolerance on both sides", async () => {
    const now = Date.now();
    const refused = async (offsetSeconds: number) =>
      (
        (await verifyWebhook(body, signed(new Date(now + offsetSeconds * 1000)), secret, { now }).catch(
          (e) => e,
        )) as WebhookVerificationError
      ).reason;
    expect(await refused(-301)).toBe("timestamp_too_old");
    expect(await refused(301)).toBe("timestamp_too_new");
    await expect(verifyWebhook(body, signed(new Date(now - 299_000)), secret, { now })).resolves.toBeDefined();
    await expect(
      verifyWebhook(body, signed(new Date(now - 20_000)), secret, { now, toleranceSeconds: 10 }),
    ).rejects.toThrow(WebhookVerificationError);
  });

  it("reads Node-style headers case-insensitively, including arrays", async () => {
    const h = signed(new Date());
    const nodeHeaders = {
      "Webhook-Id": h["webhook-id"],
      "WEBHOOK-TIMESTAMP": [h["webhook-timestamp"]],
      "webhook-signature": h["webhook-signature"],
    };
    await expect(verifyWebhook(body, nodeHeaders, secret)).resolves.toBeDefined();
  });

  it("refuses a non-JSON body that is correctly signed", async () => {
    const headers = signed(new Date(), "evt_1", "not json");
    const error = (await verifyWebhook("not json", headers, secret).catch((e) => e)) as WebhookVerificationError;
    expect(error).toBeInstanceOf(WebhookVerificationError);
    expect(error.reason).toBe("invalid_payload");
    expect(error.code).toBe("webhook_verification_failed");
  });
});
