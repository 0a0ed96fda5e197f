import { describe, expect, it } from "vitest";
import { PARKED_FORGOTTEN_AFTER_MS, SlotWaiters } from "./slot-waiters.js";

describe("SlotWaiters", () => {
  it("hands a freed slot to the oldest delivery of the endpoint, else of the account", () => {
    const waiters = new SlotWaiters(() => 0);
    waiters.park({ key: "a1", endpointId: "e1", accountId: "acct" });
    waiters.park({ key: "b1", endpointId: "e2", accountId: "acct" });
    waiters.park({ key: "a2", endpointId: "e1", accountId: "acct" });
    expect(waiters.takeNext("acct", "e1", () => false)?.key).toBe("a1");
    expect(waiters.takeNext("acct", "e1", () => false)?.key).toBe("a2");
    // None left for e1: the account's next one, unless its own endpoint is full here.
    expect(waiters.takeNext("acct", "e1", (id) => id === "e2")).toBeUndefined();
    expect(waiters.takeNext("acct", "e1", () => false)?.key).toBe("b1");
    expect(waiters.size).toBe(0);
  });

  it("forgets deliveries parked long ago, which may have run in another process", () => {
    let now = 0;
    const waiters = new SlotWaiters(() => now);
    waiters.park({ key: "old", endpointId: "e1", accountId: "acct" });
    now = PARKED_FORGOTTEN_AFTER_MS / 2;
    waiters.park({ key: "middle", endpointId: "e1", accountId: "acct" });
    now = PARKED_FORGOTTEN_AFTER_MS + 1;
    waiters.park({ key: "new", endpointId: "e2", accountId: "acct" });
    expect(waiters.size).toBe(2);
    expect(waiters.takeNext("acct", "e1", () => false)?.key).toBe("middle");
  });
});
