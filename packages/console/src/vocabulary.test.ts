import {
  API_KEY_SCOPES,
  DEFAULT_WEBHOOK_EVENT_TYPES,
  LEDGER_ENTRY_TYPES,
  WEBHOOK_EVENT_TYPES,
} from "@framegate/contract";
import { describe, expect, it } from "vitest";
import { DEFAULT_WEBHOOK_EVENTS, LEDGER_TYPE_NAMES, SCOPE_NAMES, WEBHOOK_EVENT_NAMES } from "./vocabulary.js";

describe("the console's labels cover the contract's enumerations", () => {
  it("lists every key scope the server knows, in its order", () => {
    expect(SCOPE_NAMES).toEqual([...API_KEY_SCOPES]);
  });

  it("lists every webhook event type and the API's default pair", () => {
    expect(WEBHOOK_EVENT_NAMES).toEqual([...WEBHOOK_EVENT_TYPES]);
    expect(DEFAULT_WEBHOOK_EVENTS).toEqual([...DEFAULT_WEBHOOK_EVENT_TYPES]);
  });

  it("lists every ledger entry type", () => {
    expect(LEDGER_TYPE_NAMES).toEqual([...LEDGER_ENTRY_TYPES]);
  });
});
