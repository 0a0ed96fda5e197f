/**
 * A span for each upstream call, made the way provider-metrics.ts counts them: each built
 * provider is wrapped once in server.ts. The span is active while the adapter runs, so the
 * Kling and fal adapters' HTTP requests carry its `traceparent` (injectTraceHeaders) and the
 * upstream can join the trace. Optional calls stay absent when the adapter has none.
 */
import { type Attributes, SpanKind } from "@opentelemetry/api";
import { type Provider, ProviderError, type ProviderTask } from "../providers/provider.js";
import type { Tracing } from "./tracing.js";

function errorKind(error: unknown): string {
  if (!(error instanceof ProviderError)) return "other";
  if (error.saturated) return "saturated";
  return error.retryable ? "retryable" : "final";
}

export function traceProvider(provider: Provider, tracing: Tracing): Provider {
  const traced =
    <A extends unknown[], R>(
      operation: string,
      attributesOf: (...args: A) => Attributes,
      call: (...args: A) => Promise<R>,
    ) =>
    (...args: A): Promise<R> =>
      tracing.withSpan(
        `${provider.name} ${operation}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            "framegate.provider": provider.name,
            "framegate.provider.operation": operation,
            ...attributesOf(...args),
          },
        },
        async (span) => {
          try {
            return await call(...args);
          } catch (error) {
            span.setAttribute("framegate.provider.error", errorKind(error));
            throw error;
          }
        },
      );
  const ofTask = (task: ProviderTask): Attributes => ({ "framegate.task_id": task.taskId });
  const ofUpstream = (upstreamId: string, task: ProviderTask): Attributes => ({
    "framegate.upstream_id": upstreamId,
    ...ofTask(task),
  });
  const { findSubmitted, cancel, release, close } = provider;
  return {
    name: provider.name,
    submit: traced("submit", ofTask, (task) => provider.submit(task)),
    poll: traced("poll", ofUpstream, (upstreamId, task) => provider.poll(upstreamId, task)),
    ...(findSubmitted ? { findSubmitted: traced("find_submitted", ofTask, findSubmitted.bind(provider)) } : {}),
    ...(cancel ? { cancel: traced("cancel", ofUpstream, cancel.bind(provider)) } : {}),
    ...(release
      ? {
          release: traced(
            "release",
            (upstreamId: string) => ({ "framegate.upstream_id": upstreamId }),
            release.bind(provider),
          ),
        }
      : {}),
    ...(close ? { close: close.bind(provider) } : {}),
  };
}

/** Every provider of `providers` wrapped, under the same names and in the same order. */
export function traceProviders(providers: Map<string, Provider>, tracing: Tracing): Map<string, Provider> {
  return new Map([...providers].map(([name, provider]) => [name, traceProvider(provider, tracing)]));
}
