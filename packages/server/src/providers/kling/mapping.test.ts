import { describe, expect, it } from "vitest";
import { ProviderError, type ProviderTask } from "../provider.js";
import {
  buildCreateRequest,
  formatUpstreamId,
  KLING_MODEL_NAME,
  mapAspectRatio,
  mapDuration,
  mapMode,
  mapSound,
  mapTaskStatus,
  parseUpstreamId,
  subpathFor,
} from "./mapping.js";

function task(over: Partial<ProviderTask> = {}): ProviderTask {
  return {
    taskId: "task_3fQe9xv1Kp2Lm8NwA7sTq",
    model: "kling-2-6",
    prompt: "a red fox running through snow",
    params: { duration: "5", sound: "false", aspect_ratio: "16:9" },
    references: [],
    ...over,
  };
}

function invalidInput(fn: () => unknown): ProviderError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    const e = err as ProviderError;
    expect(e.retryable).toBe(false);
    expect(e.reason).toBe("invalid_input");
    return e;
  }
  throw new Error("expected an invalid_input ProviderError");
}

describe("Kling mapping table", () => {
  it("model_name is always kling-v2-6", () => {
    expect(KLING_MODEL_NAME).toBe("kling-v2-6");
    expect(buildCreateRequest(task(), { mode: "std" }).body.model_name).toBe("kling-v2-6");
    expect(buildCreateRequest(task(), { mode: "pro", image: "https://x/y.png" }).body.model_name).toBe("kling-v2-6");
  });

  it("duration: our select value → the string enum", () => {
    expect(mapDuration("5")).toBe("5");
    expect(mapDuration("10")).toBe("10");
    expect(mapDuration(undefined)).toBe("5");
    for (const bad of ["3", "15", "5.0", " 5", "", "ten"]) invalidInput(() => mapDuration(bad));
    expect(typeof buildCreateRequest(task({ params: { duration: "10" } }), { mode: "pro" }).body.duration).toBe(
      "string",
    );
  });

  it("sound: 'true'/'false' → 'on'/'off' (strings), default off", () => {
    expect(mapSound("true")).toBe("on");
    expect(mapSound("false")).toBe("off");
    expect(mapSound(undefined)).toBe("off");
    for (const bad of ["on", "off", "1", "yes", "TRUE", ""]) invalidInput(() => mapSound(bad));
  });

  it("mode: sound on forces pro; silent uses the configured mode", () => {
    expect(mapMode("on", "std")).toBe("pro");
    expect(mapMode("on", "pro")).toBe("pro");
    expect(mapMode("off", "std")).toBe("std");
    expect(mapMode("off", "pro")).toBe("pro");
    const body = (sound: string, mode: "std" | "pro") => buildCreateRequest(task({ params: { sound } }), { mode }).body;
    expect(body("true", "std")).toMatchObject({ sound: "on", mode: "pro" });
    expect(body("false", "std")).toMatchObject({ sound: "off", mode: "std" });
    expect(body("false", "pro")).toMatchObject({ sound: "off", mode: "pro" });
  });

  it("aspect_ratio: the three ratios, default 1:1, only for text2video", () => {
    for (const r of ["1:1", "16:9", "9:16"]) expect(mapAspectRatio(r)).toBe(r);
    expect(mapAspectRatio(undefined)).toBe("1:1");
    for (const bad of ["4:3", "1:2", "16x9", ""]) invalidInput(() => mapAspectRatio(bad));
    const t2v = buildCreateRequest(task({ params: { aspect_ratio: "9:16" } }), { mode: "pro" });
    expect(t2v.body.aspect_ratio).toBe("9:16");
    const i2v = buildCreateRequest(task({ params: { aspect_ratio: "9:16" } }), { mode: "pro", image: "abc" });
    expect(i2v.subpath).toBe("image2video");
    expect("aspect_ratio" in i2v.body).toBe(false);
  });

  it("builds the complete text2video body and nothing else", () => {
    const { subpath, body } = buildCreateRequest(
      task({ params: { duration: "10", sound: "true", aspect_ratio: "1:1" } }),
      { mode: "std", callbackUrl: "https://gw.example/internal/callbacks/kling/tok" },
    );
    expect(subpath).toBe("text2video");
    expect(body).toStrictEqual({
      model_name: "kling-v2-6",
      prompt: "a red fox running through snow",
      duration: "10",
      sound: "on",
      mode: "pro",
      aspect_ratio: "1:1",
      external_task_id: "task_3fQe9xv1Kp2Lm8NwA7sTq",
      callback_url: "https://gw.example/internal/callbacks/kling/tok",
    });
    expect(body).not.toHaveProperty("cfg_scale");
    expect(body).not.toHaveProperty("negative_prompt");
    expect(body).not.toHaveProperty("image");
  });

  it("builds the complete image2video body", () => {
    const { subpath, body } = buildCreateRequest(
      task({ params: { duration: "5", sound: "false", aspect_ratio: "16:9" } }),
      {
        mode: "std",
        image: "https://gw.example/media/ref.png?expires=1&signature=x",
      },
    );
    expect(subpath).toBe("image2video");
    expect(body).toStrictEqual({
      model_name: "kling-v2-6",
      prompt: "a red fox running through snow",
      duration: "5",
      sound: "off",
      mode: "std",
      image: "https://gw.example/media/ref.png?expires=1&signature=x",
      external_task_id: "task_3fQe9xv1Kp2Lm8NwA7sTq",
    });
  });

  it("no callback_url without a callback builder; prompt is trimmed; i2v may omit the prompt", () => {
    expect(buildCreateRequest(task(), { mode: "pro" }).body).not.toHaveProperty("callback_url");
    expect(buildCreateRequest(task({ prompt: "  hi  " }), { mode: "pro" }).body.prompt).toBe("hi");
    const i2v = buildCreateRequest(task({ prompt: "" }), { mode: "pro", image: "abc" });
    expect(i2v.body).not.toHaveProperty("prompt");
    invalidInput(() => buildCreateRequest(task({ prompt: "   " }), { mode: "pro" }));
  });

  it("prompt limit is 2500 characters (code points)", () => {
    expect(() => buildCreateRequest(task({ prompt: "a".repeat(2500) }), { mode: "pro" })).not.toThrow();
    expect(() => buildCreateRequest(task({ prompt: "😀".repeat(2500) }), { mode: "pro" })).not.toThrow();
    invalidInput(() => buildCreateRequest(task({ prompt: "a".repeat(2501) }), { mode: "pro" }));
  });

  it("subpathFor follows the image reference", () => {
    expect(subpathFor(task())).toBe("text2video");
    expect(subpathFor(task({ references: [{ kind: "image", mimeType: "image/png", url: "https://x" }] }))).toBe(
      "image2video",
    );
  });

  it("upstream ids keep the sub-path and the 18-digit id as a string", () => {
    const id = formatUpstreamId("text2video", "867283741759111202");
    expect(id).toBe("text2video:867283741759111202");
    expect(parseUpstreamId(id)).toStrictEqual({ subpath: "text2video", taskId: "867283741759111202" });
    expect(parseUpstreamId("image2video:999999999999999999").taskId).toBe("999999999999999999");
    for (const bad of ["867283741759111202", "omni-video:1", "text2video:", "text2video:1/2", "text2video:../x"]) {
      expect(() => parseUpstreamId(bad)).toThrow(ProviderError);
    }
  });

  it("task status table", () => {
    expect(mapTaskStatus("submitted")).toBe("pending");
    expect(mapTaskStatus("processing")).toBe("pending");
    expect(mapTaskStatus("succeed")).toBe("succeeded");
    expect(mapTaskStatus("failed")).toBe("failed");
    // Unknown spellings stay pending (the deadline bounds them); "succeeded" is NOT Kling's word.
    expect(mapTaskStatus("succeeded")).toBe("pending");
    expect(mapTaskStatus(undefined)).toBe("pending");
  });
});
