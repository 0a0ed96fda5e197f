/**
 * Provider calls counted and timed without touching the adapters: each configured provider is
 * wrapped once, where the process builds them (server.ts), so the worker's submits and polls and
 * the API's cancels are all seen. Optional calls stay absent when the adapter has none (callers
 * test for them: `provider.findSubmitted`, `provider.cancel`).
 */
import { type Provider, ProviderError } from "../providers/provider.js";
import type { Metrics, ProviderOperation, ProviderOutcome } from "./metrics.js";

/** How a failed call is counted: errors other than ProviderError are passing ones (a bug aside). */
function outcomeOf(error: unknown): ProviderOutcome {
  if (!(error instanceof ProviderError)) return "retryable_error";
  if (error.saturated) return "saturated";
  return error.retryable ? "retryable_error" : "final_error";
}

export function instrumentProvider(provider: Provider, metrics: Metrics): Provider {
  const timed =
    <A extends unknown[], R>(operation: ProviderOperation, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const result = await call(...args);
        metrics.recordProviderCall(provider.name, operation, "ok", seconds());
        return result;
      } catch (error) {
        metrics.recordProviderCall(provider.name, operation, outcomeOf(error), seconds());
        throw error;
      }
    };
  const { findSubmitted, cancel, release, close } = provider;
  return {
    name: provider.name,
    submit: timed("submit", (task) => provider.submit(task)),
    poll: timed("poll", (upstreamId, task) => provider.poll(upstreamId, task)),
    ...(findSubmitted ? { findSubmitted: timed("find_submitted", findSubmitted.bind(provider)) } : {}),
    ...(cancel ? { cancel: timed("cancel", cancel.bind(provider)) } : {}),
    ...(release ? { release: timed("release", release.bind(provider)) } : {}),
    ...(close ? { close: close.bind(provider) } : {}),
  };
}

/** Every provider of `providers` wrapped, under the same names and in the same order. */
export function instrumentProviders(providers: Map<string, Provider>, metrics: Metrics): Map<string, Provider> {
  return new Map([...providers].map(([name, provider]) => [name, instrumentProvider(provider, metrics)]));
}
