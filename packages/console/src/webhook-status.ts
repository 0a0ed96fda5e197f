/**
 * Why a webhook endpoint is disabled, from its public fields. The dispatcher disables an endpoint
 * in the same update that records its last failing attempt, so an automatic disable has
 * `disabled_at` equal to `last_failure_at` with failures counted; any other disable was the
 * account's own (PATCH status "disabled"). Unit-tested in webhook-status.test.ts.
 */
import type { WebhookEndpoint } from "@framegate/sdk";
import { formatInstant } from "./format.js";

export type DisabledCause = "failures" | "account";

export function disabledCause(
  endpoint: Pick<WebhookEndpoint, "status" | "disabled_at" | "last_failure_at" | "failure_count">,
): DisabledCause | null {
  if (endpoint.status !== "disabled") return null;
  const automatic =
    endpoint.disabled_at !== null && endpoint.disabled_at === endpoint.last_failure_at && endpoint.failure_count > 0;
  return automatic ? "failures" : "account";
}

/** One sentence for the endpoint's page and list: why and since when. */
export function disabledExplanation(
  endpoint: Pick<WebhookEndpoint, "status" | "disabled_at" | "last_failure_at" | "failure_count">,
): string | null {
  const cause = disabledCause(endpoint);
  if (!cause) return null;
  const since = endpoint.disabled_at ? ` since ${formatInstant(endpoint.disabled_at)}` : "";
  return cause === "failures"
    ? `Disabled${since} by the server: every delivery failed for the auto-disable period (${endpoint.failure_count} failed attempts in a row). Enable it to start a fresh failure window; nothing is sent to it meanwhile.`
    : `Disabled${since} by this account (paused). Enable it to receive events again; nothing is sent to it meanwhile.`;
}
