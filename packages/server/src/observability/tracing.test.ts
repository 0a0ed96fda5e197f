/**
 * Tracing's switch and endpoint checks: off unless an OTLP endpoint is set (and not disabled),
 * endpoints that are not http(s) URLs refused with the variable named, the URL spans are posted
 * to, and a collector that is down reported (not thrown) when the spans cannot be exported.
 */
import { createServer } from "node:net";
import { SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../config.js";
import type { AppEnv } from "../http/context.js";
import { httpTracing } from "./http-tracing.js";
import { startTracing, tracesUrl, tracingRequested } from "./tracing.js";

describe("tracingRequested", () => {
  it("is on with either endpoint, off without, empty, or when the SDK or the exporter is disabled", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" })).toBe(
      false,
    );
  });

  it("starts nothing when off", async () => {
    expect(await startTracing({ role: "all", env: {} })).toBeUndefined();
  });
});

describe("tracesUrl", () => {
  it("appends v1/traces to the base endpoint, and takes the traces endpoint as given", () => {
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toBe("http://c:4318/v1/traces");
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c/otlp/" })).toBe("https://c/otlp/v1/traces");
    expect(
      tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b/t" }),
    ).toBe("http://b/t");
  });

  it.each([
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"],
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://collector:4317"],
  ])("refuses %s=%s, naming the variable", async (name, value) => {
    const start = startTracing({ role: "all", env: { [name]: value } });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(start).rejects.toThrow(`${name}: must be an http:// or https:// URL`);
  });
});

describe("a collector that is down", () => {
  it("is reported through onExportError for a scheduled export; a flush rejects, which close() catches", async () => {
    // A port nothing listens on: reserved, then closed.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    // The batch processor and the exporter read these from the process environment when built.
    const saved = { delay: process.env.OTEL_BSP_SCHEDULE_DELAY, timeout: process.env.OTEL_EXPORTER_OTLP_TIMEOUT };
    process.env.OTEL_BSP_SCHEDULE_DELAY = "50";
    process.env.OTEL_EXPORTER_OTLP_TIMEOUT = "500";
    const reported: unknown[] = [];
    try {
      const tracing = await startTracing({
        role: "all",
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
        onExportError: (error) => reported.push(error),
      });
      if (!tracing) throw new Error("tracing did not start");
      await tracing.withSpan("lost", {}, async () => {});
      for (let i = 0; i < 200 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(reported.length).toBe(1);
      await tracing.withSpan("lost too", {}, async () => {});
      await expect(tracing.flush()).rejects.toThrow();
      // Repeats within the minute are not reported again.
      expect(reported.length).toBe(1);
      await tracing.shutdown().catch(() => {});
    } finally {
      for (const [name, value] of [
        ["OTEL_BSP_SCHEDULE_DELAY", saved.delay],
        ["OTEL_EXPORTER_OTLP_TIMEOUT", saved.timeout],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe("a request answered 500", () => {
  it("has an ERROR span with the error the app's handler rendered; a 404 does not", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracing = await startTracing({ role: "all", provider });
    if (!tracing) throw new Error("tracing did not start");
    const app = new Hono<AppEnv>();
    app.use("*", httpTracing(tracing));
    app.get("/boom", () => {
      throw new Error("the database went away");
    });
    app.get("/missing", (c) => c.json({ error: { code: "not_found" } }, 404));
    app.onError((_error, c) => c.json({ error: { code: "internal_error" } }, 500));
    expect((await app.request("/boom")).status).toBe(500);
    expect((await app.request("/missing")).status).toBe(404);
    const [boom, missing] = exporter.getFinishedSpans();
    expect(boom?.name).toBe("GET /boom");
    expect(boom?.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "the database went away" });
    expect(boom?.events.map((e) => e.name)).toEqual(["exception"]);
    expect(missing?.status.code).toBe(SpanStatusCode.UNSET);
    await provider.shutdown();
  });
});
