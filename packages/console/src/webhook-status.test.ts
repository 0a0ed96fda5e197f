import { describe, expect, it } from "vitest";
import { disabledCause, disabledExplanation } from "./webhook-status.js";

const T = "2026-12-07T04:00:00.000Z";

describe("why a webhook endpoint is disabled", () => {
  it("an active endpoint has no cause", () => {
    const active = { status: "active", disabled_at: null, last_failure_at: T, failure_count: 3 } as const;
    expect(disabledCause(active)).toBeNull();
    expect(disabledExplanation(active)).toBeNull();
  });

  it("disabled in the update of its last failure: by the server, after failures", () => {
    const auto = { status: "disabled", disabled_at: T, last_failure_at: T, failure_count: 8 } as const;
    expect(disabledCause(auto)).toBe("failures");
    expect(disabledExplanation(auto)).toBe(
      "Disabled since 2026-12-07 04:00 UTC by the server: every delivery failed for the auto-disable period (8 failed attempts in a row). Enable it to start a fresh failure window; nothing is sent to it meanwhile.",
    );
  });

  it("disabled at any other time: paused by the account", () => {
    const paused = {
      status: "disabled",
      disabled_at: "2026-12-07T05:00:00.000Z",
      last_failure_at: T,
      failure_count: 2,
    } as const;
    expect(disabledCause(paused)).toBe("account");
    expect(disabledCause({ ...paused, last_failure_at: null, failure_count: 0 })).toBe("account");
    expect(disabledCause({ ...paused, disabled_at: T, failure_count: 0 })).toBe("account");
    expect(disabledExplanation(paused)).toContain("since 2026-12-07 05:00 UTC by this account");
  });
});
