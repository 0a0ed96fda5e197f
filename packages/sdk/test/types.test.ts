/**
 * Type tests: checked by `tsc -p tsconfig.test.json` (every `@ts-expect-error` must be needed) and
 * run by vitest as a no-op. Nothing here sends a request: the calls sit in functions never called.
 */
import type { WEBHOOK_EVENT_TYPES } from "@framegate/contract";
import { describe, expectTypeOf, it } from "vitest";
import {
  Framegate,
  type GenerationCreateParams,
  type Kling26GenerationRequest,
  type Kling26Params,
  type KnownModelId,
  type Page,
  type PagePromise,
  type Task,
  type TestEvent,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEndpointWithSecret,
  type WebhookEvent,
  type WebhookEventType,
} from "../src/index.js";

/** Never sends anything: lists are lazy, and calls that would send sit in functions never called. */
const client = new Framegate({ baseUrl: "http://127.0.0.1:1", apiKey: "rvya_sk_types" });

describe("generated model types", () => {
  it("types kling-2-6 params as the exact option unions", () => {
    expectTypeOf<KnownModelId>().toEqualTypeOf<"kling-2-6">();
    expectTypeOf<Kling26Params["duration"]>().toEqualTypeOf<"5" | "10" | 5 | 10 | undefined>();
    expectTypeOf<Kling26Params["sound"]>().toEqualTypeOf<"false" | "true" | boolean | undefined>();
    expectTypeOf<Kling26Params["aspect_ratio"]>().toEqualTypeOf<"1:1" | "16:9" | "9:16" | undefined>();
    expectTypeOf<GenerationCreateParams<"kling-2-6">>().toEqualTypeOf<Kling26GenerationRequest>();
    expectTypeOf<GenerationCreateParams<"some-other-model">["params"]>().toEqualTypeOf<
      Record<string, unknown> | undefined
    >();
  });

  it("accepts valid bodies and refuses invalid ones at compile time", () => {
    const _compileOnly = async () => {
      const task = await client.generations.create({
        model: "kling-2-6",
        prompt: "ok",
        params: { duration: "10", sound: true, aspect_ratio: "9:16" },
        client_request_id: "x",
      });
      expectTypeOf(task).toEqualTypeOf<Task>();
      await client.generations.create({
        model: "kling-2-6",
        prompt: "numbers",
        params: { duration: 5, sound: "false" },
      });
      await client.generations.create({
        model: "kling-2-6",
        prompt: "with a reference",
        params: { referenceMediaItems: [{ url: "https://x/y.png", kind: "image", mimeType: "image/png" }] },
      });

      // @ts-expect-error duration "7" is not an option
      await client.generations.create({ model: "kling-2-6", prompt: "x", params: { duration: "7" } });
      // @ts-expect-error 7 is not an option either
      await client.generations.create({ model: "kling-2-6", prompt: "x", params: { duration: 7 } });
      // @ts-expect-error aspect_ratio "4:3" is not an option
      await client.generations.create({ model: "kling-2-6", prompt: "x", params: { aspect_ratio: "4:3" } });
      // @ts-expect-error unknown params keys are refused
      await client.generations.create({ model: "kling-2-6", prompt: "x", params: { seed: 1 } });
      // @ts-expect-error unknown top-level fields are refused
      await client.generations.create({ model: "kling-2-6", prompt: "x", files: [] });
      // @ts-expect-error prompt is required
      await client.generations.create({ model: "kling-2-6" });
      await client.generations.create({
        model: "kling-2-6",
        prompt: "x",
        // @ts-expect-error kling-2-6 takes image references only
        params: { referenceMediaItems: [{ url: "u", kind: "video" }] },
      });
      const twoRefs = [
        { url: "u", kind: "image" },
        { url: "v", kind: "image" },
      ] as const;
      // @ts-expect-error at most one reference for kling-2-6
      await client.generations.create({ model: "kling-2-6", prompt: "x", params: { referenceMediaItems: twoRefs } });
      // @ts-expect-error sim directives are prompts, not params
      await client.generations.createAndWait({ model: "kling-2-6", prompt: "x", params: { sim: "fail" } });

      // Another model id (a newer server): any params, checked by the server only.
      await client.generations.create({ model: "kling-3-0", prompt: "x", params: { duration: "7", seed: 1 } });
      // A model id typed as plain string: loose as well.
      const model: string = "kling-2-6";
      await client.generations.create({ model, prompt: "x", params: { duration: "7" } });
    };
    expectTypeOf(_compileOnly).toBeFunction();
  });
});

describe("resource return types", () => {
  it("lists are awaitable pages and async iterables", () => {
    expectTypeOf(client.generations.list()).toEqualTypeOf<PagePromise<Task>>();
    expectTypeOf(client.generations.list()).toMatchTypeOf<AsyncIterable<Task>>();
    expectTypeOf(client.generations.list()).toMatchTypeOf<PromiseLike<Page<Task>>>();
    expectTypeOf(client.webhooks.list()).toEqualTypeOf<PagePromise<WebhookEndpoint>>();
    expectTypeOf(client.webhooks.deliveries("whend_x")).toEqualTypeOf<PagePromise<WebhookDelivery>>();
    expectTypeOf(client.webhooks.events()).toEqualTypeOf<PagePromise<WebhookEvent>>();
    expectTypeOf<Page<Task>["data"]>().toEqualTypeOf<Task[]>();
    expectTypeOf<Page<Task>["has_more"]>().toEqualTypeOf<boolean>();
  });

  it("webhook endpoints, secrets and events", () => {
    expectTypeOf(client.webhooks.create).returns.resolves.toEqualTypeOf<WebhookEndpointWithSecret>();
    expectTypeOf<WebhookEndpointWithSecret["signing_secret"]>().toEqualTypeOf<string>();
    expectTypeOf<WebhookEndpoint["signing_secret"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf(client.webhooks.test).returns.resolves.toEqualTypeOf<TestEvent>();
    expectTypeOf(client.webhooks.verify).returns.resolves.toEqualTypeOf<WebhookEvent>();
    const narrow = (event: WebhookEvent) => {
      if (event.type === "generation.succeeded") expectTypeOf(event.data).toEqualTypeOf<Task>();
      else if (event.type === "webhook.test") expectTypeOf(event.data.endpoint_id).toEqualTypeOf<string>();
    };
    expectTypeOf(narrow).toBeFunction();
    const _compileOnly = () => {
      // @ts-expect-error only the documented event types can be subscribed to
      void client.webhooks.create({ url: "https://x", event_types: ["generation.started"] });
    };
    expectTypeOf(_compileOnly).toBeFunction();
    // Every event type the server accepts, generation.processing (a Framegate extension) included.
    expectTypeOf<WebhookEventType>().toEqualTypeOf<(typeof WEBHOOK_EVENT_TYPES)[number]>();
    // @ts-expect-error delivery status filter
    void client.webhooks.deliveries("whend_x", { status: "pending" });
  });

  it("task fields match the server's JSON", () => {
    expectTypeOf<Task["status"]>().toEqualTypeOf<"queued" | "processing" | "succeeded" | "failed">();
    expectTypeOf<Task["params"]>().toEqualTypeOf<Record<string, string>>();
    expectTypeOf<NonNullable<Task["error"]>["reason"]>().toEqualTypeOf<
      "provider_error" | "content_rejected" | "timeout" | "invalid_input" | "canceled"
    >();
    // @ts-expect-error status filter values
    void client.generations.list({ status: "running" });
  });
});
