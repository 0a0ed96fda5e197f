import { describe, expect, it } from "vitest";
import { describeBytes, effectiveQuotas } from "./quotas.js";

describe("quotas", () => {
  it("names byte limits in binary units with the exact byte count", () => {
    expect(describeBytes(1024 ** 3)).toBe("1 GiB (1073741824 bytes)");
    expect(describeBytes(1.5 * 1024 ** 2)).toBe("1.5 MiB (1572864 bytes)");
    expect(describeBytes(5 * 1024 ** 4)).toBe("5 TiB (5497558138880 bytes)");
    expect(describeBytes(1023)).toBe("1023 bytes");
  });

  it("an override wins over the default; null falls back to it", () => {
    const defaults = { maxWebhookEndpoints: 20, maxFileBytes: 1024, maxFiles: 1000 };
    expect(effectiveQuotas({ max_webhook_endpoints: 3, max_file_bytes: null, max_files: 0 + 7 }, defaults)).toEqual({
      maxWebhookEndpoints: 3,
      maxFileBytes: 1024,
      maxFiles: 7,
    });
  });
});
