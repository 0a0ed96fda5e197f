/**
 * What the account pages call the API's enumerations: key scopes, webhook event types and ledger
 * entry types, each with a short explanation. Typed as Records over the SDK's unions so a value
 * the SDK gains cannot be left without a label; vocabulary.test.ts checks the lists against the
 * contract's (the server's) own, in the contract's order. The contract package itself is not
 * imported here: it would bring zod into the console's bundle.
 */
import type { ApiKeyScope, LedgerEntryType, WebhookEventType } from "@framegate/sdk";

export const SCOPES: Record<ApiKeyScope, string> = {
  "models:read": "Read the model catalog",
  "generations:create": "Start generations (spends credits)",
  "generations:read": "Read generations and their videos",
  "files:create": "Upload reference files",
  "files:read": "List and read uploaded files",
  "credits:read": "Read the balance, ledger and usage",
  "webhooks:manage": "Manage webhook endpoints and deliveries",
  "keys:manage": "Create and revoke API keys",
};

export const SCOPE_NAMES = Object.keys(SCOPES) as ApiKeyScope[];

export const WEBHOOK_EVENTS: Record<WebhookEventType, string> = {
  "generation.succeeded": "A generation finished with a video",
  "generation.failed": "A generation failed or was canceled",
  "generation.processing": "A generation started running (Framegate extension)",
};

export const WEBHOOK_EVENT_NAMES = Object.keys(WEBHOOK_EVENTS) as WebhookEventType[];

/** What an endpoint gets when the API is given no event types. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ["generation.succeeded", "generation.failed"];

export const LEDGER_TYPES: Record<LedgerEntryType, { label: string; help: string }> = {
  grant: { label: "Grant", help: "Credits granted or debited by the operator" },
  reserve: { label: "Reserve", help: "A generation's price, taken when it was created" },
  release: { label: "Release", help: "The unused part of a reservation, given back at success" },
  refund: { label: "Refund", help: "A failed or canceled generation's reservation, given back" },
};

export const LEDGER_TYPE_NAMES = Object.keys(LEDGER_TYPES) as LedgerEntryType[];
